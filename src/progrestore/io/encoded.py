"""The encode stages' caches, read by training and by the restore stage.

``video.safetensors``: per clip, ``latents/<clip>`` and ``first_frame/<clip>`` (3, H, W uint8), with the
model size in its metadata. ``text.safetensors``: the embedding of every distinct prompt (and of the empty
negative prompt), keyed by the prompt's sha256. Both name in their metadata the profile and family that
encoded them: latents and embeddings of one backbone mean nothing to another.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from progrestore.errors import InputError
from progrestore.model.profiles import Profile

NEGATIVE_PROMPT = ""  # what classifier-free guidance contrasts with


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def encoder_metadata(profile: Profile) -> dict[str, str]:
    """What a cache records of the backbone that wrote it."""
    return {"family": profile.family.name, "profile": profile.name}


def _metadata(path: Path, profile: Profile, stage: str) -> dict[str, str]:
    """The cache's metadata, once it is known to be ``profile``'s."""
    if not Path(path).is_file():
        raise InputError(f"{path} not found: run the {stage} stage first")
    with safe_open(str(path), "pt") as handle:
        meta = handle.metadata() or {}
    if meta.get("profile") != profile.name:
        raise InputError(
            f"{path} was encoded by model.profile {meta.get('profile')} ({meta.get('family')} family), not "
            f"{profile.name} ({profile.family.name} family): run the {stage} stage again"
        )
    return meta


def load_video_cache(
    path: Path, profile: Profile, height: int, width: int
) -> dict[str, dict[str, torch.Tensor]]:
    """The encoded clips, checked to be ``profile``'s at the model's size (``height`` x ``width``)."""
    meta = _metadata(path, profile, "encode_video")
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


def load_text_cache(path: Path, profile: Profile) -> dict[str, torch.Tensor]:
    """The prompt embeddings, checked to be ``profile``'s."""
    _metadata(path, profile, "encode_text")
    return load_file(str(path))
