"""Stages ``encode_video`` and ``encode_text``: what training and inference read instead of pixels and text.

Video latents (VAE, scaled, one sample per clip from a generator seeded by the clip) and the first frames
at the model's size go to ``video.safetensors``; T5 embeddings of every distinct prompt (and of the empty
negative prompt) go to ``text.safetensors``, keyed by the prompt's sha256. The two are separate stages, so
a new prompt strategy re-encodes only text and a LoRA hyper-parameter re-encodes nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tqdm import tqdm

from progrestore.config import Section
from progrestore.data import degradations
from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError
from progrestore.io.tensors import save_tensors
from progrestore.io.video import read_video
from progrestore.layout import DATASETS_DIR, ENCODED_DIR
from progrestore.model.build import pipeline_from_params
from progrestore.model.conditioning import encode_video
from progrestore.model.profiles import TEXT_TOKENS
from progrestore.model.sizing import to_model

NEGATIVE_PROMPT = ""


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def to_unit_range(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def read_prompts(split_dir: Path, entries: list[dict]) -> list[str]:
    path = Path(split_dir) / "prompt.txt"
    if not path.is_file():
        raise InputError(f"{path} not found: run the prompts stage first")
    prompts = path.read_text().splitlines()
    if len(prompts) != len(entries):
        raise InputError(f"{path} has {len(prompts)} lines for {len(entries)} clips")
    return prompts


@torch.inference_mode()
def encode_videos(components: dict, split_dir: Path, height: int, width: int, seed: int, out: Path) -> int:
    vae = components["vae"]
    device, dtype = vae.device, vae.dtype
    tensors = {}
    for entry in tqdm(read_clip_manifest(split_dir), desc="encode video", unit="clip"):
        frames = np.stack([to_model(f, height, width) for f in read_video(Path(split_dir) / entry["video"])])
        video = to_unit_range(frames)[None].to(device, dtype)
        generator = torch.Generator(device).manual_seed(seed + int(prompt_key(entry["clip_id"])[:8], 16))
        tensors[f"latents/{entry['clip_id']}"] = encode_video(vae, video, generator)[0].float()
        tensors[f"first_frame/{entry['clip_id']}"] = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
    save_tensors(tensors, out, {"height": str(height), "width": str(width), "frames": str(len(frames))})
    return len(tensors) // 2


@torch.inference_mode()
def embed_prompt(pipe, prompt: str) -> torch.Tensor:
    """The T5 embedding (226, D) of one prompt, as training and sampling read it."""
    embeds, _ = pipe.encode_prompt(
        prompt=prompt,
        do_classifier_free_guidance=False,
        max_sequence_length=TEXT_TOKENS,
        device=pipe.text_encoder.device,
    )
    return embeds[0].float()


def encode_texts(pipe, prompts: list[str], out: Path) -> int:
    unique = sorted(set(prompts) | {NEGATIVE_PROMPT})
    tensors = {}
    for prompt in tqdm(unique, desc="encode text", unit="prompt"):
        tensors[prompt_key(prompt)] = embed_prompt(pipe, prompt)
    save_tensors(tensors, out, {"prompts": str(len(unique))})
    return len(unique)


def load_video_cache(path: Path, height: int, width: int) -> dict[str, dict[str, torch.Tensor]]:
    """The encoded clips, checked to be at the model's size (``height`` x ``width``)."""
    if not Path(path).is_file():
        raise InputError(f"{path} not found: run the encode_video stage first")
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata() or {}
    if (meta.get("height"), meta.get("width")) != (str(height), str(width)):
        raise InputError(
            f"{path} holds clips at {meta.get('height')}x{meta.get('width')}, the model works at "
            f"{height}x{width} (model.height/model.width): run the encode_video stage again"
        )
    flat = load_file(str(path))
    clips: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        kind, clip_id = key.split("/", 1)
        clips.setdefault(clip_id, {})[kind] = value
    return clips


def load_text_cache(path: Path) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise InputError(f"{path} not found: run the encode_text stage first")
    return load_file(str(path))


def run_encode_video(params: Section, task: str) -> None:
    """Stage ``encode_video@<task>``: VAE latents of the train clips; reads ``model``."""
    split_dir = DATASETS_DIR / degradations.check(task) / "train"
    read_clip_manifest(split_dir)  # a missing dataset stops the stage before the model is built
    settings, pipe = pipeline_from_params(params)
    out = ENCODED_DIR / task / "video.safetensors"
    encode_videos(pipe.components, split_dir, settings.height, settings.width, settings.seed, out)
    print(f"{task}: video -> {out}")


def run_encode_text(params: Section, task: str) -> None:
    """Stage ``encode_text@<task>``: T5 embeddings of every train and val prompt; reads ``model``."""
    degradations.check(task)
    prompts = []
    for split in ("train", "val"):
        folder = DATASETS_DIR / task / split
        prompts += read_prompts(folder, read_clip_manifest(folder))
    _, pipe = pipeline_from_params(params)
    out = ENCODED_DIR / task / "text.safetensors"
    encode_texts(pipe, prompts, out)
    print(f"{task}: text -> {out}")
