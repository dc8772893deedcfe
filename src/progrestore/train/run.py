"""A training run, the train stage's computation (:mod:`progrestore.stages.train`): the encode stages' caches
and the ``model``/``train`` parameters in, a LoRA out."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from progrestore import tasks as task_registry
from progrestore import tracking
from progrestore.config import Section
from progrestore.data.manifest import read_clip_manifest, read_prompts
from progrestore.entry import loaded_module_files
from progrestore.io.atomic import write_json
from progrestore.io.encoded import load_text_cache, load_video_cache, prompt_key
from progrestore.model.families import load_specification
from progrestore.model.settings import ModelSettings, model_frames, model_settings, trained_for
from progrestore.model.specification import (
    AUTOENCODER,
    DENOISER,
    LORA_WEIGHTS,
    TRAIN_ABOUT,
    TRAIN_METRICS,
    TRAIN_RUN_LOG,
)
from progrestore.train.config import TrainConfig
from progrestore.train.export import save_lora
from progrestore.train.loop import train_lora
from progrestore.train.records import TrainData, run_costs, run_record
from progrestore.train.validation import ValidationConfig, Validator, validation_clips

VIDEO_CACHE, TEXT_CACHE = (
    "video.safetensors",
    "text.safetensors",
)  # in <encoded>/<task>/, as dvc.yaml writes them
VALIDATION_KEYS = "validate_"  # train.validate_every, _clips, _steps


def train_data(
    tasks: list[str], datasets: Path, encoded: Path, frames: int, settings: ModelSettings
) -> TrainData:
    """The train clips of ``tasks`` (``<datasets>/<task>/train``) with their caches (``<encoded>/<task>/``)."""
    data = TrainData([], {}, {}, {}, frames)
    for task in tasks:
        folder = Path(datasets) / task / "train"
        entries = read_clip_manifest(folder)
        prompts = read_prompts(folder, entries)
        videos = load_video_cache(
            Path(encoded) / task / VIDEO_CACHE, settings.profile, settings.height, settings.width
        )
        texts = load_text_cache(Path(encoded) / task / TEXT_CACHE, settings.profile)
        for entry, prompt in zip(entries, prompts, strict=True):
            key = f"{task}/{entry['clip_id']}"
            data.clip_ids.append(key)
            data.latents[key] = videos[entry["clip_id"]]["latents"]
            data.first_frames[key] = videos[entry["clip_id"]]["first_frame"]
            data.prompt_embeds[key] = texts[prompt_key(prompt)]
    return data


def training_settings(train: dict) -> dict:
    """``train`` without the ``validate_*`` keys (also in ``train.tiny``): validation never changes the
    LoRA, so a checkpoint resumes whatever they say."""
    kept = {k: v for k, v in train.items() if not k.startswith(VALIDATION_KEYS)}
    if isinstance(kept.get("tiny"), dict):
        kept["tiny"] = training_settings(kept["tiny"])
    return kept


def checkpoint_fingerprint(params: Section, tasks: list[str], encoded: Path, code_files: list[Path]) -> str:
    """What a checkpoint must match to be resumed: the settings, the encoded data and the code.

    The code counts because DVC reruns ``train`` when its code changes, and a finished checkpoint of the
    old code would otherwise be resumed and stand for the new run.
    """
    digest = hashlib.sha256(
        repr((params.raw("model"), training_settings(params.raw("train")), tasks)).encode()
    )
    for task in tasks:
        for name in (VIDEO_CACHE, TEXT_CACHE):
            digest.update((Path(encoded) / task / name).read_bytes())
    for path in code_files:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def run_train(params: Section, tasks: list[str], datasets: Path, encoded: Path, out_dir: Path) -> Path:
    """Train one LoRA on ``tasks``; writes the weights, checkpoints, ``train.json`` (the run's reproducible
    numbers, a DVC metric), ``run.json`` (its time, memory and resume point: untracked) and ``about.json``
    (the backbone, size and tasks it was trained for) under ``out_dir``.

    Reads ``model``, ``train``, ``clip.frames`` and, with ``train.validate_every``, ``clip.fps`` and
    ``restore``'s sampling keys (``train/validation.py``). Under ``accelerate launch`` every process trains;
    only the main one validates, tracks and writes files.
    """
    import torch
    from accelerate import PartialState

    main_process = PartialState(cpu=not torch.cuda.is_available()).is_main_process
    settings = model_settings(params)
    cfg = TrainConfig.from_section(params.section("train"), settings.profile.tiny)
    validation = ValidationConfig.from_params(params, settings)
    for task in tasks:
        task_registry.check(task)
    data = train_data(tasks, datasets, encoded, model_frames(params), settings)
    clips = []
    if validation.every and main_process:  # read before the model is built: a missing file is one line
        texts = {task: Path(encoded) / task / TEXT_CACHE for task in tasks}
        clips = validation_clips(tasks, datasets, texts, settings, validation.clips)
    model = load_specification(settings, frozenset({AUTOENCODER, DENOISER}))  # prompts come embedded
    validator = None
    if clips:
        validator = Validator(
            model, clips, validation, data.num_frames, params.section("clip").integer("fps", 1)
        )
    run_params = {
        "family": settings.profile.family.name,
        "profile": settings.profile.name,
        "size": f"{settings.height}x{settings.width}",
        "tasks": ",".join(tasks),
        **{k: str(v) for k, v in cfg.__dict__.items()},
        "validate_every": str(validation.every),
        "validate_clips": str(validation.clips),
        "validate_steps": str(validation.sampling.steps) if validation.sampling else "",
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

        fingerprint = checkpoint_fingerprint(params, tasks, encoded, loaded_module_files())

        def validate(step: int) -> None:
            if validator is not None:  # the main process's; the others wait
                validator(step, track=run is not None)

        _, result = train_lora(
            model,
            data,
            cfg,
            out_dir / "checkpoints",
            fingerprint,
            on_step=log_step,
            validate=validate if validation.every else None,
            validate_every=validation.every,
        )
        weights = out_dir / LORA_WEIGHTS
        if main_process:
            save_lora(model, result.adapter, cfg, out_dir)
            numbers = {"steps": cfg.steps, "clips": len(data.clip_ids), **run_record(result.logs)}
            if validator is not None and validator.last is not None:
                numbers["validation"] = validator.last  # the last one: its step says which
            json.dumps(numbers, allow_nan=False)  # train.json is a DVC metric: strict JSON or nothing
            write_json(out_dir / TRAIN_METRICS, numbers)
            costs = run_costs(result)
            if validator is not None:
                costs["validation_seconds"] = validator.seconds
            write_json(out_dir / TRAIN_RUN_LOG, costs)
            about = {
                "profile": settings.label,
                "model": trained_for(settings),
                "positional_embedding": model.positional_embedding(data.num_frames),
                "tasks": tasks,
            }
            write_json(out_dir / TRAIN_ABOUT, about)
        if run is not None:
            tracking.log_finite({f"run_{key}": float(value) for key, value in costs.items()})
            tracking.log_artifacts(
                [weights, *(out_dir / name for name in (TRAIN_METRICS, TRAIN_RUN_LOG, TRAIN_ABOUT))]
            )
    return weights
