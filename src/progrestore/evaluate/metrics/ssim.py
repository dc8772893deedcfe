"""SSIM on RGB: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, population covariance, mean over
the valid region (5 px in from each border) and the channels.

Equal to ``skimage.metrics.structural_similarity(**SKIMAGE_SSIM_ARGS)`` within
:data:`SKIMAGE_SSIM_TOLERANCE`. The reference's statistics are computed once per clip. The separable
filters run in float64, as skimage's do: in float32 the variance E[x^2] - E[x]^2 cancels where the image is
bright and flat (E[x^2] near 65025 against a C2 of 58.5), which cost up to 7e-5 (a 128 vs 129 flat pair).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from progrestore.evaluate.metrics import Metric, register

SSIM_RADIUS = 5
_GAUSS = cv2.getGaussianKernel(2 * SSIM_RADIUS + 1, 1.5, cv2.CV_64F)
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

# skimage's call that our SSIM equals; tests and the benchmark use it as the reference
SKIMAGE_SSIM_ARGS = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
    "channel_axis": -1,
}
# how far our SSIM may be from skimage's (both float64: measured under 1e-13 on flat, bright, random and
# photographic pairs from 40x56 to 741x500); the tests and the benchmark check it
SKIMAGE_SSIM_TOLERANCE = 1e-9


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(x, cv2.CV_64F, _GAUSS, _GAUSS, borderType=cv2.BORDER_REFLECT_101)


def _valid(x: np.ndarray) -> np.ndarray:
    return x[SSIM_RADIUS:-SSIM_RADIUS, SSIM_RADIUS:-SSIM_RADIUS]


@dataclass(frozen=True)
class SsimReference:
    image: np.ndarray  # float64
    mean: np.ndarray
    variance: np.ndarray


def ssim_reference(reference: np.ndarray) -> SsimReference:
    y = reference.astype(np.float64)
    mean = _blur(y)
    return SsimReference(y, mean, _blur(y * y) - mean * mean)


def ssim_map(image: np.ndarray, ref: SsimReference) -> np.ndarray:
    """Per-pixel SSIM over the valid region, channel mean."""
    x = image.astype(np.float64)
    mu_x = _blur(x)
    var_x = _blur(x * x) - mu_x * mu_x
    cov = _blur(x * ref.image) - mu_x * ref.mean
    numerator = (2 * mu_x * ref.mean + _C1) * (2 * cov + _C2)
    denominator = (mu_x * mu_x + ref.mean * ref.mean + _C1) * (var_x + ref.variance + _C2)
    return _valid(numerator / denominator).mean(axis=2)


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    return float(ssim_map(image, ssim_reference(reference)).mean())


class Ssim:
    """With a mask, the mean of the SSIM map over the masked pixels of the valid region (NaN if none)."""

    def reference(self, clean: np.ndarray) -> SsimReference:
        return ssim_reference(clean)

    def score(
        self, frames: np.ndarray, reference: SsimReference, mask: np.ndarray | None = None
    ) -> list[float]:
        if mask is None:
            return [float(ssim_map(frame, reference).mean()) for frame in frames]
        valid = _valid(mask)
        if not valid.any():
            return [float("nan")] * len(frames)
        return [float(ssim_map(frame, reference)[valid].mean()) for frame in frames]


SSIM = register(
    Metric(
        name="ssim",
        label="SSIM",
        protocol="RGB, Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, population covariance, valid region, channel mean",
        higher_is_better=True,
        lower=-1.0,
        upper=1.0,
        exact=1.0,
        clean=1.0,
        position=1,
        measure=Ssim,
        maskable=True,
    )
)
