"""Restoration trajectories: degraded image + prompt -> 9 frames through the (LoRA-loaded) backbone.

The input is brought to the model's size and the frames back to the input's size by ``model.sizing``;
sampling uses ``restore.steps``, ``restore.guidance_scale`` (classifier-free, against the empty prompt),
``restore.dynamic_cfg``, the sampler ``restore.scheduler`` and a generator seeded by ``restore.seed``, the
same for every clip; and the speed levers ``restore.attention``, ``restore.compile``, ``restore.fuse_lora``.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.model.families import load_specification, sampler_setting, specification_class
from progrestore.model.settings import ModelSettings, model_frames, model_settings, trained_for
from progrestore.model.sizing import from_model, to_model
from progrestore.model.specification import (
    AUTOENCODER,
    DENOISER,
    LORA_WEIGHTS,
    TEXT,
    TRAIN_ABOUT,
    ModelSpecification,
    Sampling,
    attention_setting,
)


def sampling_settings(section: Section, settings: ModelSettings) -> Sampling:
    """The ``restore`` block (``restore.tiny`` on top for the tiny profiles), validated: the sampler
    ``default`` is the family's own (its first), and ``dynamic_cfg`` applies where the family has it."""
    if settings.profile.tiny:
        section = section.merged("tiny")
    return Sampling(
        section.integer("steps", 1, 1000),
        section.number("guidance_scale", 1.0, 50.0),
        section.integer("seed", 0),
        sampler_setting(section, settings),
        section.boolean("dynamic_cfg") and specification_class(settings.profile).dynamic_cfg,
        attention_setting(section),
        section.boolean("compile"),
        section.boolean("fuse_lora"),
    )


def lora_file(lora_dir: Path, settings: ModelSettings | None = None) -> Path:
    """The LoRA weights in ``lora_dir``, or a clear error when there are none, or when the train record
    beside them (``about.json``) says they were trained for another profile, size or positional embedding
    than ``settings``'."""
    weights = Path(lora_dir) / LORA_WEIGHTS
    if not weights.is_file():
        raise InputError(
            f"{weights} not found: train a LoRA first (dvc repro train@<task>) or pass --lora DIR"
        )
    record = Path(lora_dir) / TRAIN_ABOUT
    trained = json.loads(record.read_text()).get("model") if record.is_file() else None
    if settings is not None and isinstance(trained, dict):
        wanted = trained_for(settings)
        family = settings.profile.family.name
        if trained.setdefault("family", family) != family:  # records older than the key: by their profile
            raise InputError(
                f"{weights} is a LoRA of the {trained['family']} family ({record}); model.profile "
                f"{settings.profile.name} is of the {family} family: train a LoRA for it"
            )
        if trained != wanted:
            differs = ", ".join(
                f"{key} {trained.get(key)!r} (model.{key}: {wanted[key]!r})"
                for key in wanted
                if trained.get(key) != wanted[key]
            )
            raise InputError(f"{weights} was trained with other model settings ({record}): {differs}")
    return weights


def sampling_model(
    params: Section, lora_dir: Path | None, prompts: Sequence[str] = ()
) -> tuple[ModelSpecification, Sampling, list[torch.Tensor]]:
    """The ``model`` block's backbone (VAE and denoiser) with the LoRA in ``lora_dir`` (None: the base
    model), the ``restore`` block's sampling, and the embeddings of ``prompts``: what the restore stage,
    ``progrestore restore`` and ``reloblur`` share. The LoRA and the parameters are checked first; the
    prompts are embedded by the text encoder alone, which is freed before the denoiser is loaded."""
    settings = model_settings(params)
    model_frames(params)  # the clip length the trajectories get, checked against the family's rule
    if lora_dir is not None:
        lora_file(lora_dir, settings)
    sampling = sampling_settings(params.section("restore"), settings)
    embeddings = embed_prompts(settings, list(prompts)) if prompts else []
    model = load_specification(settings, frozenset({AUTOENCODER, DENOISER}))
    if lora_dir is not None:
        model.load_lora(lora_dir)
    use_sampling_levers(model, sampling, lora_loaded=lora_dir is not None)
    return model, sampling, embeddings


def use_sampling_levers(model: ModelSpecification, sampling: Sampling, lora_loaded: bool) -> None:
    """``restore.fuse_lora`` and ``restore.compile`` on the loaded model, in that order: the compiled
    blocks hold the LoRA as it will sample (``restore.attention`` applies around each ``sample``)."""
    if lora_loaded and sampling.fuse_lora:
        model.fuse_lora()
    if sampling.compile:
        model.compile_blocks()


def embed_prompts(settings: ModelSettings, prompts: list[str]) -> list[torch.Tensor]:
    """The embeddings of ``prompts`` from the text encoder alone, which is freed before returning, so that
    it is never on the device beside the denoiser (T5-XXL: 9.5 GB in bf16)."""
    text_model = load_specification(settings, frozenset({TEXT}))
    embeddings = [text_model.encode_prompt(prompt).cpu() for prompt in prompts]
    del text_model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return embeddings


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
