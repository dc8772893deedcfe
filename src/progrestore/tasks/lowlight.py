"""Illumination progression (paper eq. 6): I_t = L(I_HR, s_t, n), strength s_t = 1 - (t-1)/(T-1).

Per clip we sample an exposure gain e ~ U[exposure], a tone gamma g ~ U[gamma], white-balance gains
for red and blue r, b ~ U[white_balance] (green stays 1), a blur sigma ~ U[blur_sigma] px and a noise
level n ~ U[noise_sigma] (in units of the full 0..1 range), plus the seed of the noise field. A frame at
strength s is, with every parameter interpolated so that s = 0 is the identity:

    x = linear(I_HR) * e^s * (r^s, 1, b^s)          exposure roll-off and white-balance drift, linear light
    x = GaussianBlur(x, sigma * s)                  mild optical blur (REFLECT_101 borders)
    x = clip(x, 0, 1) ** (1 + (g - 1) s)            shadow roll-off
    I = sRGB(x) + n s z,  z ~ N(0, 1) per pixel     sensor noise

``linear``/``sRGB`` are the IEC 61966-2-1 transfer functions. The noise field z is drawn once per clip
and fades with s, so the noise does not flicker between frames.

Every step gives the same bits on any CPU (:mod:`progrestore.portable`): sRGB decoding is a 256-entry
table, scalar powers and the blur weights (radius ceil(4 sigma)) are computed in decimal, and the blur
and the per-pixel logarithm and exponentials run on OpenCV's baseline path. The noise is numpy's
ziggurat normal, built from integer arithmetic; libm enters only through ``log1pf`` in its tail (one
implementation on every x86-64 CPU) and ``expf`` in its accept/reject comparisons, where a last-bit
difference could flip a decision with probability ~1e-16.

Baseline: gamma chosen so the mean luminance reaches 0.45, then CLAHE on the L channel of Lab (clip
limit 2, 8x8 tiles), then a bilateral filter (5 px, sigma colour 25, sigma space 5) against noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from progrestore import portable, tasks
from progrestore.config import Section
from progrestore.imaging import gaussian_blur, to_uint8


@dataclass(frozen=True)
class Settings:
    exposure: tuple[float, float]
    gamma: tuple[float, float]
    white_balance: tuple[float, float]
    blur_sigma: tuple[float, float]
    noise_sigma: tuple[float, float]

    @classmethod
    def from_section(cls, section: Section) -> Settings:
        return cls(
            exposure=section.interval("exposure", 0.001, 1.0),
            gamma=section.interval("gamma", 1.0, 5.0),
            white_balance=section.interval("white_balance", 0.1, 10.0),
            blur_sigma=section.interval("blur_sigma", 0.0, 10.0),
            noise_sigma=section.interval("noise_sigma", 0.0, 1.0),
        )


def sample(rng: np.random.Generator, settings: Settings) -> dict:
    return {
        "exposure": float(rng.uniform(*settings.exposure)),
        "gamma": float(rng.uniform(*settings.gamma)),
        "white_balance_red": float(rng.uniform(*settings.white_balance)),
        "white_balance_blue": float(rng.uniform(*settings.white_balance)),
        "blur_sigma": float(rng.uniform(*settings.blur_sigma)),
        "noise_sigma": float(rng.uniform(*settings.noise_sigma)),
        "noise_seed": int(rng.integers(0, 2**63 - 1)),
    }


def schedule(params: dict, progress: float) -> dict:
    strength = 1.0 - progress
    return {
        "strength": strength,
        "gain": portable.pow_scalar(params["exposure"], strength),
        "gamma": 1.0 + (params["gamma"] - 1.0) * strength,
        "blur_sigma": params["blur_sigma"] * strength,
        "noise_sigma": params["noise_sigma"] * strength,
    }


SRGB_LINEAR_KNEE = 0.0031308  # linear values up to here are encoded by the straight segment
_LOG_KNEE = np.float32(portable.log_scalar(SRGB_LINEAR_KNEE))


def srgb_to_linear(x: float) -> float:
    """IEC 61966-2-1 decoding of one value in [0, 1]."""
    return x / 12.92 if x <= 0.04045 else portable.pow_scalar((x + 0.055) / 1.055, 2.4)


@functools.cache
def _srgb_decode_table() -> np.ndarray:
    return np.array([srgb_to_linear(v / 255.0) for v in range(256)], np.float32)


def display_srgb(x: np.ndarray, gamma: float) -> np.ndarray:
    """sRGB(x ** gamma) of linear float32 values in [0, 1], from one logarithm and two exponentials.

    Call inside ``portable.opencv_baseline``. x = 0 has a logarithm of about -88, whose powers underflow
    to 0. The two sRGB segments are powers of x: 1.055 x^(gamma/2.4) - 0.055, and 12.92 x^gamma up to
    the knee.
    """
    log_x = cv2.log(x)
    out = cv2.exp(log_x * np.float32(gamma / 2.4))
    out *= np.float32(1.055)
    out -= np.float32(0.055)
    log_x *= np.float32(gamma)  # now log(x ** gamma)
    dark = log_x <= _LOG_KNEE
    linear = cv2.exp(log_x, dst=log_x)
    linear *= np.float32(12.92)
    np.copyto(out, linear, where=dark)
    return out


@dataclass(frozen=True)
class _Clip:
    image: np.ndarray
    linear: np.ndarray
    noise: np.ndarray


def prepare(image: np.ndarray, params: dict) -> _Clip:
    linear = _srgb_decode_table()[image]
    noise = np.random.default_rng(params["noise_seed"]).standard_normal(image.shape, dtype=np.float32)
    return _Clip(image, linear, noise)


def render(state: _Clip, params: dict, progress: float) -> np.ndarray:
    values = schedule(params, progress)
    strength = values["strength"]
    if strength <= 0.0:
        return state.image.copy()
    red = portable.pow_scalar(params["white_balance_red"], strength)
    blue = portable.pow_scalar(params["white_balance_blue"], strength)
    x = state.linear * (np.array([red, 1.0, blue], np.float32) * np.float32(values["gain"]))
    if values["blur_sigma"] > 0.0:
        x = gaussian_blur(x, values["blur_sigma"])
    with portable.opencv_baseline():
        display = display_srgb(np.clip(x, 0.0, 1.0), values["gamma"])
    display += state.noise * np.float32(values["noise_sigma"])
    return to_uint8(display, 255.0)


def brighten(image: np.ndarray, target: float = 0.45) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    luminance = float(np.clip((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean(), 1e-4, 0.9999))
    gamma = math.log(target) / math.log(luminance)
    x = to_uint8(np.power(x, gamma), 255.0)
    with portable.opencv_baseline():  # OpenCV's dispatched bilateral filter differs between CPUs
        lab = cv2.cvtColor(x, cv2.COLOR_RGB2LAB)
        lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(
            np.ascontiguousarray(lab[:, :, 0])
        )
        return cv2.bilateralFilter(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), 5, 25, 5)


BRIGHTEN = "auto-gamma (mean luminance 0.45) + CLAHE on L (clip 2, 8x8) + bilateral denoise"

TASK = tasks.register(
    tasks.Task(
        name="lowlight",
        settings=Settings.from_section,
        sample=sample,
        schedule=schedule,
        prepare=prepare,
        render=render,
        baseline=tasks.Baseline(lambda degraded, params: brighten(degraded), BRIGHTEN, BRIGHTEN),
        theme=tasks.Theme(
            "a dark, noisy image brightening as the light returns",
            "gradually brightens as the light returns",
            ("bright", "light", "illuminat", "glow", "dawn", "lit"),
        ),
    )
)
