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
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from progrestore.config import Section
from progrestore.data.degradations.common import to_uint8


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
        "gain": params["exposure"] ** strength,
        "gamma": 1.0 + (params["gamma"] - 1.0) * strength,
        "blur_sigma": params["blur_sigma"] * strength,
        "noise_sigma": params["noise_sigma"] * strength,
    }


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


@dataclass(frozen=True)
class _Clip:
    image: np.ndarray
    linear: np.ndarray
    noise: np.ndarray


def prepare(image: np.ndarray, params: dict) -> _Clip:
    linear = srgb_to_linear(image.astype(np.float32) / 255.0)
    noise = np.random.default_rng(params["noise_seed"]).standard_normal(image.shape, dtype=np.float32)
    return _Clip(image, linear, noise)


def render(state: _Clip, params: dict, progress: float) -> np.ndarray:
    values = schedule(params, progress)
    strength = values["strength"]
    if strength <= 0.0:
        return state.image.copy()
    gains = np.array(
        [params["white_balance_red"] ** strength, 1.0, params["white_balance_blue"] ** strength], np.float32
    )
    x = state.linear * (gains * np.float32(values["gain"]))
    if values["blur_sigma"] > 0.0:
        x = cv2.GaussianBlur(x, (0, 0), values["blur_sigma"], borderType=cv2.BORDER_REFLECT_101)
    x = np.clip(x, 0.0, 1.0) ** np.float32(values["gamma"])
    display = linear_to_srgb(x) + state.noise * np.float32(values["noise_sigma"])
    return to_uint8(display, 255.0)
