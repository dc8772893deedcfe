"""Image operations shared by several tasks and baselines (uint8 RGB arrays in, uint8 RGB arrays out)."""

from __future__ import annotations

import cv2
import numpy as np

from progrestore import portable


def to_uint8(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Clip ``values * scale`` to [0, 255] and round half up to uint8 (the frames of every task)."""
    scaled = values * scale if scale != 1.0 else values
    return (np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)


def scaled_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(width, height) times ``scale``, rounded, at least 1 px: the low-resolution size of a down-and-up resize."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """``rgb`` JPEG-compressed at ``quality`` and decoded (OpenCV/libjpeg, 4:2:0, as BasicSR does)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]


def unsharp(image: np.ndarray, sigma: float = 1.5, amount: float = 1.0) -> np.ndarray:
    """I + amount * (I - GaussianBlur(I, sigma)): sharpening that needs no knowledge of the blur."""
    x = image.astype(np.float32)
    blurred = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    return to_uint8(x + amount * (x - blurred))


UNSHARP = "unsharp mask (sigma 1.5, amount 1.0)"


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Float image blurred with a Gaussian of ``sigma`` px (radius ceil(4 sigma)), REFLECT_101 borders,
    the same bits on every CPU (decimal weights, OpenCV's baseline path)."""
    kernel = portable.gaussian_kernel(sigma)
    with portable.opencv_baseline():
        return cv2.sepFilter2D(x, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
