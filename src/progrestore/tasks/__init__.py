"""The restoration tasks: one module each, registered once, looked up here by everything else.

A task module ``progrestore/tasks/<name>.py`` holds all there is to know about one degradation: its
``degrade.<name>`` settings, per-clip sampling, per-frame schedule, rendering, classical baseline and
prompt theme, gathered in one :class:`Task` and registered with :func:`register`. Adding a task is
adding one module (and its params.yaml blocks); the stages, the CLI's choices, the evaluation's
baseline, the prompt themes and the tests find it through :func:`get` and :func:`names`.

The task list is the package's module list, so it is known without importing any task, and a task's
module is imported only when it is asked for: a stage of one task runs (and, in dvc.yaml, depends on)
that task's module alone.

Every frame is a pure function of the clean image, the clip's parameters and the progress
p = (t-1)/(T-1), so any clip can be regenerated from its manifest entry alone; ``render`` at p = 1
returns the clean image unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from progrestore.config import Section
from progrestore.errors import ParamsError


@dataclass(frozen=True)
class Theme:
    """The words a prompt of the task must carry and the clause the template refiner adds."""

    description: str  # what an LLM refiner is told the clip shows
    clause: str  # what the template refiner appends to the scene
    keywords: tuple[str, ...]  # a valid prompt contains one of these (word stems, lower case)

    def carried_by(self, text: str) -> bool:
        words = re.findall(r"[a-z]+", text.lower())
        return any(word.startswith(stem) for word in words for stem in self.keywords)


@dataclass(frozen=True)
class Baseline:
    """The task's classical restorer: the level a learned model must clearly beat.

    ``restore(degraded, params)`` gets the clip's sampled parameters when they are known (synthetic
    clips) and None otherwise (real photographs), where it runs what ``blind_description`` says.
    """

    restore: Callable[[np.ndarray, dict | None], np.ndarray]
    description: str
    blind_description: str


@dataclass(frozen=True)
class Task:
    """One restoration task. ``prepare`` does the work shared by every frame of a clip (a transform,
    a noise field), ``render`` one frame from it at progress p."""

    name: str
    settings: Callable[[Section], Any]  # parses and validates the ``degrade.<name>`` block
    sample: Callable[[np.random.Generator, Any], dict]  # per-clip parameters (JSON values)
    schedule: Callable[[dict, float], dict]  # per-frame values at progress p (for the manifest)
    prepare: Callable[[np.ndarray, dict], Any]
    render: Callable[[Any, dict, float], np.ndarray]
    baseline: Baseline
    theme: Theme


_REGISTERED: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Called once by each task module, which must be named after its task."""
    module = f"{__name__}.{task.name}"
    if task.name in _REGISTERED:
        raise ValueError(f"task {task.name!r} is registered twice")
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"task {task.name!r} must live in {module}")
    _REGISTERED[task.name] = task
    return task


def names() -> tuple[str, ...]:
    """Every task, sorted: the modules of this package."""
    return tuple(
        sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    )


def check(name: str) -> str:
    """``name`` if it is a known task, else a ParamsError naming the known ones."""
    if name not in names():
        raise ParamsError(f"unknown task {name!r}; known tasks: {', '.join(names())}")
    return name


def get(name: str) -> Task:
    """The task ``name``; its module is imported on first use."""
    if name not in _REGISTERED:
        importlib.import_module(f"{__name__}.{check(name)}")
    return _REGISTERED[name]
