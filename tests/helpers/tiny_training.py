"""Synthetic encoded clips for the tiny models, and a script entry for multi-process training tests."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from progrestore.model.build import load_components, make_pipeline
from progrestore.model.conditioning import encode_video
from progrestore.model.profiles import PROFILES
from progrestore.train.encode import to_unit_range
from progrestore.train.loop import TrainConfig, TrainData


def tiny_config(**changes) -> TrainConfig:
    values = dict(
        steps=8,
        rank=4,
        alpha=8,
        targets=("to_q", "to_k", "to_v", "to_out.0"),
        learning_rate=1e-3,
        betas=(0.9, 0.95),
        weight_decay=1e-4,
        warmup_steps=1,
        max_grad_norm=1.0,
        gradient_checkpointing=True,
        image_dropout=0.0,
        checkpoint_every=4,
        keep_checkpoints=3,
        seed=0,
    )
    return TrainConfig(**(values | changes))


def tiny_pipeline(profile: str = "tiny"):
    return make_pipeline(load_components(PROFILES[profile], None, 0))


def synthetic_data(pipe, clips: int = 2) -> TrainData:
    """Clips that brighten from dark to a random pattern, encoded by the tiny VAE and T5."""
    data = TrainData([], {}, {}, {}, 9)
    rng = np.random.default_rng(0)
    for i in range(clips):
        target = rng.integers(0, 256, (96, 160, 3))
        frames = (target[None] * np.linspace(0.1, 1.0, 9)[:, None, None, None]).astype(np.uint8)
        with torch.no_grad():
            latents = encode_video(pipe.vae, to_unit_range(frames)[None], torch.Generator().manual_seed(i))[0]
            embeds, _ = pipe.encode_prompt(
                prompt=f"clip {i} brightens.", do_classifier_free_guidance=False, device="cpu"
            )
        key = f"c{i}"
        data.clip_ids.append(key)
        data.latents[key] = latents
        data.first_frames[key] = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
        data.prompt_embeds[key] = embeds[0]
    return data


def lora_digest(transformer) -> str:
    from peft.utils import get_peft_model_state_dict

    digest = hashlib.sha256()
    for key, value in sorted(get_peft_model_state_dict(transformer).items()):
        digest.update(key.encode() + value.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def main(out: str) -> None:
    """Run under `accelerate launch`: every process trains; each writes what it saw and its weights' digest."""
    from accelerate import PartialState

    from progrestore.train.loop import clip_for_step, save_lora, train_lora

    state = PartialState(cpu=not torch.cuda.is_available())
    pipe = tiny_pipeline()
    data = synthetic_data(pipe, clips=4)
    cfg = tiny_config(steps=3, checkpoint_every=100, warmup_steps=2)
    transformer, result = train_lora(pipe, data, cfg, Path(out) / "checkpoints", "ddp-test")
    seen = [
        clip_for_step(data, cfg.seed, s, state.process_index, state.num_processes) for s in range(cfg.steps)
    ]
    report = {
        "rank": state.process_index,
        "world": state.num_processes,
        "clips": seen,
        "digest": lora_digest(transformer),
        "lrs": [log.lr for log in result.logs],
    }
    (Path(out) / f"rank{state.process_index}.json").write_text(json.dumps(report))
    if state.is_main_process:
        save_lora(transformer, cfg, Path(out) / "lora")


if __name__ == "__main__":
    main(sys.argv[1])
