"""Shared fixtures: small images and the repository's own parameters (tiny sizes keep the suite fast)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from progrestore import tasks
from progrestore.config import ClipSettings, Section, load_params
from progrestore.data.dataset import task_settings
from progrestore.data.framing import frame_image

from .helpers.dvc_project import BuiltPipeline, built_pipeline, copy_project

REPO = Path(__file__).resolve().parents[1]
TASKS = tasks.names()  # every registered task, the paper's and beyond
TINY_CLIP = ClipSettings(width=160, height=96, frames=9, fps=5, clips_per_image=2)
# the files of a published pipeline folder (both families), with the shard counts of our tiny ones (the real
# transformers have several shards of up to 5 GB); tokenizer/: spiece.model and three JSON files, no
# tokenizer.json (the published Wan folder has one too; transformers reads either)
HUB_FOLDER_FILES = {
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model.safetensors.index.json",
    "text_encoder/model-00001-of-00002.safetensors",
    "text_encoder/model-00002-of-00002.safetensors",
    "tokenizer/added_tokens.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/spiece.model",
    "tokenizer/tokenizer_config.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors.index.json",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
}


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


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> BuiltPipeline:
    """The DVC pipeline built once per session at a tiny clip size, shared by every pytest-xdist worker
    (their base folders' parent is the session's): the files that use it may run on different workers."""
    session = tmp_path_factory.getbasetemp()
    return built_pipeline(session.parent if os.environ.get("PYTEST_XDIST_WORKER") else session)


@pytest.fixture
def own_repo(pipeline: BuiltPipeline, tmp_path) -> Path:
    """A scratch copy of the built pipeline, for a test that commits, edits, runs stages or experiments: the
    built one stays as its repro left it, whatever order and on whatever worker the tests run. The copy's
    MLflow store starts empty (the built one holds one run per evaluate stage)."""
    return copy_project(pipeline.repo, tmp_path / "own")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def baseline_gains(
    task: str, settings: Section, cleans: dict[str, np.ndarray], variants: int = 4
) -> tuple[list[float], np.ndarray, dict]:
    """The PSNR gain of ``task``'s registered restorer over its input on frame 1 of synthetic clips (seed 4,
    ``variants`` per clean image), and the last clip's degraded frame and parameters for further checks."""
    from progrestore.data.synthesis import sample_params

    task_ = tasks.get(task)
    gains = []
    for name, clean in cleans.items():
        for variant in range(variants):
            params = sample_params(task, settings, 4, name, variant)
            degraded = task_.render(task_.prepare(clean, params), params, 0.0)
            gains.append(psnr(task_.baseline.restore(degraded, params), clean) - psnr(degraded, clean))
    return gains, degraded, params


FIRST, LAST = "test_pipeline.py", "test_experiment_queue.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The pipeline's file first and the experiment queue's last. Under `make test`'s two workers (``--dist
    loadfile --no-loadscope-reorder``) one worker starts building the pipeline at once (minutes of dvc runs)
    and then checks it, while the other takes the remaining files and comes to the queue's experiments,
    which run on a copy of the same build, when the build is done: the two workers end close together."""
    items.sort(key=lambda item: (item.path.name != FIRST) + (item.path.name == LAST))  # stable
