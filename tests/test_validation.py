"""Validation during training: it leaves the LoRA as it would be, its numbers are those of sampling the
LoRA it validated, it logs curves by step and viewable trajectories to MLflow, and only the main process
validates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from progrestore.config import Section, load_params
from progrestore.errors import ParamsError
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.model.profiles import profile_named
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import LORA_WEIGHTS
from progrestore.train.export import save_lora
from progrestore.train.loop import train_lora
from progrestore.train.validation import ValidationConfig, mlflow_values

from .conftest import REPO
from .helpers.tiny_training import synthetic_data, tiny_config, tiny_model, validator


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny training of 5 steps without validation and one validating every 2 steps (2, 4 and the
    last, 5), each LoRA saved, and the validator with what it sampled."""
    out = tmp_path_factory.mktemp("validation")
    cfg = tiny_config(steps=5, checkpoint_every=100)
    saved, result = {}, {}
    for name, every in (("off", 0), ("on", 2)):
        model = tiny_model()
        data = synthetic_data(model, clips=2)
        check = validator(model, data, every) if every else None
        steps: list[int] = []
        sampled: list[np.ndarray] = []
        if check is not None:
            plain = check.trajectories

            def remember(plain=plain, sampled=sampled) -> list[np.ndarray]:
                frames = plain()
                sampled.append(frames[0])
                return frames

            check.trajectories = remember

        def validate(step: int, check=check, steps=steps) -> None:
            check(step, track=False)
            steps.append(step)

        _, trained = train_lora(
            model,
            data,
            cfg,
            out / name / "checkpoints",
            name,
            validate=validate if every else None,
            validate_every=every,
        )
        saved[name] = save_lora(model, trained.adapter, cfg, out / name)
        result[name] = {"steps": steps, "validator": check, "sampled": sampled, "logs": trained.logs}
    return saved, result


def test_the_lora_is_the_same_byte_for_byte_with_validation_on_and_off(runs):
    saved, result = runs
    assert result["on"]["steps"] == [2, 4, 5]  # every 2 steps and after the last
    assert result["off"]["steps"] == []
    assert saved["on"].read_bytes() == saved["off"].read_bytes()
    assert [log.loss for log in result["on"]["logs"]] == [log.loss for log in result["off"]["logs"]]
    # the validations saw three different LoRAs: they are not a picture of the base model
    assert len(result["on"]["sampled"]) == 3
    first, last = result["on"]["sampled"][0], result["on"]["sampled"][-1]
    assert np.abs(first.astype(int) - last.astype(int)).max() > 0


def test_the_last_validation_is_the_saved_lora_sampled_and_scored_as_the_evaluation_scores(runs):
    saved, result = runs
    check = result["on"]["validator"]
    record = check.last
    assert record["step"] == 5
    # sample the saved LoRA afresh, as restore loads one (unfused), and score it with a new scorer
    model = tiny_model()
    model.load_lora(saved["on"].parent)
    clip = check.clips[0]
    frames = model.sample(clip.image, clip.prompt_embeds, clip.negative_embeds, 9, check.config.sampling)
    np.testing.assert_array_equal(frames, result["on"]["sampled"][-1])
    scorer = FrameScorer()
    expected = scorer.score(frames, scorer.reference(clip.clean))
    for metric, values in expected.items():
        assert record["per_frame"][metric] == pytest.approx(values, rel=1e-12)
        assert record["final"][metric] == pytest.approx(values[-1], rel=1e-12)
    assert set(record["progression"]["psnr"]) == {"spearman", "steps_not_worse", "area", "frame_90"}
    json.dumps(record, allow_nan=False)  # train.json keeps it: strict JSON
    values = mlflow_values(record)
    assert values["val/psnr"] == record["final"]["psnr"]
    assert values["val/lpips_frame9"] == record["per_frame"]["lpips"][8]


