"""Stage ``score_baselines@<task>``: the scores of the methods that do not depend on the model."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.entry import Stage
from progrestore.evaluate.baselines import run_score_baselines


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder (its val/)")
    parser.add_argument("--out", type=Path, required=True, help="the scores (.json)")


SCORE_BASELINES = Stage(
    "score_baselines",
    "score the methods that do not depend on the model (oracle, identity, classical) on one task's val clips",
    _arguments,
    lambda p, a: run_score_baselines(p, a.task, a.dataset, a.out),
)
