"""PSNR, SSIM and LPIPS, the one implementation every caller uses.

Protocol (peers disagree, so it is stated): RGB, uint8, no border crop for PSNR (data range 255);
SSIM on RGB with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population covariance,
averaged over the valid region (5 px from each border) and the three channels (equal to
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255, channel_axis=-1)``); LPIPS v0.1 with the ImageNet AlexNet trunk, RGB scaled to [-1, 1],
spatial mean, no resizing. A frame identical to its reference scores PSNR inf, SSIM 1, LPIPS 0 exactly.

Speed: every frame of a trajectory is compared with the same clean image, so the reference's SSIM
statistics and LPIPS features are computed once (:meth:`FrameScorer.reference`); SSIM filters are
separable and run in float32 (the maps agree with float64 to about 1e-6); AlexNet takes one frame at a
time, which measured fastest on CPU; identical frames (the identity method repeats one frame) are scored once.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import cv2
import lpips
import numpy as np
import torch

from progrestore.evaluate.lpips_weights import TRUNK_SHA256, load_trunk
from progrestore.evaluate.protocol import METRICS

SSIM_RADIUS = 5
_GAUSS = cv2.getGaussianKernel(2 * SSIM_RADIUS + 1, 1.5, cv2.CV_32F)
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    mse = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.sepFilter2D(x, cv2.CV_32F, _GAUSS, _GAUSS, borderType=cv2.BORDER_REFLECT_101)


def _valid(x: np.ndarray) -> np.ndarray:
    return x[SSIM_RADIUS:-SSIM_RADIUS, SSIM_RADIUS:-SSIM_RADIUS]


@dataclass(frozen=True)
class SsimReference:
    image: np.ndarray  # float32
    mean: np.ndarray
    variance: np.ndarray


def ssim_reference(reference: np.ndarray) -> SsimReference:
    y = reference.astype(np.float32)
    mean = _blur(y)
    return SsimReference(y, mean, _blur(y * y) - mean * mean)


def ssim_map(image: np.ndarray, ref: SsimReference) -> np.ndarray:
    """Per-pixel SSIM over the valid region, channel mean (float32 maps: within 1e-6 of float64)."""
    x = image.astype(np.float32)
    mu_x = _blur(x)
    var_x = _blur(x * x) - mu_x * mu_x
    cov = _blur(x * ref.image) - mu_x * ref.mean
    numerator = (2 * mu_x * ref.mean + _C1) * (2 * cov + _C2)
    denominator = (mu_x * mu_x + ref.mean * ref.mean + _C1) * (var_x + ref.variance + _C2)
    return _valid(numerator / denominator).mean(axis=2, dtype=np.float64)


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    return float(ssim_map(image, ssim_reference(reference)).mean(dtype=np.float64))


class Lpips:
    """LPIPS v0.1 AlexNet with the verified pretrained trunk; features of a reference can be reused."""

    weights_id = TRUNK_SHA256

    def __init__(self, device: str | torch.device | None = None) -> None:
        """On ``device`` (default: CUDA when present, else CPU)."""
        with warnings.catch_warnings():  # torchvision's note on its deprecated `pretrained` argument
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        model.net.load_state_dict(load_trunk(), strict=True)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.eval().requires_grad_(False).to(self.device)

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, 3, H, W) in [-1, 1], as ``lpips.im2tensor``."""
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device).permute(0, 3, 1, 2).float()
        return x / (255.0 / 2.0) - 1.0

    @torch.inference_mode()
    def features(self, images: np.ndarray) -> list[torch.Tensor]:
        outs = self.model.net.forward(self.model.scaling_layer(self._tensor(images)))
        return [lpips.normalize_tensor(out) for out in outs]

    @torch.inference_mode()
    def distance(self, features: list[torch.Tensor], reference: list[torch.Tensor]) -> np.ndarray:
        """Per-image distances, summed over layers in lpips' order."""
        total = 0
        for lin, f, r in zip(self.model.lins, features, reference, strict=True):
            total += lpips.spatial_average(lin((f - r) ** 2), keepdim=True)
        return total.flatten().double().cpu().numpy()

    def __call__(self, image: np.ndarray, reference: np.ndarray) -> float:
        return float(self.distance(self.features(image[None]), self.features(reference[None]))[0])


@dataclass
class Reference:
    """A clean image with its cached SSIM statistics and LPIPS features."""

    image: np.ndarray
    ssim: SsimReference
    lpips: list[torch.Tensor]


class FrameScorer:
    """Scores trajectories frame by frame against a clean reference."""

    def __init__(self, perceptual: Lpips | None = None, batch: int = 1) -> None:
        self.perceptual = perceptual or Lpips()
        self.batch = batch

    def reference(self, clean: np.ndarray) -> Reference:
        return Reference(clean, ssim_reference(clean), self.perceptual.features(clean[None]))

    def score(self, frames: np.ndarray, ref: Reference) -> dict[str, list[float]]:
        """{metric: [value per frame]} for a (T, H, W, 3) uint8 trajectory."""
        unique: dict[bytes, int] = {}
        index = [unique.setdefault(frame.tobytes(), len(unique)) for frame in frames]
        distinct = [frames[index.index(i)] for i in range(len(unique))]
        clean_bytes = ref.image.tobytes()
        values = {name: [0.0] * len(distinct) for name in METRICS}
        to_perceive = []
        for i, frame in enumerate(distinct):
            if frame.tobytes() == clean_bytes:
                values["psnr"][i], values["ssim"][i], values["lpips"][i] = math.inf, 1.0, 0.0
                continue
            values["psnr"][i] = psnr(frame, ref.image)
            values["ssim"][i] = float(ssim_map(frame, ref.ssim).mean(dtype=np.float64))
            to_perceive.append(i)
        for start in range(0, len(to_perceive), self.batch):
            chunk = to_perceive[start : start + self.batch]
            distances = self.perceptual.distance(
                self.perceptual.features(np.stack([distinct[i] for i in chunk])), ref.lpips
            )
            for i, d in zip(chunk, distances, strict=True):
                values["lpips"][i] = float(d)
        return {name: [values[name][i] for i in index] for name in METRICS}
