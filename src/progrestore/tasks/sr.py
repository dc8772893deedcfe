"""Resolution progression (paper eq. 4): I_t = Resize(Resize(I_HR, s_t), 1/s_t).

s_t rises linearly from s_1 ~ U[scale_first] to s_T = 1. Both resizes are PIL bicubic (a = -0.5, the
MATLAB ``imresize`` kernel), which is antialiased when shrinking; sizes are ``max(1, round(side*s_t))``.
When ``jpeg`` is on, the low-resolution image is JPEG-compressed (OpenCV/libjpeg, 4:2:0, as BasicSR
does) at quality q_t, rising linearly from q_1 ~ U{jpeg_quality_first} to 100 at frame T, where no
compression is applied; qualities are rounded to integers.

Baseline: unsharp masking of the (already full-size, bicubic-upsampled) degraded frame,
I + amount * (I - GaussianBlur(I, sigma)), sigma 1.5 px, amount 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from progrestore import tasks
from progrestore.config import Section
from progrestore.imaging import UNSHARP, jpeg_roundtrip, scaled_size, unsharp


@dataclass(frozen=True)
class Settings:
    scale_first: tuple[float, float]
    jpeg: bool
    jpeg_quality_first: tuple[int, int]

    @classmethod
    def from_section(cls, section: Section) -> Settings:
        return cls(
            section.interval("scale_first", 0.01, 1.0),
            section.boolean("jpeg"),
            section.integer_interval("jpeg_quality_first", 1, 100),
        )


def sample(rng: np.random.Generator, settings: Settings) -> dict:
    scale = float(rng.uniform(*settings.scale_first))
    quality = int(rng.integers(settings.jpeg_quality_first[0], settings.jpeg_quality_first[1] + 1))
    return {"scale_first": scale, "jpeg_quality_first": quality if settings.jpeg else None}


def schedule(params: dict, progress: float) -> dict:
    s1, q1 = params["scale_first"], params["jpeg_quality_first"]
    quality = None if q1 is None else round(q1 + (100 - q1) * progress)
    return {"scale": s1 + (1.0 - s1) * progress, "jpeg_quality": quality}


def prepare(image: np.ndarray, params: dict) -> Image.Image:
    return Image.fromarray(image)


def render(state: Image.Image, params: dict, progress: float) -> np.ndarray:
    values = schedule(params, progress)
    width, height = state.size
    small_size = scaled_size(width, height, values["scale"])
    quality = values["jpeg_quality"]
    compress = quality is not None and quality < 100
    if small_size == (width, height) and not compress:
        return np.asarray(state).copy()
    small = state.resize(small_size, Image.Resampling.BICUBIC)
    if compress:
        small = Image.fromarray(jpeg_roundtrip(np.asarray(small), quality))
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC))


def restore(degraded: np.ndarray, params: dict | None) -> np.ndarray:
    """Unsharp masking of the (already full-size, bicubic-upsampled) degraded frame."""
    return unsharp(degraded)


TASK = tasks.register(
    tasks.Task(
        name="sr",
        settings=Settings.from_section,
        sample=sample,
        schedule=schedule,
        prepare=prepare,
        render=render,
        baseline=tasks.Baseline(restore, UNSHARP, UNSHARP),
        theme=tasks.Theme(
            "a low-resolution image becoming sharper and higher in resolution",
            "gradually becomes sharper and higher in resolution",
            ("sharp", "resolution", "detail", "crisp", "clear", "focus"),
        ),
    )
)
