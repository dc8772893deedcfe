"""Shared fixtures: small images and the repository's own parameters (tiny sizes keep the suite fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from progrestore import tasks
from progrestore.config import ClipSettings, Section, load_params
from progrestore.data.dataset import task_settings
from progrestore.data.framing import frame_image

REPO = Path(__file__).resolve().parents[1]
TASKS = tasks.names()  # every registered task, the paper's and beyond
TINY_CLIP = ClipSettings(width=160, height=96, frames=9, fps=5, clips_per_image=2)


@pytest.fixture(scope="session")
def repo_params() -> Section:
    return load_params(REPO / "params.yaml")


@pytest.fixture(scope="session")
def settings(repo_params: Section) -> dict[str, object]:
    """Each task's settings exactly as params.yaml declares them (the paper's ranges)."""
    return {task: task_settings(repo_params, task) for task in TASKS}


@pytest.fixture(scope="session")
def clean_image() -> np.ndarray:
    image, _ = frame_image(skimage.data.astronaut(), TINY_CLIP.width, TINY_CLIP.height)
    return image


@pytest.fixture(scope="session")
def other_image() -> np.ndarray:
    image, _ = frame_image(skimage.data.coffee(), TINY_CLIP.width, TINY_CLIP.height)
    return image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
