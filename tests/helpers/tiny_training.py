"""Synthetic encoded clips for the tiny models, and a script entry for multi-process training tests."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from progrestore.config import load_params
from progrestore.model.cogvideox.specification import CogVideoXImageToVideo
from progrestore.model.families import load_specification
from progrestore.model.profiles import profile_named
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import ModelSpecification
from progrestore.train.config import TrainConfig
from progrestore.train.records import TrainData

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**changes) -> TrainConfig:
    """params.yaml's train block for the tiny profiles, shortened for tests, with ``changes`` on top."""
    train = load_params(REPO / "params.yaml").section("train")
    short = dict(steps=8, rank=4, warmup_steps=1, image_dropout=0.0, checkpoint_every=4, keep_checkpoints=3)
    return dataclasses.replace(TrainConfig.from_section(train, tiny=True), **(short | changes))


def tiny_model(profile: str = "tiny", positional_embedding: str | None = None) -> ModelSpecification:
    """Every part of a tiny profile (of any family), loaded from its cached pipeline folder as the stages
    load it (``wan-tiny`` gives the Wan family's specification)."""
    profile_ = profile_named(profile)
    if positional_embedding is None and profile_.learned_pe:
        positional_embedding = "sincos"
    return load_specification(
        ModelSettings(profile_, None, 0, positional_embedding, profile_.height, profile_.width)
    )


def synthetic_data(model: CogVideoXImageToVideo, clips: int = 2) -> TrainData:
    """Clips that brighten from dark to a random pattern, encoded by the tiny VAE and T5."""
    data = TrainData([], {}, {}, {}, 9)
    rng = np.random.default_rng(0)
    for i in range(clips):
        target = rng.integers(0, 256, (96, 160, 3))
        frames = (target[None] * np.linspace(0.1, 1.0, 9)[:, None, None, None]).astype(np.uint8)
        key = f"c{i}"
        data.clip_ids.append(key)
        data.latents[key] = model.encode_video(frames, torch.Generator().manual_seed(i))
        data.first_frames[key] = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
        data.prompt_embeds[key] = model.encode_prompt(f"clip {i} brightens.")
    return data


def ramp_clip(brightening: bool, frames: int = 9, height: int = 96, width: int = 160) -> np.ndarray:
    """(frames, height, width, 3) uint8: a flat grey ramp, black to white or white to black."""
    ramp = np.linspace(0.0, 1.0, frames) if brightening else np.linspace(1.0, 0.0, frames)
    return (
        np.broadcast_to(255 * ramp[:, None, None, None], (frames, height, width, 3)).round().astype(np.uint8)
    )


def lora_digest(transformer) -> str:
    from peft.utils import get_peft_model_state_dict

    digest = hashlib.sha256()
    for key, value in sorted(get_peft_model_state_dict(transformer).items()):
        digest.update(key.encode() + value.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def validator(model: ModelSpecification, data: TrainData, every: int = 2):
    """A real validator of ``data``'s first clip (its first frame, a flat clean image, 2 sampling steps)."""
    from progrestore.model.specification import Sampling
    from progrestore.train.validation import ValidationClip, ValidationConfig, Validator

    key = data.clip_ids[0]
    first = data.first_frames[key].permute(1, 2, 0).numpy()
    clip = ValidationClip(
        key, first, np.full_like(first, 200), data.prompt_embeds[key], data.prompt_embeds[key]
    )
    return Validator(model, [clip], ValidationConfig(every, 1, Sampling(2, 6.0, 0, "dpm", True)), 9, 5)


def main(out: str, validate: bool = False) -> None:
    """Run under `accelerate launch`: every process trains; each writes what it saw and its weights'
    digest; with ``validate``, the main process validates every 2 steps and each says which steps it did."""
    from accelerate import PartialState

    from progrestore.train.export import save_lora
    from progrestore.train.loop import clip_for_step, train_lora

    state = PartialState(cpu=not torch.cuda.is_available())
    model = tiny_model()
    data = synthetic_data(model, clips=4)
    cfg = tiny_config(steps=3, checkpoint_every=100, warmup_steps=2)
    validated: list[int] = []
    check = validator(model, data) if validate else None

    def record(step: int) -> None:
        check(step, track=False)
        validated.append(step)

    transformer, result = train_lora(
        model,
        data,
        cfg,
        Path(out) / "checkpoints",
        "ddp-test",
        validate=record if validate else None,
        validate_every=2 if validate else 0,
    )
    seen = [
        clip_for_step(data, cfg.seed, s, state.process_index, state.num_processes) for s in range(cfg.steps)
    ]
    report = {
        "rank": state.process_index,
        "world": state.num_processes,
        "clips": seen,
        "digest": lora_digest(transformer),
        "lrs": [log.lr for log in result.logs],
        "validated": validated,
    }
    (Path(out) / f"rank{state.process_index}.json").write_text(json.dumps(report))
    if state.is_main_process:
        save_lora(model, result.adapter, cfg, Path(out) / "lora")


if __name__ == "__main__":
    main(sys.argv[1], validate="--validate" in sys.argv[2:])
