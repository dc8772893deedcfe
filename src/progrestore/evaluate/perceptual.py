"""The LPIPS network (v0.1 AlexNet with the verified pretrained trunk) and its measure for the metric
registry: each distinct image's features are computed once while they are among the last few used (a
clip's frames recur: against the clean image, against their neighbours for tLP, against another method's
frames), frames go through AlexNet ``batch`` at a time (one measured fastest on CPU)."""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict

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
    """The registry's LPIPS measure over one network (shared when given); no masked variant.

    The features of the last ``remembered`` distinct images are kept (by their bytes): one clip's clean
    image and three trajectories fit (1 + 3 x 9 = 28 at 9 frames; at 1360x768 each image's features take
    43 MB). An image's features do not depend on what it is batched with at ``batch`` 1, so the values are
    those of computing every pass anew."""

    def __init__(self, network: Lpips | None = None, batch: int = 1, remembered: int = 32) -> None:
        self.network = network or Lpips()
        self.batch = batch
        self.remembered = remembered
        self._features: OrderedDict[bytes, list[torch.Tensor]] = OrderedDict()

    def features(self, images: np.ndarray) -> list[list[torch.Tensor]]:
        """Each image's features (as a batch of one), the ones not remembered computed ``batch`` at a time."""
        keys = [hashlib.blake2b(repr(image.shape).encode() + image.tobytes()).digest() for image in images]
        new = list(dict.fromkeys(key for key in keys if key not in self._features))
        for start in range(0, len(new), self.batch):
            chunk = [keys.index(key) for key in new[start : start + self.batch]]
            computed = self.network.features(images[chunk])
            for j, i in enumerate(chunk):
                self._features[keys[i]] = [layer[j : j + 1] for layer in computed]
        for key in keys:
            self._features.move_to_end(key)
        found = [self._features[key] for key in keys]
        while len(self._features) > self.remembered:
            self._features.popitem(last=False)
        return found

    def reference(self, clean: np.ndarray) -> list[torch.Tensor]:
        return self.features(clean[None])[0]

    def score(
        self, frames: np.ndarray, reference: list[torch.Tensor], mask: np.ndarray | None = None
    ) -> list[float]:
        if mask is not None:
            raise ValueError("LPIPS has no masked variant")
        return [float(self.network.distance(f, reference)[0]) for f in self.features(frames)]
