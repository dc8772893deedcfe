"""Restoration trajectories: degraded image + prompt -> 9 frames through the (LoRA-loaded) I2V pipeline.

The input is brought to the model's size and the frames back to the input's size by ``model.sizing``;
sampling uses ``restore.steps``, ``restore.guidance_scale`` (classifier-free, against the empty prompt)
and a generator seeded by ``restore.seed``, the same for every clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.model.sizing import from_model, to_model


@dataclass(frozen=True)
class SamplingConfig:
    steps: int
    guidance_scale: float
    seed: int

    @classmethod
    def from_section(cls, section: Section) -> SamplingConfig:
        return cls(
            section.integer("steps", 1, 1000),
            section.number("guidance_scale", 1.0, 50.0),
            section.integer("seed", 0),
        )


def lora_file(lora_dir: Path) -> Path:
    """The LoRA weights in ``lora_dir``, or a clear error when there are none."""
    weights = Path(lora_dir) / "pytorch_lora_weights.safetensors"
    if not weights.is_file():
        raise InputError(
            f"{weights} not found: train a LoRA first (dvc repro train@<task>) or pass --lora DIR"
        )
    return weights


def load_lora(pipe, lora_dir: Path) -> None:
    weights = lora_file(lora_dir)
    pipe.load_lora_weights(str(Path(lora_dir)), weight_name=weights.name, adapter_name="restoration")


@torch.inference_mode()
def trajectory(
    pipe,
    image: np.ndarray,
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor,
    height: int,
    width: int,
    frames: int,
    sampling: SamplingConfig,
) -> np.ndarray:
    """(H, W, 3) uint8 degraded image -> (frames, H, W, 3) uint8 trajectory at the input's size."""
    device, dtype = pipe.transformer.device, pipe.transformer.dtype
    output = pipe(
        image=Image.fromarray(to_model(image, height, width)),
        prompt_embeds=prompt_embeds[None].to(device, dtype),
        negative_prompt_embeds=negative_embeds[None].to(device, dtype),
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=sampling.steps,
        guidance_scale=sampling.guidance_scale,
        generator=torch.Generator(device).manual_seed(sampling.seed),
        output_type="np",
    ).frames[0]
    small = (np.clip(output, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return from_model(small, image)
