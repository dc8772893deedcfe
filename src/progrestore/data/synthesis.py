"""Progression clips: per-clip seeding, parameter sampling and frame rendering.

Every clip has its own generator, seeded from (seed, image id, task, variant) and nothing else, so a
clip does not change when other images, tasks or workers are added or removed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from progrestore import tasks
from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError
from progrestore.io.images import read_image
from progrestore.io.video import write_video
from progrestore.layout import CLIP_MANIFEST


def _as_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def clip_rng(seed: int, image_id: str, task: str, variant: int) -> np.random.Generator:
    entropy = [seed, _as_int(image_id), _as_int(task), variant]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def sample_params(task: str, settings: object, seed: int, image_id: str, variant: int) -> dict:
    return tasks.get(task).sample(clip_rng(seed, image_id, task, variant), settings)


def progress_points(frames: int) -> list[float]:
    """p_t = (t-1)/(T-1) for t = 1..T."""
    return [t / (frames - 1) for t in range(frames)]


def frame_schedule(task: str, params: dict, frames: int) -> list[dict]:
    module = tasks.get(task)
    return [module.schedule(params, p) for p in progress_points(frames)]


def render_clip(task: str, image: np.ndarray, params: dict, frames: int) -> np.ndarray:
    """(T, H, W, 3) uint8 clip; the per-clip work (transforms, noise field) is done once."""
    module = tasks.get(task)
    state = module.prepare(image, params)
    return np.stack([module.render(state, params, p) for p in progress_points(frames)])


def render_clip_frame_by_frame(task: str, image: np.ndarray, params: dict, frames: int) -> np.ndarray:
    """The same clip computed the straightforward way, every frame from scratch (benchmark reference)."""
    module = tasks.get(task)
    return np.stack(
        [module.render(module.prepare(image, params), params, p) for p in progress_points(frames)]
    )


def regenerate(entry: dict, clean_image: np.ndarray) -> np.ndarray:
    """Rebuild a clip from its manifest entry and its clean image alone."""
    return render_clip(entry["task"], clean_image, entry["params"], entry["frames"])


def regeneration_entry(manifest: Path, clip_id: str, out: Path, overwrite: bool = False) -> dict:
    """``progrestore regenerate``'s checks: the entry of ``clip_id`` in ``manifest``, and ``out`` a new
    .mp4 file (or, with ``overwrite``, an existing one)."""
    if out.suffix.lower() != ".mp4" or out.is_dir():
        raise InputError(
            f"--out {out}: give a file name ending in .mp4 (the clip is written as an MP4 video)"
        )
    if out.exists() and not overwrite:
        raise InputError(f"--out {out}: exists; pass --overwrite to replace it, or give a new name")
    if manifest.name != CLIP_MANIFEST or not manifest.is_file():
        raise InputError(f"{manifest}: no such clip manifest (expected .../<split>/{CLIP_MANIFEST})")
    entries = read_clip_manifest(manifest.parent)
    matches = [e for e in entries if e["clip_id"] == clip_id]
    if not matches:
        raise InputError(f"{manifest}: no clip {clip_id!r}; it lists {[e['clip_id'] for e in entries][:10]}")
    return matches[0]


def regenerate_clip(entry: dict, images: Path, out: Path) -> None:
    """The clip of manifest ``entry`` from its clean image in ``images``, written to ``out``."""
    clean = read_image(Path(images) / entry["split"] / f"{entry['image_id']}.png")
    write_video(out, regenerate(entry, clean), entry["fps"])
