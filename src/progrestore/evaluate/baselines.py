"""Classical restorers, one per task: the level a learned model must clearly beat.

- ``sr``: unsharp masking of the (already full-size, bicubic-upsampled) degraded frame:
  I + amount * (I - GaussianBlur(I, sigma)), sigma 1.5 px, amount 1.0.
- ``deblur``: Wiener deconvolution with the true motion kernel of frame 1 (non-blind: on synthetic clips the
  kernel is known from the manifest), noise-to-signal ratio 0.03, reflected borders, FFT. Without a known
  kernel (real-world data) it falls back to unsharp masking.
- ``lowlight``: gamma chosen so the mean luminance reaches 0.45, then CLAHE on the L channel of Lab
  (clip limit 2, 8x8 tiles), then a bilateral filter (5 px, sigma colour 25, sigma space 5) against noise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from progrestore.data.degradations import to_uint8
from progrestore.data.degradations.deblur import Spectrum, motion_kernel

DESCRIPTIONS = {
    "sr": "unsharp mask (sigma 1.5, amount 1.0)",
    "deblur": "Wiener deconvolution with the true frame-1 kernel (non-blind), NSR 0.03",
    "lowlight": "auto-gamma (mean luminance 0.45) + CLAHE on L (clip 2, 8x8) + bilateral denoise",
}


def unsharp(image: np.ndarray, sigma: float = 1.5, amount: float = 1.0) -> np.ndarray:
    x = image.astype(np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    return to_uint8(x + amount * (x - blurred))


def wiener(image: np.ndarray, kernel: np.ndarray, nsr: float = 0.03) -> np.ndarray:
    spectrum = Spectrum.of(image, kernel.shape[0] // 2 + 2)
    transfer = spectrum.transfer(kernel)
    return spectrum.filtered(np.conj(transfer) / (np.abs(transfer) ** 2 + nsr))


def brighten(image: np.ndarray, target: float = 0.45) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    luminance = float(np.clip((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean(), 1e-4, 0.9999))
    gamma = math.log(target) / math.log(luminance)
    x = to_uint8(np.power(x, gamma), 255.0)
    lab = cv2.cvtColor(x, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(
        np.ascontiguousarray(lab[:, :, 0])
    )
    return cv2.bilateralFilter(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 5, 25, 5)


def restore(task: str, degraded: np.ndarray, params: dict | None) -> np.ndarray:
    """The classical restoration of ``degraded``; ``params`` are the clip's sampled parameters, if known."""
    if task == "sr":
        return unsharp(degraded)
    if task == "deblur":
        if params is None:
            return unsharp(degraded)
        return wiener(degraded, motion_kernel(params["length_max"], params["angle"]))
    if task == "lowlight":
        return brighten(degraded)
    raise ValueError(f"no classical baseline for task {task!r}")
