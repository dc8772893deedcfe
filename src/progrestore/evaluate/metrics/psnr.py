"""PSNR on RGB uint8, data range 255, no border crop; inf on a frame equal to its reference."""

from __future__ import annotations

import math

import numpy as np

from progrestore.evaluate.metrics import Metric, register

# 20 log10(255): the PSNR of an RMS error of one grey level; progress counts anything above it as clean
CLEAN_DB = 20.0 * math.log10(255.0)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


class Psnr:
    """The reference is the clean image itself; with a mask, the MSE is over the masked pixels."""

    def reference(self, clean: np.ndarray) -> np.ndarray:
        return clean

    def score(self, frames: np.ndarray, reference: np.ndarray, mask: np.ndarray | None = None) -> list[float]:
        if mask is None:
            return [psnr(frame, reference) for frame in frames]
        return [psnr(frame[mask], reference[mask]) for frame in frames]


PSNR = register(
    Metric(
        name="psnr",
        label="PSNR (dB)",
        protocol="RGB uint8, data range 255, no border crop",
        higher_is_better=True,
        lower=0.0,
        upper=math.inf,
        exact=math.inf,
        clean=CLEAN_DB,
        position=0,
        measure=Psnr,
        maskable=True,
    )
)
