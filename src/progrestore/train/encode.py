"""The encode stages' computation (:mod:`progrestore.stages.encode`): what training and inference read instead
of pixels and text.

Video latents (one sample per clip from a generator seeded by the clip) and the first frames at the
model's size go to ``video.safetensors``; text embeddings of every distinct prompt (and of the empty
negative prompt) go to ``text.safetensors``, keyed by the prompt's sha256. The two are separate stages,
so a new prompt strategy re-encodes only text and a LoRA hyper-parameter re-encodes nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from progrestore.config import Section
from progrestore.data.manifest import read_clip_manifest, read_prompts
from progrestore.errors import InputError
from progrestore.io.encoded import NEGATIVE_PROMPT, encoder_metadata, prompt_key
from progrestore.io.tensors import save_tensors
from progrestore.io.video import read_video
from progrestore.model.families import load_specification
from progrestore.model.settings import model_settings
from progrestore.model.sizing import to_model
from progrestore.model.specification import AUTOENCODER, TEXT, ModelSpecification


def encode_videos(model: ModelSpecification, split_dir: Path, out: Path) -> int:
    """Every clip of ``split_dir`` at the model's size: its latents and its first frame."""
    settings = model.settings
    tensors = {}
    for entry in tqdm(read_clip_manifest(split_dir), desc="encode video", unit="clip"):
        frames = np.stack(
            [
                to_model(f, settings.height, settings.width)
                for f in read_video(Path(split_dir) / entry["video"])
            ]
        )
        seed = settings.seed + int(prompt_key(entry["clip_id"])[:8], 16)
        generator = torch.Generator(model.device).manual_seed(seed)
        tensors[f"latents/{entry['clip_id']}"] = model.encode_video(frames, generator)
        tensors[f"first_frame/{entry['clip_id']}"] = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
    meta = {"height": str(settings.height), "width": str(settings.width), "frames": str(len(frames))}
    meta |= encoder_metadata(settings.profile)
    save_tensors(tensors, out, meta)
    return len(tensors) // 2


def encode_texts(model: ModelSpecification, prompts: list[str], out: Path) -> int:
    unique = sorted(set(prompts) | {NEGATIVE_PROMPT})
    tensors = {}
    for prompt in tqdm(unique, desc="encode text", unit="prompt"):
        tensors[prompt_key(prompt)] = model.encode_prompt(prompt)
    save_tensors(tensors, out, {"prompts": str(len(unique))} | encoder_metadata(model.settings.profile))
    return len(unique)


def run_encode_video(params: Section, dataset: Path, out: Path) -> None:
    """VAE latents of ``<dataset>/train``; reads ``model``."""
    split_dir = dataset / "train"
    entries = read_clip_manifest(split_dir)  # a missing dataset stops the stage before the model is built
    settings = model_settings(params)
    family = settings.profile.family
    for entry in entries:
        frames = entry.get("frames")
        if not isinstance(frames, int) or not family.takes(frames):
            raise InputError(
                f"{split_dir}: clip {entry['clip_id']} has {frames} frames; model.profile "
                f"{settings.profile.name} takes {family.frames_rule} ({family.frames_why}): set clip.frames "
                "and rerun degrade"
            )
    model = load_specification(settings, frozenset({AUTOENCODER}))
    encode_videos(model, split_dir, out)


def run_encode_text(params: Section, dataset: Path, out: Path) -> None:
    """Text embeddings of every train and val prompt of ``dataset``; reads ``model``."""
    prompts = []
    for split in ("train", "val"):
        folder = dataset / split
        prompts += read_prompts(folder, read_clip_manifest(folder))
    model = load_specification(model_settings(params), frozenset({TEXT}))
    encode_texts(model, prompts, out)
