"""Bring any source image to the clip size by one documented rule.

1. Portrait images (taller than wide) keep their orientation and give up their top and bottom
   (``portrait: band``: the centre band of the clip's aspect ratio), or are first turned 90 degrees
   clockwise (``portrait: rotate``), which keeps the whole picture but lays it on its side.
2. The largest centred window of the clip's aspect ratio is cut out (offsets rounded down).
3. That window is resized to the clip size: area averaging when shrinking (antialiased), bicubic when
   enlarging. Enlarged images are flagged ``upscaled`` in the prepare manifest, since their finest
   detail is interpolated, not real.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from progrestore import portable

PORTRAIT_RULES = ("band", "rotate")
STRONG_ENLARGEMENT = 4.0  # beyond this scale most of an image's detail is interpolated: prepare warns


@dataclass(frozen=True)
class Framing:
    """Where the clip came from in the source image (for the manifest)."""

    rotated: bool
    crop_x: int
    crop_y: int
    crop_width: int
    crop_height: int
    upscaled: bool
    scale: float  # output / window size (the larger of the two axes' factors): > 1 means enlarged


def centre_window(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the largest centred window with the aspect ratio width:height."""
    if src_w * height > width * src_h:  # wider than the clip: trim the sides
        crop_h, crop_w = src_h, max(1, round(src_h * width / height))
    else:  # taller than the clip: trim top and bottom
        crop_w, crop_h = src_w, max(1, round(src_w * height / width))
    return (src_w - crop_w) // 2, (src_h - crop_h) // 2, crop_w, crop_h


def centre_crop(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Step 2: the largest centred window of ``image`` with the aspect ratio width:height, at its own size."""
    x, y, w, h = centre_window(image.shape[1], image.shape[0], width, height)
    return image[y : y + h, x : x + w]


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Steps 2 and 3: the centre window resized to ``width`` x ``height``, by area averaging when shrinking
    and bicubic when enlarging, on OpenCV's baseline path (the same pixels on every CPU). Every place that
    brings an image to a size (prepare, the model's input, ReLoBlur's) does it here."""
    window = centre_crop(image, width, height)
    if window.shape[:2] == (height, width):
        return np.ascontiguousarray(window)
    enlarged = window.shape[1] < width or window.shape[0] < height
    with portable.opencv_baseline():
        return cv2.resize(
            window, (width, height), interpolation=cv2.INTER_CUBIC if enlarged else cv2.INTER_AREA
        )


def frame_image(
    image: np.ndarray, width: int, height: int, portrait: str = "band"
) -> tuple[np.ndarray, Framing]:
    if portrait not in PORTRAIT_RULES:
        raise ValueError(f"portrait rule must be one of {PORTRAIT_RULES}, got {portrait!r}")
    rotated = portrait == "rotate" and image.shape[0] > image.shape[1]
    if rotated:
        image = np.ascontiguousarray(np.rot90(image, k=-1))
    x0, y0, crop_w, crop_h = centre_window(image.shape[1], image.shape[0], width, height)
    scale = round(max(width / crop_w, height / crop_h), 4)
    upscaled = crop_w < width or crop_h < height
    return fit(image, width, height), Framing(rotated, x0, y0, crop_w, crop_h, upscaled, scale)