def test_validation_logs_curves_by_step_and_viewable_trajectories_to_mlflow(runs, tmp_path, monkeypatch):
    import mlflow

    from progrestore import tracking

    _, result = runs
    check = result["on"]["validator"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv(tracking.DISABLE_ENV, "on")
    with tracking.start_run("progrestore-test", "validation", {}) as run:
        for step in (3, 6):
            check(step, track=True)
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run.info.run_id, "val/lpips")
    assert [point.step for point in history] == [3, 6]
    assert history[-1].value == pytest.approx(check.last["final"]["lpips"])
    assert [p.step for p in client.get_metric_history(run.info.run_id, "val/ssim_frame1")] == [3, 6]
    assert [p.step for p in client.get_metric_history(run.info.run_id, "val/seconds")] == [3, 6]
    names = [f.path for f in client.list_artifacts(run.info.run_id, "validation/step-000006")]
    stem = "validation/step-000006/" + check.clips[0].name.replace("/", "_")
    assert names == [f"{stem}.gif", f"{stem}.mp4"]
    gif = Path(client.download_artifacts(run.info.run_id, f"{stem}.gif", str(tmp_path)))
    from PIL import Image

    with Image.open(gif) as image:
        assert image.n_frames == 9 and image.size == check.clips[0].image.shape[1::-1]


def _settings() -> ModelSettings:
    profile = profile_named("tiny")
    return ModelSettings(profile, None, 0, None, profile.height, profile.width)


def test_validation_settings_are_read_and_checked_by_their_keys():
    params = load_params(REPO / "params.yaml")
    config = ValidationConfig.from_params(params, _settings())
    tiny = params.raw("train")["tiny"]
    assert (config.every, config.clips, config.sampling.steps) == (
        tiny["validate_every"],
        tiny["validate_clips"],
        tiny["validate_steps"],
    )
    assert config.sampling.guidance_scale == params.raw("restore")["guidance_scale"]
    assert (
        not config.sampling.fuse_lora and not config.sampling.compile
    )  # the LoRA under training stays as is
    raw = params.raw("train") | {"tiny": {**tiny, "validate_every": -1}}
    bad = Section({**{k: params.raw(k) for k in ("model", "restore")}, "train": raw})
    with pytest.raises(ParamsError, match=r"train\.tiny\.validate_every|train\.validate_every"):
        ValidationConfig.from_params(bad, _settings())


@pytest.mark.pipeline
def test_only_the_main_process_validates_and_ddp_trains_the_same_lora(tmp_path):
    def launch(out: Path, *extra: str) -> list[dict]:
        env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "accelerate.commands.launch"]
        command += [
            "--config_file",
            str(REPO / "configs/accelerate/ddp-cpu.yaml"),
            "--main_process_port",
            "0",
        ]
        command += [str(REPO / "tests/helpers/tiny_training.py"), str(out), *extra]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]

    plain = launch(tmp_path / "off")
    checked = launch(tmp_path / "on", "--validate")
    assert [r["validated"] for r in checked] == [[2, 3], []]  # the main process only; the other waited
    assert [r["digest"] for r in checked] == [r["digest"] for r in plain]
    lora = load_file(str(tmp_path / "on" / "lora" / LORA_WEIGHTS))
    expected = load_file(str(tmp_path / "off" / "lora" / LORA_WEIGHTS))
    assert lora.keys() == expected.keys()
    assert all(torch.equal(lora[k], expected[k]) for k in lora)


def test_a_checkpoint_resumes_whatever_the_validation_settings_but_not_other_training_settings(tmp_path):
    from progrestore.train.run import checkpoint_fingerprint

    params = load_params(REPO / "params.yaml")
    (tmp_path / "sr").mkdir()
    for name in ("video.safetensors", "text.safetensors"):
        (tmp_path / "sr" / name).write_bytes(name.encode())

    def fingerprint(**train) -> str:
        raw = params.raw("train") | train
        return checkpoint_fingerprint(
            Section({"model": params.raw("model"), "train": raw}), ["sr"], tmp_path, []
        )

    tiny = params.raw("train")["tiny"]
    before = fingerprint()
    assert fingerprint(validate_every=7, validate_clips=3) == before
    assert fingerprint(tiny={**tiny, "validate_every": 0, "validate_steps": 2}) == before
    assert fingerprint(steps=7) != before
    assert fingerprint(tiny={**tiny, "rank": 2}) != before
