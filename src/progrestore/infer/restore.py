"""Restoration trajectories: degraded image + prompt -> 9 frames through the (LoRA-loaded) I2V pipeline.

The input is brought to the model's size and the frames back to the input's size by ``model.sizing``;
sampling uses ``restore.steps``, ``restore.guidance_scale`` (classifier-free, against the empty prompt),
``restore.dynamic_cfg``, the sampler ``restore.scheduler`` and a generator seeded by ``restore.seed``, the
same for every clip. The sampler is the same class for every profile, made from the model's own noise
schedule with trailing timestep spacing, as the official CogVideoX demo does: whatever scheduler class a
hub folder ships (DDIM for 1.5) does not decide it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.model.build import ModelSettings, model_settings, pipeline_for
from progrestore.model.sizing import from_model, to_model

SAMPLERS = {"dpm": "CogVideoXDPMScheduler", "ddim": "CogVideoXDDIMScheduler"}


@dataclass(frozen=True)
class SamplingConfig:
    steps: int
    guidance_scale: float
    seed: int
    scheduler: str = "dpm"
    dynamic_cfg: bool = False

    @classmethod
    def from_section(cls, section: Section) -> SamplingConfig:
        return cls(
            section.integer("steps", 1, 1000),
            section.number("guidance_scale", 1.0, 50.0),
            section.integer("seed", 0),
            section.choice("scheduler", tuple(SAMPLERS)),
            section.boolean("dynamic_cfg"),
        )


def use_sampler(pipe, name: str) -> None:
    """Give ``pipe`` the sampler ``name`` on the model's noise schedule, with trailing spacing."""
    import diffusers

    sampler = getattr(diffusers, SAMPLERS[name])
    pipe.scheduler = sampler.from_config(pipe.scheduler.config, timestep_spacing="trailing")


def lora_file(lora_dir: Path, settings: ModelSettings | None = None) -> Path:
    """The LoRA weights in ``lora_dir``, or a clear error when there are none, or when the train record
    beside them (``train.json``) says they were trained for another profile or size than ``settings``'."""
    weights = Path(lora_dir) / "pytorch_lora_weights.safetensors"
    if not weights.is_file():
        raise InputError(
            f"{weights} not found: train a LoRA first (dvc repro train@<task>) or pass --lora DIR"
        )
    record = Path(lora_dir) / "train.json"
    trained = json.loads(record.read_text()).get("model") if record.is_file() else None
    if settings is not None and isinstance(trained, dict):
        wanted = {"profile": settings.profile.name, "height": settings.height, "width": settings.width}
        if trained != wanted:
            raise InputError(
                f"{weights} was trained for {trained['profile']} at {trained['height']}x{trained['width']} "
                f"({record}), not for {wanted['profile']} at {wanted['height']}x{wanted['width']} (model.*)"
            )
    return weights


def load_lora(pipe, lora_dir: Path) -> None:
    weights = lora_file(lora_dir)
    pipe.load_lora_weights(str(Path(lora_dir)), weight_name=weights.name, adapter_name="restoration")


def sampling_pipeline(params: Section, lora_dir: Path | None) -> tuple[ModelSettings, object, SamplingConfig]:
    """The ``model`` block's pipeline with the LoRA in ``lora_dir`` (None: the base model) and the
    ``restore`` block's sampler: what the restore stage, ``progrestore restore`` and ``reloblur`` share.
    Reads ``model`` and ``restore`` (``restore.tiny`` on top for the tiny profiles)."""
    restore = params.section("restore")
    settings = model_settings(params)
    if lora_dir is not None:
        lora_file(lora_dir, settings)  # checked before the model is built
    sampling = SamplingConfig.from_section(restore.merged("tiny") if settings.profile.tiny else restore)
    pipe = pipeline_for(settings)
    if lora_dir is not None:
        load_lora(pipe, lora_dir)
    use_sampler(pipe, sampling.scheduler)
    return settings, pipe, sampling


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
        use_dynamic_cfg=sampling.dynamic_cfg,
        generator=torch.Generator(device).manual_seed(sampling.seed),
        output_type="np",
    ).frames[0]
    small = (np.clip(output, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return from_model(small, image)
