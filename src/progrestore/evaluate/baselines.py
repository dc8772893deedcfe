"""The score_baselines stage's computation (:mod:`progrestore.stages.score_baselines`): the methods that do
not depend on the model (oracle, identity, classical), scored once on the val clips.

``evaluate`` scores the model stages' trajectories (``model``, ``vae``) and joins these scores, so that a
model-side change (a prompt strategy, a LoRA setting) rescores the model only. Both stages score inside
the same window: the centre window of the model's aspect ratio (``model.height`` x ``model.width``), which
the model restores, when a model stage's method is evaluated; the whole frame otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

from progrestore import tasks
from progrestore.config import Section, clip_size
from progrestore.data.framing import centre_window
from progrestore.errors import InputError
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.methods import MADE_BY_STAGE, evaluated_methods
from progrestore.evaluate.scoring import Evaluation, Window, evaluate_dataset
from progrestore.io.atomic import write_json
from progrestore.model.settings import model_size


def scoring_window(params: Section, methods: list[str]) -> Window | None:
    """Where every method is scored: the model's window of the clip, when a model stage's method is
    evaluated. Reads ``clip.width``, ``clip.height`` and (with the model) ``model.profile``,
    ``model.height``, ``model.width``."""
    if not set(methods) & set(MADE_BY_STAGE):
        return None
    width, height = clip_size(params)
    model_height, model_width = model_size(params)
    return Window(*centre_window(width, height, model_width, model_height))


def run_score_baselines(params: Section, task: str, dataset: Path, out: Path) -> None:
    """The scores of ``evaluate.methods`` less the model stages' on ``<dataset>/val``, as ``out`` (JSON)."""
    tasks.check(task)
    methods = evaluated_methods(params)
    window = scoring_window(params, methods)
    baselines = [m for m in methods if m not in MADE_BY_STAGE]
    evaluation = evaluate_dataset(task, Path(dataset) / "val", baselines, FrameScorer(), window=window)
    record = {
        "methods": baselines,
        "window": None if window is None else vars(window),
        "clip_ids": evaluation.clip_ids,
        "values": evaluation.values,
        "coherence": evaluation.coherence,
    }
    write_json(Path(out), record)
    print(f"{task}: {', '.join(baselines)} scored on {len(evaluation.clip_ids)} clips -> {out}")


def read_baselines(path: Path, window: Window | None, task: str) -> Evaluation:
    """``score_baselines``' scores, checked to be of the window the model's trajectories are scored in."""
    if not Path(path).is_file():
        raise InputError(
            f"{path} not found: run the score_baselines stage first (dvc repro score_baselines@{task})"
        )
    record = json.loads(Path(path).read_text())
    if record["window"] != (None if window is None else vars(window)):
        raise InputError(
            f"{path} was scored in the window {record['window']}, the model restored "
            f"{None if window is None else vars(window)}: run score_baselines@{task} again"
        )
    if "coherence" not in record:
        raise InputError(
            f"{path} comes from an older score_baselines stage: run score_baselines@{task} again"
        )
    return Evaluation(record["methods"], record["values"], record["clip_ids"], record["coherence"])
