"""Zero-shot evaluation on a folder in the ReLoBlur layout (a small fixture made here, not real data)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from progrestore.cli import main
from progrestore.errors import InputError
from progrestore.evaluate.reloblur import find_pairs


def _fixture(root, with_mask: bool = True) -> None:
    """Two 96x64 (3:2) pairs; the 'blur' is a real horizontal motion blur of the sharp image."""
    rng = np.random.default_rng(0)
    for scene, seq in (("street", "00"), ("ball", "03")):
        sharp = cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3)).astype(np.uint8), (0, 0), 2)
        blur = cv2.filter2D(sharp, -1, np.ones((1, 9), np.float32) / 9, borderType=cv2.BORDER_REFLECT_101)
        folder = root / "test" / scene / seq
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "f0001_sharp.png"), sharp)
        cv2.imwrite(str(folder / "f0001_blur.png"), blur)
        if with_mask:
            mask = np.zeros((64, 96), np.uint8)
            mask[20:44, 30:70] = 255
            (root / "masks" / "test" / scene / seq).mkdir(parents=True)
            cv2.imwrite(str(root / "masks" / "test" / scene / seq / f"{seq}.png"), mask)


def test_pairs_and_masks_are_found(tmp_path):
    _fixture(tmp_path)
    pairs = find_pairs(tmp_path, "test")
    assert [p.pair_id for p in pairs] == ["ball/03/f0001", "street/00/f0001"]
    assert all(p.mask is not None for p in pairs)


def test_missing_layout_is_named(tmp_path):
    with pytest.raises(InputError, match="ReLoBlur layout"):
        find_pairs(tmp_path, "test")


def test_reloblur_command_writes_per_frame_metrics(tmp_path, monkeypatch):
    _fixture(tmp_path / "fixture")
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    params = tmp_path / "params.yaml"
    params.write_text(
        "clip: {width: 64, height: 48, frames: 9, fps: 5, clips_per_image: 2}\n"
        "evaluate: {methods: [oracle, identity, classical]}\n"
    )
    out = tmp_path / "metrics" / "reloblur.json"
    assert main(["--params", str(params), "reloblur", str(tmp_path / "fixture"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 2 and set(report["final"]) == {"identity", "classical"}
    identity = report["per_frame"]["identity"]
    assert len(identity["lpips"]) == 9 and len(set(identity["lpips"])) == 1
    assert 0 < identity["psnr_masked"][0] < 60 and 0 < identity["ssim_masked"][0] <= 1
    assert json.loads((tmp_path / "metrics" / "reloblur" / "lpips.json").read_text())[0]["frame"] == 1
