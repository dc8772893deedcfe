"""Stages ``encode_video``, ``encode_text`` and ``train``: parameters in, caches and a LoRA out."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from progrestore import tracking
from progrestore.config import ClipSettings, Section
from progrestore.data.dataset import read_clip_manifest
from progrestore.io.atomic import write_json
from progrestore.model.build import load_components, make_pipeline
from progrestore.model.profiles import Profile, profile_from_params
from progrestore.train.encode import (
    encode_texts,
    encode_videos,
    load_text_cache,
    load_video_cache,
    prompt_key,
    read_prompts,
)
from progrestore.train.loop import TrainConfig, TrainData, mean_loss, save_lora, train_lora

ENCODED_DIR = Path("data/encoded")
MODELS_DIR = Path("models")


def model_settings(params: Section) -> tuple[Profile, str | None, int, bool]:
    model = params.section("model")
    profile = profile_from_params(model)
    path = None if model.raw("path") is None else model.text("path")
    return profile, path, model.integer("seed", 0), model.boolean("drop_learned_pe")


def pipeline_for(params: Section):
    profile, path, seed, drop_pe = model_settings(params)
    return profile, make_pipeline(load_components(profile, path, seed, drop_pe))


def run_encode_video(params: Section, task: str, datasets: Path) -> Path:
    profile, pipe = pipeline_for(params)
    out = ENCODED_DIR / task / "video.safetensors"
    seed = params.section("model").integer("seed", 0)
    encode_videos(pipe.components, datasets / task / "train", profile.height, profile.width, seed, out)
    return out


def run_encode_text(params: Section, task: str, datasets: Path) -> Path:
    _, pipe = pipeline_for(params)
    prompts = []
    for split in ("train", "val"):
        folder = datasets / task / split
        prompts += read_prompts(folder, read_clip_manifest(folder))
    out = ENCODED_DIR / task / "text.safetensors"
    encode_texts(pipe, prompts, out)
    return out


def train_data(tasks: list[str], datasets: Path, frames: int) -> TrainData:
    data = TrainData([], {}, {}, {}, frames)
    for task in tasks:
        folder = datasets / task / "train"
        entries = read_clip_manifest(folder)
        prompts = read_prompts(folder, entries)
        videos = load_video_cache(ENCODED_DIR / task / "video.safetensors")
        texts = load_text_cache(ENCODED_DIR / task / "text.safetensors")
        for entry, prompt in zip(entries, prompts, strict=True):
            key = f"{task}/{entry['clip_id']}"
            data.clip_ids.append(key)
            data.latents[key] = videos[entry["clip_id"]]["latents"]
            data.first_frames[key] = videos[entry["clip_id"]]["first_frame"]
            data.prompt_embeds[key] = texts[prompt_key(prompt)]
    return data


def _fingerprint(params: Section, tasks: list[str]) -> str:
    digest = hashlib.sha256(repr((params.raw("model"), params.raw("train"), tasks)).encode())
    for task in tasks:
        for name in ("video.safetensors", "text.safetensors"):
            digest.update((ENCODED_DIR / task / name).read_bytes())
    return digest.hexdigest()


def run_train(params: Section, tasks: list[str], datasets: Path, out_dir: Path) -> Path:
    """Train one LoRA on ``tasks``; writes the weights, checkpoints and ``train.json`` under ``out_dir``.

    Under ``accelerate launch`` every process trains; only the main one tracks and writes files.
    """
    import torch
    from accelerate import PartialState

    main_process = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    profile, path, seed, drop_pe = model_settings(params)
    cfg = TrainConfig.from_section(params.section("train"), profile.tiny)
    data = train_data(tasks, datasets, ClipSettings.from_params(params).frames)
    pipe = make_pipeline(load_components(profile, path, seed, drop_pe))
    run_params = {
        "profile": profile.name,
        "tasks": ",".join(tasks),
        **{k: str(v) for k, v in cfg.__dict__.items()},
    }
    tracked = tracking.start_run(
        "progrestore-train", f"train-{'+'.join(tasks)}", run_params, {"kind": "train"}
    )
    with tracked if main_process else contextlib.nullcontext() as run:

        def log_step(log) -> None:
            if run is not None:
                values = {
                    "loss": log.loss,
                    "lr": log.lr,
                    "step_seconds": log.seconds,
                    "peak_memory_mb": log.peak_memory_mb,
                }
                tracking.log_step(values, log.step)

        fingerprint = _fingerprint(params, tasks)
        transformer, result = train_lora(
            pipe, data, cfg, out_dir / "checkpoints", fingerprint, on_step=log_step
        )
        weights = out_dir / "pytorch_lora_weights.safetensors"
        if main_process:
            save_lora(transformer, cfg, out_dir)
            summary = {
                "profile": profile.label,
                "tasks": tasks,
                "steps": cfg.steps,
                "resumed_from": result.resumed_from,
                "clips": len(data.clip_ids),
                "final_loss_mean10": mean_loss(result.logs, 10),
                "seconds_per_step": sum(log.seconds for log in result.logs) / max(1, len(result.logs)),
                "peak_memory_mb": max((log.peak_memory_mb for log in result.logs), default=0.0),
            }
            write_json(out_dir / "train.json", summary)
        if run is not None:
            tracking.log_artifacts([weights, out_dir / "train.json"])
    return weights
