"""Zero-shot evaluation on a folder in the ReLoBlur layout (a small fixture made here, not real data)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from progrestore.cli import main
from progrestore.errors import InputError
from progrestore.evaluate.published import PAPER_TABLE_I_LPIPS
from progrestore.evaluate.reloblur import find_pairs

from .conftest import REPO


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


def _masked_fixture(root) -> None:
    """One 240x160 (3:2) pair blurred only inside its mask, as a moving object on a still background."""
    rng = np.random.default_rng(1)
    sharp = cv2.GaussianBlur(rng.integers(0, 256, (160, 240, 3)).astype(np.uint8), (0, 0), 3)
    sharp = cv2.normalize(sharp, None, 0, 255, cv2.NORM_MINMAX)
    mask = np.zeros((160, 240), np.uint8)
    mask[50:110, 80:160] = 255
    moved = cv2.filter2D(sharp, -1, np.ones((1, 25), np.float32) / 25, borderType=cv2.BORDER_REFLECT_101)
    blur = np.where(mask[..., None] > 0, moved, sharp)
    folder = root / "test" / "ball" / "00"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "f0001_sharp.png"), sharp)
    cv2.imwrite(str(folder / "f0001_blur.png"), blur)
    (root / "masks" / "test" / "ball" / "00").mkdir(parents=True)
    cv2.imwrite(str(root / "masks" / "test" / "ball" / "00" / "00.png"), mask)


@pytest.fixture(scope="module")
def deblur_lora(tmp_path_factory):
    """A LoRA trained for two steps on the tiny profile, saved as the train stage saves it."""
    from progrestore.train.export import save_lora
    from progrestore.train.loop import train_lora

    from .helpers.tiny_training import synthetic_data, tiny_config, tiny_model

    folder = tmp_path_factory.mktemp("lora")
    model = tiny_model()
    cfg = tiny_config(steps=2)
    _, result = train_lora(model, synthetic_data(model), cfg, folder / "checkpoints", "reloblur-test")
    save_lora(model, result.adapter, cfg, folder / "deblur")
    return folder / "deblur"


def test_reloblur_runs_the_repositorys_methods_and_sets_the_model_beside_table_i(
    tmp_path, monkeypatch, deblur_lora
):
    """The repository's own params.yaml (evaluate.methods has the model): the fine-tuned model runs through
    the restore stage's sampling, and the report carries the paper's Table I beside its LPIPS."""
    _masked_fixture(tmp_path / "fixture")
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    out = tmp_path / "metrics" / "reloblur.json"
    args = ["--params", str(REPO / "params.yaml"), "reloblur", str(tmp_path / "fixture"), "--out", str(out)]
    assert main([*args, "--lora", str(deblur_lora)]) == 0
    report = json.loads(out.read_text())  # numbers only
    about = json.loads((tmp_path / "metrics" / "reloblur" / "about.json").read_text())  # what they are
    methods = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["methods"]
    assert set(report["final"]) == set(methods) - {"oracle", "vae"} and "model" in report["final"]
    assert "plumbing, not quality" in about["model_profile"] and about["profile"] == "tiny"
    assert about["working_size"] == [96, 160]  # the tiny model's size: it restores the whole window
    rows = about["paper_table_i"]["frames"]
    assert [row["paper_lpips"] for row in rows] == list(PAPER_TABLE_I_LPIPS)
    lpips_rows = json.loads((tmp_path / "metrics" / "reloblur" / "lpips.json").read_text())
    assert [row["model_lpips"] for row in rows] == [row["model"] for row in lpips_rows]
    assert about["methods"]["classical"].startswith(
        "the task's classical restorer: unsharp mask"
    )  # not Wiener
    assert about["restoration_task"] == "deblur"  # reloblur.task
    # the mask: identity is exact outside it up to resampling, blurred inside, so masked PSNR is far lower
    identity = report["final"]["identity"]
    assert identity["psnr_masked"] < identity["psnr"] - 3.0
    assert identity["ssim_masked"] < identity["ssim"] - 0.05


def test_reloblur_without_a_trained_lora_stops_before_work(tmp_path, monkeypatch, capsys):
    _fixture(tmp_path / "fixture")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    args = ["--params", str(REPO / "params.yaml"), "reloblur", str(tmp_path / "fixture")]
    assert main(args) == 2  # models/deblur holds no LoRA here: one line, no traceback
    assert "models/deblur/pytorch_lora_weights.safetensors not found" in capsys.readouterr().err
    assert not (tmp_path / "metrics").exists()


def test_reloblur_without_the_model_writes_per_frame_metrics(tmp_path, monkeypatch):
    _fixture(tmp_path / "fixture")
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    params = tmp_path / "params.yaml"
    params.write_text(
        "clip: {width: 64, height: 48, frames: 9, fps: 5, clips_per_image: 2}\n"
        "evaluate: {methods: [oracle, identity, classical]}\n"
        "reloblur: {task: deblur}\n"
    )
    out = tmp_path / "metrics" / "reloblur.json"
    assert main(["--params", str(params), "reloblur", str(tmp_path / "fixture"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clips"] == 2 and set(report["final"]) == {"identity", "classical"}
    lpips_rows = json.loads((tmp_path / "metrics" / "reloblur" / "lpips.json").read_text())
    assert [row["frame"] for row in lpips_rows] == list(range(1, 10))
    assert len({row["identity"] for row in lpips_rows}) == 1  # one output image repeated over the frames
    about = json.loads((tmp_path / "metrics" / "reloblur" / "about.json").read_text())
    assert "model_lpips" not in about["paper_table_i"]["frames"][0]


@pytest.mark.pipeline
def test_two_processes_score_the_pairs_as_one(tmp_path, deblur_lora):
    """Under accelerate launch (2 CPU processes over gloo) each process samples and scores one of the two
    pairs and the main process writes the report: the same numbers, to the last bit, as one process with
    as many threads as each of the two (torchrun gives each 1; CPU LPIPS differs in its 8th digit with
    more threads, as it would with one process on another machine)."""
    import os
    import subprocess
    import sys

    _fixture(tmp_path / "fixture")
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "PROGRESTORE_MLFLOW": "off", "OMP_NUM_THREADS": "1"}
    args = [
        "-m",
        "progrestore.cli",
        "--params",
        str(REPO / "params.yaml"),
        "reloblur",
        str(tmp_path / "fixture"),
    ]
    args += ["--lora", str(deblur_lora), "--out"]
    launch = [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
    ]
    launch += ["--main_process_port", "0", "--mixed_precision", "no", "--dynamo_backend", "no"]
    printed = {}
    for run, launcher in (("one", []), ("two", launch)):
        command = [sys.executable, *launcher, *args, str(tmp_path / run / "reloblur.json")]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        printed[run] = result.stdout
    assert printed["two"] == printed["one"]  # the main process alone reports, and the same numbers
    one, two = (
        {p.relative_to(tmp_path / run): p.read_bytes() for p in (tmp_path / run).rglob("*.json")}
        for run in ("one", "two")
    )
    assert len(one) > 3 and two == one
    assert json.loads((tmp_path / "two" / "reloblur.json").read_text())["clips"] == 2
