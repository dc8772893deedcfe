"""The CogVideoX I2V LoRA with the tiny random models: conditioning, training, resume, save/load, inference."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from peft.utils import get_peft_model_state_dict
from safetensors import safe_open

from progrestore.infer.restore import restore_image
from progrestore.model.cogvideox.conditioning import image_latents, latent_frames, padding_frames
from progrestore.model.specification import Sampling
from progrestore.train.export import save_lora
from progrestore.train.loop import loss_for_step, train_lora
from progrestore.train.records import run_costs, run_record

from .helpers.tiny_training import synthetic_data, tiny_config, tiny_model


def _sampling(steps: int, guidance: float) -> Sampling:
    return Sampling(steps=steps, guidance_scale=guidance, seed=0, scheduler="dpm", dynamic_cfg=False)


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("profile", ["tiny", "tiny-1.0"])
def test_training_conditioning_equals_the_pipelines(profile):
    pipe = tiny_model(profile).pipe
    image = torch.rand(1, 3, 96, 160) * 2 - 1
    p_t = pipe.transformer.config.patch_size_t
    extra = padding_frames(latent_frames(9), p_t)
    _, expected = pipe.prepare_latents(
        image, 1, 4, 9 + extra * 4, 96, 160, torch.float32, "cpu", torch.Generator().manual_seed(3)
    )
    ours = image_latents(pipe.vae, image, 9, p_t, torch.Generator().manual_seed(3))
    assert torch.equal(ours, expected)
    assert ours.shape[1] == (4 if profile == "tiny" else 3)


def test_only_lora_parameters_receive_gradients():
    model = tiny_model()
    pipe = model.pipe
    data = synthetic_data(model, clips=1)
    pipe.transformer.add_adapter(tiny_config().lora_config())
    loss = loss_for_step(model, pipe.transformer, data, tiny_config(), step=0, rank=0, world=1)
    loss.backward()
    with_grad = {
        n for n, p in pipe.transformer.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert with_grad and all("lora_" in n for n in with_grad)
    assert all(p.grad is None for n, p in pipe.transformer.named_parameters() if "lora_" not in n)
    assert all(p.grad is None for p in pipe.vae.parameters()) and all(
        p.grad is None for p in pipe.text_encoder.parameters()
    )


def _held_out_loss(model, transformer, data, cfg) -> float:
    with torch.no_grad():
        return float(
            np.mean(
                [loss_for_step(model, transformer, data, cfg, 10_000 + s, 0, 1).item() for s in range(12)]
            )
        )


def test_loss_falls_when_overfitting_one_clip(tmp_path):
    model = tiny_model()
    pipe = model.pipe
    data = synthetic_data(model, clips=1)
    cfg = tiny_config(steps=60, learning_rate=3e-3, checkpoint_every=1000)
    pipe.transformer.add_adapter(cfg.lora_config())
    before = _held_out_loss(model, pipe.transformer, data, cfg)
    pipe.transformer.delete_adapters("default")
    transformer, _ = train_lora(model, data, cfg, tmp_path / "ck", "overfit")
    after = _held_out_loss(model, transformer, data, cfg)
    assert after < 0.8 * before, (before, after)


def test_the_gathered_adapter_is_what_peft_itself_picks_from_the_trained_model(tmp_path):
    """The trainer picks the LoRA from accelerate's whole state dict by the names it had before wrapping
    (peft's picker walks the module tree, which FSDP renames). Unwrapped, both must agree exactly."""
    model = tiny_model()
    transformer, result = train_lora(
        model, synthetic_data(model), tiny_config(steps=2), tmp_path / "ck", "fp"
    )
    expected = get_peft_model_state_dict(transformer)
    assert sorted(result.adapter) == sorted(expected) and len(expected) == 16
    for key, value in expected.items():
        assert result.adapter[key].dtype == torch.float32
        assert torch.equal(result.adapter[key], value.float()), key
    assert any(value.abs().max() > 0 for key, value in result.adapter.items() if "lora_B" in key)


def test_save_lora_refuses_an_empty_adapter(tmp_path):
    """What a non-main FSDP process holds: nothing to save, said so instead of an empty file."""
    with pytest.raises(ValueError, match="no LoRA weights"):
        save_lora(tiny_model(), {}, tiny_config(), tmp_path / "lora")
    assert not (tmp_path / "lora").exists()


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    cfg = tiny_config(steps=8, checkpoint_every=4)
    model = tiny_model()
    data = synthetic_data(model)
    straight, straight_result = train_lora(model, data, cfg, tmp_path / "straight", "fp")

    first_model, first = train_lora(tiny_model(), data, cfg, tmp_path / "killed", "fp", stop_after=4)
    assert [log.step for log in first.logs] == [1, 2, 3, 4]
    # a checkpoint holds the LoRA weights, not the frozen base model (11 GB for the 5B models)
    with safe_open(str(tmp_path / "killed" / "checkpoint-4" / "model.safetensors"), "pt") as saved:
        keys = list(saved.keys())
    assert keys and all(".lora_A." in key or ".lora_B." in key for key in keys)
    assert len(keys) == len(get_peft_model_state_dict(first_model))
    # a new process: fresh model, state comes from the checkpoint
    resumed, second = train_lora(tiny_model(), data, cfg, tmp_path / "killed", "fp")
    assert second.resumed_from == 4 and [log.step for log in second.logs] == list(range(1, 9))
    # the record of the resumed run is the uninterrupted run's, every figure: same losses, strict JSON
    assert [log.loss for log in second.logs] == [log.loss for log in straight_result.logs]
    record = run_record(second.logs)
    assert record == run_record(straight_result.logs) and record["steps_logged"] == 8
    json.dumps(record, allow_nan=False)
    costs = run_costs(second)  # what differs between the two runs goes to the run log
    assert costs["resumed_from"] == 4 and costs["peak_memory_mb"] > 0 and costs["seconds_per_step"] > 0
    # a rerun over finished checkpoints trains nothing and reports the same run
    _, rerun = train_lora(tiny_model(), data, cfg, tmp_path / "killed", "fp")
    assert rerun.resumed_from == 8 and run_record(rerun.logs) == record
    a, b = get_peft_model_state_dict(straight), get_peft_model_state_dict(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    _, fresh = train_lora(tiny_model(), data, cfg, tmp_path / "killed", "another-fingerprint", stop_after=1)
    assert fresh.resumed_from == 0  # checkpoints of other settings are never resumed


def test_saved_lora_reloads_into_a_fresh_pipeline_with_identical_output(tmp_path):
    cfg = tiny_config(steps=4, alpha=16, rank=4)
    model = tiny_model()
    data = synthetic_data(model)
    transformer, result = train_lora(model, data, cfg, tmp_path / "ck", "fp")
    model.pipe.transformer = transformer
    save_lora(model, result.adapter, cfg, tmp_path / "lora")
    image = np.random.default_rng(1).integers(0, 256, (96, 160, 3), dtype=np.uint8)
    embeds, negative = model.encode_prompt("A cat becomes sharper."), model.encode_prompt("")
    sampling = _sampling(3, 6.0)
    trained = restore_image(model, image, embeds, negative, 9, sampling)

    fresh = tiny_model()
    base = restore_image(fresh, image, embeds, negative, 9, sampling)
    fresh.load_lora(tmp_path / "lora")
    reloaded = restore_image(fresh, image, embeds, negative, 9, sampling)
    assert trained.shape == (9, 96, 160, 3)
    assert np.array_equal(reloaded, trained) and not np.array_equal(base, trained)
    scaling = {
        m.scaling["restoration"] for m in fresh.denoiser.modules() if hasattr(m, "scaling") and m.scaling
    }
    assert scaling == {16 / 4}  # alpha / rank survived the reload (adapter metadata)


def test_trajectory_has_nine_frames_at_the_inputs_size():
    model = tiny_model()
    image = np.random.default_rng(2).integers(0, 256, (77, 131, 3), dtype=np.uint8)
    embeds = model.encode_prompt("A dark room brightens.")
    frames = restore_image(model, image, embeds, embeds, 9, _sampling(2, 1.0))
    assert frames.shape == (9, 77, 131, 3) and frames.dtype == np.uint8


def test_tiny_1_0_runs_off_its_native_size_once_the_learned_pe_is_dropped():
    model = tiny_model("tiny-1.0", positional_embedding="none")
    image = np.random.default_rng(3).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    embeds = model.encode_prompt("sharper")
    frames = model.sample(image, embeds, embeds, 9, _sampling(2, 1.0))
    assert frames.shape == (9, 128, 128, 3)


def _two_cpu_processes(out: Path, *wrapper: str) -> list[dict]:
    """tests/helpers/tiny_training.py under ddp-cpu.yaml (through ``wrapper``'s script, if any)."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    command += [
        "--config_file",
        str(REPO / "configs/accelerate/ddp-cpu.yaml"),
        "--main_process_port",
        "0",
        *wrapper,
    ]
    command += [str(REPO / "tests/helpers/tiny_training.py"), str(out)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.pipeline
def test_two_cpu_processes_train_one_lora_with_ddp(tmp_path):
    ranks = _two_cpu_processes(tmp_path)
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["clips"] != ranks[1]["clips"]  # the processes see different clips
    assert ranks[0]["digest"] == ranks[1]["digest"]  # and DDP keeps their weights identical
    # warmup counts optimizer steps whatever the process count (accelerate steps the scheduler once per
    # process): 2 warmup steps at lr 1e-3 give 5e-4 after step 1, as in one process, not 1e-3 already
    assert ranks[0]["lrs"] == pytest.approx([5e-4, 1e-3, 1e-3], rel=1e-9)
    lora = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    assert lora.is_file()
    # the GPU check's wrapper (ranks share one GPU over gloo) forms the group itself and runs the script
    # as __main__ with its arguments: accelerate keeps that group, and the run is the same, byte for byte
    shared = _two_cpu_processes(tmp_path / "wrapped", str(REPO / "benchmarks/ranks_on_one_gpu.py"))
    assert shared == ranks
    assert (
        tmp_path / "wrapped" / "lora" / "pytorch_lora_weights.safetensors"
    ).read_bytes() == lora.read_bytes()


def test_restore_command_turns_a_users_image_into_a_trajectory(tmp_path, monkeypatch):
    import cv2
    import yaml

    from progrestore.cli import main
    from progrestore.io.video import read_video

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    photo = np.random.default_rng(4).integers(0, 256, (101, 157, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.jpg"), photo)
    assert main(["restore", "photo.jpg", "--task", "lowlight", "--no-lora", "--out", "restored"]) == 0
    frames = read_video(tmp_path / "restored" / "trajectory.mp4")
    assert frames.shape == (9, 101, 157, 3)
    assert (tmp_path / "restored" / "strip.png").stat().st_size > 0
    record = json.loads((tmp_path / "restored" / "restore.json").read_text())
    assert "plumbing, not quality" in record["profile"]
    assert (
        yaml.safe_load((REPO / "params.yaml").read_text())["prompts"]["uniform"]["lowlight"]
        == record["prompt"]
    )
    assert main(["restore", "photo.jpg", "--task", "lowlight", "--out", "again"]) == 2  # no LoRA trained here


RANDOM_DRAWS = {
    "rand",
    "randn",
    "randint",
    "randperm",
    "normal",
    "bernoulli",
    "multinomial",
    "rand_like",
    "randn_like",
}


def test_no_seeded_draw_asks_torch_for_a_device_tensor_from_a_generator():
    """torch refuses a CPU generator for a CUDA tensor (every GPU training step raised once): seeded draws
    either stay on the generator's device or go through diffusers' ``randn_tensor``, which draws there
    and moves the result."""
    offending = []
    for path in sorted((REPO / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                keywords = {k.arg for k in node.keywords}
                is_torch = isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                if is_torch and node.func.attr in RANDOM_DRAWS and {"generator", "device"} <= keywords:
                    offending.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offending, offending


def test_a_code_change_gives_the_checkpoints_another_fingerprint(tmp_path, monkeypatch):
    from progrestore.config import load_params
    from progrestore.train.run import checkpoint_fingerprint

    params = load_params(REPO / "params.yaml")
    monkeypatch.chdir(tmp_path)
    for name in ("video.safetensors", "text.safetensors"):
        (tmp_path / "data/encoded/sr").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data/encoded/sr" / name).write_bytes(name.encode())
    code = tmp_path / "loop.py"
    code.write_text("LOSS_WEIGHT = 1\n")
    encoded = tmp_path / "data/encoded"
    before = checkpoint_fingerprint(params, ["sr"], encoded, [code])
    assert checkpoint_fingerprint(params, ["sr"], encoded, [code]) == before
    code.write_text("LOSS_WEIGHT = 2\n")
    assert checkpoint_fingerprint(params, ["sr"], encoded, [code]) != before


@pytest.mark.pipeline
@pytest.mark.parametrize("config", ["fsdp.yaml"])  # deepspeed-zero2.yaml: checked by hand (an optional extra)
def test_sharded_training_configs_are_refused_on_cpu_instead_of_silently_running_ddp(tmp_path, config):
    """accelerate 1.15 drops the FSDP and DeepSpeed plugins on CPU processes (plain gloo DDP would run under
    the sharded config's name): the trainer says so before any work. (Without DeepSpeed installed,
    accelerate's launcher itself stops a DeepSpeed config.)"""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    command += [str(REPO / "configs/accelerate" / config), "--num_processes", "2", "--mixed_precision", "no"]
    command += ["--main_process_port", "29531", str(REPO / "tests/helpers/tiny_training.py"), str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    engine = "FSDP" if config.startswith("fsdp") else "DEEPSPEED"
    assert f"accelerate launch with {engine} needs GPUs" in result.stderr
    assert not (tmp_path / "lora").exists()
