"""The methods whose trajectories are scored: each turns a clip's context into T frames.

A method is one entry in :data:`METHODS` (a function and a description), so the model's trajectories plug
in as one more entry. Methods that output a single image repeat it over the T frames, which draws a flat
line: the level a trajectory's last frame has to beat. The methods of :data:`MADE_BY_STAGE` are read from
what a model stage wrote (``ClipContext.made``); ``score_baselines`` scores the others, ``evaluate`` these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from progrestore import tasks
from progrestore.config import Section


@dataclass(frozen=True)
class ClipContext:
    task: str
    degraded: np.ndarray  # the input every method starts from (frame 1)
    frames: int
    clip: np.ndarray | None = None  # the synthetic progression, when there is one
    params: dict | None = None  # the clip's sampled degradation parameters, when known
    made: Mapping[str, np.ndarray] = field(default_factory=dict)  # MADE_BY_STAGE methods' trajectories


def _oracle(ctx: ClipContext) -> np.ndarray:
    if ctx.clip is None:
        raise ValueError("the oracle needs a synthetic clip")
    return ctx.clip


def _identity(ctx: ClipContext) -> np.ndarray:
    return np.repeat(ctx.degraded[None], ctx.frames, axis=0)


def _classical(ctx: ClipContext) -> np.ndarray:
    restored = tasks.get(ctx.task).baseline.restore(ctx.degraded, ctx.params)
    return np.repeat(restored[None], ctx.frames, axis=0)


# the methods whose trajectories a model stage writes (method -> that stage): the model's samples and the
# autoencoder ceiling, the clip encoded and decoded by the model's own VAE (no latent model restores better)
MADE_BY_STAGE = {"vae": "reconstruct", "model": "restore"}


def _made(method: str) -> Callable[[ClipContext], np.ndarray]:
    def trajectory(ctx: ClipContext) -> np.ndarray:
        if method not in ctx.made:
            stage = MADE_BY_STAGE[method]
            raise ValueError(
                f"the {method} method needs the {stage} stage's trajectories (dvc repro {stage}@<task>)"
            )
        return ctx.made[method]

    return trajectory


METHODS: dict[str, tuple[Callable[[ClipContext], np.ndarray], str]] = {
    "oracle": (_oracle, "the synthetic clip itself (sanity check: ends exactly at the clean image)"),
    "identity": (_identity, "the degraded input at every frame (the floor any restorer must beat)"),
    "vae": (
        _made("vae"),
        "the synthetic clip encoded and decoded by the {} model's own VAE at the model's size (reconstruct "
        "stage): the autoencoder ceiling, the best a trajectory in its latent space can score; see model_profile",
    ),
    "model": (_made("model"), "the LoRA-fine-tuned {} I2V trajectory (restore stage); see model_profile"),
    "classical": (_classical, "the task's classical restorer: {}"),
}


def evaluated_methods(params: Section) -> list[str]:
    """``evaluate.methods``: known methods, identity among them (the floor every score is read against)."""
    evaluate = params.section("evaluate")
    methods = list(evaluate.names("methods"))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "identity" not in methods:
        raise evaluate.fail("methods", f"a list of {', '.join(METHODS)} that includes identity")
    return methods


def describe(methods: list[str], task: str, blind: bool = False, architecture: str = "") -> dict[str, str]:
    """What each of ``methods`` is, for ``task``'s reports; ``blind``: the clips' parameters are unknown
    (real photographs), so the classical restorer runs its blind variant; ``architecture``: the model's
    (its profile's family's name in labels), which the ``model`` method needs."""
    if set(methods) & set(MADE_BY_STAGE) and not architecture:
        raise ValueError("describing the model's methods needs the model's architecture")
    baseline = tasks.get(task).baseline
    restorer = baseline.blind_description if blind else baseline.description
    fills = {"classical": restorer, "model": architecture, "vae": architecture}
    return {m: METHODS[m][1].format(fills[m]) if m in fills else METHODS[m][1] for m in methods}


def method_trajectory(method: str, ctx: ClipContext) -> np.ndarray:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return METHODS[method][0](ctx)
