"""Resolution progression (paper eq. 4): I_t = Resize(Resize(I_HR, s_t), 1/s_t).

s_t rises linearly from s_1 ~ U[scale_first] to s_T = 1. Both resizes are PIL bicubic (a = -0.5, the
MATLAB ``imresize`` kernel), which is antialiased when shrinking; sizes are ``max(1, round(side*s_t))``.
When ``jpeg`` is on, the low-resolution image is JPEG-compressed (OpenCV/libjpeg, 4:2:0, as BasicSR
does) at quality q_t, rising linearly from q_1 ~ U{jpeg_quality_first} to 100 at frame T, where no
compression is applied; qualities are rounded to integers.

Baseline (blind): a bilateral filter (15 px, sigma colour 25, sigma space 15) of the full-size frame,
against the JPEG blocking that the upscaling enlarged to 8 / s_1 px, without sharpening. The upscaled
input is hard to beat. On 16 frame-1 clips of the embedded photographs (params.yaml's ranges, 1360x768)
the filter gains PSNR +0.10 dB (+0.01 to +0.55, every clip), SSIM +0.009 and LPIPS -0.019 over identity,
where the unsharp mask this task used before (sigma 1.5, amount 1) lost PSNR -0.03 dB and SSIM -0.006 (it
sharpens the blocking); the same clips without the JPEG step would be 2.9 dB better, so the gain is small,
not the bound. On 76 clips of 19 scikit-image pictures (textures, text, the colour wheel among them) it
gains +0.19 dB at 1360x768, where they are mostly upscaled (below identity on 4, by at most 0.01 dB), and
+0.07 dB at 320x192, where they are mostly downscaled and finer (below identity on 21, by at most 0.18 dB).
The filter runs on OpenCV's baseline path, which gives the same bits on every x86-64 CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from progrestore import portable, tasks
from progrestore.config import Section
from progrestore.imaging import jpeg_roundtrip, scaled_size


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
    """Blind: the clip's parameters are not used, so real photographs get the same filter."""
    with portable.opencv_baseline():
        return cv2.bilateralFilter(degraded, 15, 25, 15)


RESTORER = (
    "bilateral filter (15 px, sigma colour 25, sigma space 15) against upscaled JPEG blocking, no sharpening"
)


TASK = tasks.register(
    tasks.Task(
        name="sr",
        settings=Settings.from_section,
        sample=sample,
        schedule=schedule,
        prepare=prepare,
        render=render,
        baseline=tasks.Baseline(restore, RESTORER, RESTORER),
        theme=tasks.Theme(
            "a low-resolution image becoming sharper and higher in resolution",
            "gradually becomes sharper and higher in resolution",
            ("sharp", "resolution", "detail", "crisp", "clear", "focus"),
        ),
    )
)
