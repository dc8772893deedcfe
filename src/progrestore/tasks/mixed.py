"""Real-world compound degradation (after Real-ESRGAN's first-order model), beyond the paper's tasks.

Per clip four degradations are sampled and applied in a random order (a permutation drawn per clip):

    blur        Gaussian blur of sigma_t = sigma_1 s_t px, sigma_1 ~ U[blur_sigma]
    downscale   Resize(Resize(I, r_t), 1/r_t), PIL bicubic, r_t = r_1 + (1 - r_1) p_t, r_1 ~ U[scale_first]
    noise       + n_t z, n_t = n_1 s_t, n_1 ~ U[noise_sigma] (0..1 range), one field z per clip
    jpeg        JPEG at q_t = round(q_1 + (100 - q_1) p_t), q_1 ~ U{jpeg_quality_first}; none at 100

with progress p_t = (t-1)/(T-1) and strength s_t = 1 - p_t: every degradation fades linearly to nothing,
and frame T is the clean image exactly. Each step rounds to uint8, as a camera pipeline stores its
intermediate images. Blur weights are decimal and run on OpenCV's baseline path, resizing and JPEG are
integer codecs, and the noise is added with separate float32 multiply and add: the same bits on any CPU.

Baseline (blind: it does not use the clip's parameters): a bilateral filter against noise and blocking
(5 px, sigma colour 25, sigma space 5), then unsharp masking against blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from progrestore import portable, tasks
from progrestore.config import Section
from progrestore.imaging import UNSHARP, gaussian_blur, jpeg_roundtrip, scaled_size, to_uint8, unsharp

OPERATIONS = ("blur", "downscale", "noise", "jpeg")


@dataclass(frozen=True)
class Settings:
    blur_sigma: tuple[float, float]
    scale_first: tuple[float, float]
    noise_sigma: tuple[float, float]
    jpeg_quality_first: tuple[int, int]

    @classmethod
    def from_section(cls, section: Section) -> Settings:
        return cls(
            blur_sigma=section.interval("blur_sigma", 0.0, 10.0),
            scale_first=section.interval("scale_first", 0.05, 1.0),
            noise_sigma=section.interval("noise_sigma", 0.0, 1.0),
            jpeg_quality_first=section.integer_interval("jpeg_quality_first", 1, 100),
        )


def sample(rng: np.random.Generator, settings: Settings) -> dict:
    order = [OPERATIONS[i] for i in rng.permutation(len(OPERATIONS))]
    return {
        "order": order,
        "blur_sigma": float(rng.uniform(*settings.blur_sigma)),
        "scale_first": float(rng.uniform(*settings.scale_first)),
        "noise_sigma": float(rng.uniform(*settings.noise_sigma)),
        "jpeg_quality_first": int(
            rng.integers(settings.jpeg_quality_first[0], settings.jpeg_quality_first[1] + 1)
        ),
        "noise_seed": int(rng.integers(0, 2**63 - 1)),
    }


def schedule(params: dict, progress: float) -> dict:
    strength = 1.0 - progress
    q1, r1 = params["jpeg_quality_first"], params["scale_first"]
    return {
        "blur_sigma": params["blur_sigma"] * strength,
        "scale": r1 + (1.0 - r1) * progress,
        "noise_sigma": params["noise_sigma"] * strength,
        "jpeg_quality": round(q1 + (100 - q1) * progress),
    }


@dataclass(frozen=True)
class _Clip:
    image: np.ndarray
    noise: np.ndarray


def prepare(image: np.ndarray, params: dict) -> _Clip:
    noise = np.random.default_rng(params["noise_seed"]).standard_normal(image.shape, dtype=np.float32)
    return _Clip(image, noise)


def _blur(x: np.ndarray, values: dict, state: _Clip) -> np.ndarray:
    return (
        x
        if values["blur_sigma"] <= 0.0
        else to_uint8(gaussian_blur(x.astype(np.float32), values["blur_sigma"]))
    )


def _downscale(x: np.ndarray, values: dict, state: _Clip) -> np.ndarray:
    height, width = x.shape[:2]
    size = scaled_size(width, height, values["scale"])
    if size == (width, height):
        return x
    small = Image.fromarray(x).resize(size, Image.Resampling.BICUBIC)
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC))


def _noise(x: np.ndarray, values: dict, state: _Clip) -> np.ndarray:
    if values["noise_sigma"] <= 0.0:
        return x
    return to_uint8(x.astype(np.float32) + state.noise * np.float32(values["noise_sigma"] * 255.0))


def _jpeg(x: np.ndarray, values: dict, state: _Clip) -> np.ndarray:
    return x if values["jpeg_quality"] >= 100 else jpeg_roundtrip(x, values["jpeg_quality"])


_APPLY = {"blur": _blur, "downscale": _downscale, "noise": _noise, "jpeg": _jpeg}


def render(state: _Clip, params: dict, progress: float) -> np.ndarray:
    if progress >= 1.0:
        return state.image.copy()
    values = schedule(params, progress)
    x = state.image
    for name in params["order"]:
        x = _APPLY[name](x, values, state)
    return np.ascontiguousarray(x)


def restore(degraded: np.ndarray, params: dict | None) -> np.ndarray:
    with portable.opencv_baseline():  # OpenCV's dispatched bilateral filter differs between CPUs
        denoised = cv2.bilateralFilter(degraded, 5, 25, 5)
    return unsharp(denoised)


RESTORER = f"bilateral filter (5 px, sigma colour 25, sigma space 5), then {UNSHARP}"

TASK = tasks.register(
    tasks.Task(
        name="mixed",
        settings=Settings.from_section,
        sample=sample,
        schedule=schedule,
        prepare=prepare,
        render=render,
        baseline=tasks.Baseline(restore, RESTORER, RESTORER),
        theme=tasks.Theme(
            "a photograph degraded by blur, low resolution, noise and compression becoming clean and sharp",
            "gradually becomes clean and sharp as the blur, noise and compression artefacts fade",
            ("clean", "sharp", "clear", "crisp", "restor", "detail"),
        ),
    )
)
