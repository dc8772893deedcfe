"""The LPIPS network (v0.1 AlexNet with the verified pretrained trunk) and its measure for the metric
registry: the reference's features are computed once per clip, frames go through AlexNet ``batch`` at a
time (one measured fastest on CPU)."""

from __future__ import annotations

import warnings

import lpips
import numpy as np
import torch

from progrestore.evaluate.lpips_weights import TRUNK_SHA256, load_trunk


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


class LpipsMeasure:
    """The registry's LPIPS measure over one network (shared when given); no masked variant."""

    def __init__(self, network: Lpips | None = None, batch: int = 1) -> None:
        self.network = network or Lpips()
        self.batch = batch

    def reference(self, clean: np.ndarray) -> list[torch.Tensor]:
        return self.network.features(clean[None])

    def score(
        self, frames: np.ndarray, reference: list[torch.Tensor], mask: np.ndarray | None = None
    ) -> list[float]:
        if mask is not None:
            raise ValueError("LPIPS has no masked variant")
        values: list[float] = []
        for start in range(0, len(frames), self.batch):
            chunk = frames[start : start + self.batch]
            values += [float(d) for d in self.network.distance(self.network.features(chunk), reference)]
        return values
