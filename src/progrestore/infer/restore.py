"""Restoration trajectories: degraded image + prompt -> 9 frames through the (LoRA-loaded) backbone.

The input is brought to the model's size and the frames back to the input's size by ``model.sizing``;
sampling uses ``restore.steps``, ``restore.guidance_scale`` (classifier-free, against the empty prompt),
``restore.dynamic_cfg``, the sampler ``restore.scheduler`` and a generator seeded by ``restore.seed``, the
same for every clip.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.model.families import load_specification, specification_class
from progrestore.model.settings import ModelSettings, model_settings
from progrestore.model.sizing import from_model, to_model
from progrestore.model.specification import LORA_WEIGHTS, TRAIN_ABOUT, ModelSpecification, Sampling


def sampling_settings(section: Section, settings: ModelSettings) -> Sampling:
    """The ``restore`` block (``restore.tiny`` on top for the tiny profiles), validated."""
    if settings.profile.tiny:
        section = section.merged("tiny")
    return Sampling(
        section.integer("steps", 1, 1000),
        section.number("guidance_scale", 1.0, 50.0),
        section.integer("seed", 0),
        section.choice("scheduler", specification_class(settings.profile).samplers),
        section.boolean("dynamic_cfg"),
    )


def lora_file(lora_dir: Path, settings: ModelSettings | None = None) -> Path:
    """The LoRA weights in ``lora_dir``, or a clear error when there are none, or when the train record
    beside them (``about.json``) says they were trained for another profile or size than ``settings``'."""
    weights = Path(lora_dir) / LORA_WEIGHTS
    if not weights.is_file():
        raise InputError(
            f"{weights} not found: train a LoRA first (dvc repro train@<task>) or pass --lora DIR"
        )
    record = Path(lora_dir) / TRAIN_ABOUT
    trained = json.loads(record.read_text()).get("model") if record.is_file() else None
    if settings is not None and isinstance(trained, dict):
        wanted = {"profile": settings.profile.name, "height": settings.height, "width": settings.width}
        if trained != wanted:
            raise InputError(
                f"{weights} was trained for {trained['profile']} at {trained['height']}x{trained['width']} "
                f"({record}), not for {wanted['profile']} at {wanted['height']}x{wanted['width']} (model.*)"
            )
    return weights


def sampling_model(params: Section, lora_dir: Path | None) -> tuple[ModelSpecification, Sampling]:
    """The ``model`` block's backbone with the LoRA in ``lora_dir`` (None: the base model) and the
    ``restore`` block's sampling: what the restore stage, ``progrestore restore`` and ``reloblur`` share.
    The LoRA and the parameters are checked before the model is built."""
    settings = model_settings(params)
    if lora_dir is not None:
        lora_file(lora_dir, settings)
    sampling = sampling_settings(params.section("restore"), settings)
    model = load_specification(settings)
    if lora_dir is not None:
        model.load_lora(lora_dir)
    return model, sampling


@torch.inference_mode()
def restore_image(
    model: ModelSpecification,
    image: np.ndarray,
    prompt_embeds: torch.Tensor,
    negative_embeds: torch.Tensor,
    frames: int,
    sampling: Sampling,
) -> np.ndarray:
    """(H, W, 3) uint8 degraded image -> (frames, H, W, 3) uint8 trajectory at the input's size."""
    settings = model.settings
    small = model.sample(
        to_model(image, settings.height, settings.width), prompt_embeds, negative_embeds, frames, sampling
    )
    return from_model(small, image)
