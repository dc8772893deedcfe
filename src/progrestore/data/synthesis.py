"""Progression clips: per-clip seeding, parameter sampling and frame rendering.

Every clip has its own generator, seeded from (seed, image id, task, variant) and nothing else, so a
clip does not change when other images, tasks or workers are added or removed.
"""

from __future__ import annotations

import hashlib

import numpy as np

from progrestore.data import degradations


def _as_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def clip_rng(seed: int, image_id: str, task: str, variant: int) -> np.random.Generator:
    entropy = [seed, _as_int(image_id), _as_int(task), variant]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def sample_params(task: str, settings: object, seed: int, image_id: str, variant: int) -> dict:
    return degradations.get(task).sample(clip_rng(seed, image_id, task, variant), settings)


def progress_points(frames: int) -> list[float]:
    """p_t = (t-1)/(T-1) for t = 1..T."""
    return [t / (frames - 1) for t in range(frames)]


def frame_schedule(task: str, params: dict, frames: int) -> list[dict]:
    module = degradations.get(task)
    return [module.schedule(params, p) for p in progress_points(frames)]


def render_clip(task: str, image: np.ndarray, params: dict, frames: int) -> np.ndarray:
    """(T, H, W, 3) uint8 clip; the per-clip work (transforms, noise field) is done once."""
    module = degradations.get(task)
    state = module.prepare(image, params)
    return np.stack([module.render(state, params, p) for p in progress_points(frames)])


def render_clip_frame_by_frame(task: str, image: np.ndarray, params: dict, frames: int) -> np.ndarray:
    """The same clip computed the straightforward way, every frame from scratch (benchmark reference)."""
    module = degradations.get(task)
    return np.stack(
        [module.render(module.prepare(image, params), params, p) for p in progress_points(frames)]
    )


def regenerate(entry: dict, clean_image: np.ndarray) -> np.ndarray:
    """Rebuild a clip from its manifest entry and its clean image alone."""
    return render_clip(entry["task"], clean_image, entry["params"], entry["frames"])
