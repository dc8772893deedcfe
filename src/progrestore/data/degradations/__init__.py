"""The degradation families, one module each, all with the same five functions.

A task module defines ``Settings.from_section`` (its params.yaml block, validated), ``sample``
(per-clip parameters from a seeded generator), ``schedule`` (per-frame values at progress
p = (t-1)/(T-1)), ``prepare`` (work shared by every frame of a clip) and ``render`` (one frame).
A frame is a pure function of the clean image, the clip's parameters and p, so any clip can be
regenerated from its manifest entry alone; ``render`` at p = 1 returns the clean image unchanged.
Adding a task means adding one module and its name here.

Modules are imported by name when first asked for, so a stage of one task runs (and, in dvc.yaml,
depends on) that task's module alone.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from progrestore.errors import ParamsError

TASKS = ("sr", "deblur", "lowlight")


def to_uint8(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Clip ``values * scale`` to [0, 255] and round half up to uint8 (the frames of every task)."""
    scaled = values * scale if scale != 1.0 else values
    return (np.clip(scaled, 0.0, 255.0) + 0.5).astype(np.uint8)


def check(task: str) -> str:
    """``task`` if it is a known task, else a ParamsError naming the known ones."""
    if task not in TASKS:
        raise ParamsError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return task


def get(task: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{check(task)}")
