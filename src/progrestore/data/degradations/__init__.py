"""The degradation families, one module each, all with the same five functions.

A task module defines ``Settings.from_section`` (its params.yaml block, validated), ``sample``
(per-clip parameters from a seeded generator), ``schedule`` (per-frame values at progress
p = (t-1)/(T-1)), ``prepare`` (work shared by every frame of a clip) and ``render`` (one frame).
A frame is a pure function of the clean image, the clip's parameters and p, so any clip can be
regenerated from its manifest entry alone; ``render`` at p = 1 returns the clean image unchanged.
Adding a task means adding one module and one line here.
"""

from __future__ import annotations

from types import ModuleType

from progrestore.data.degradations import deblur, lowlight, sr
from progrestore.errors import ParamsError

REGISTRY: dict[str, ModuleType] = {"sr": sr, "deblur": deblur, "lowlight": lowlight}


def get(task: str) -> ModuleType:
    if task not in REGISTRY:
        raise ParamsError(f"unknown task {task!r}; known tasks: {', '.join(REGISTRY)}")
    return REGISTRY[task]
