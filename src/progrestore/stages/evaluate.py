"""Stage ``evaluate@<task>``: val clips and trajectories -> metrics, plot data, sheets."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.entry import Stage
from progrestore.evaluate.evaluation import run_evaluate


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder (its val/)")
    parser.add_argument("--baselines", type=Path, required=True, help="score_baselines' scores (.json)")
    parser.add_argument("--restored", type=Path, required=True, help="the restore stage's trajectories")
    parser.add_argument(
        "--reconstructed", type=Path, required=True, help="the reconstruct stage's VAE reconstructions"
    )
    parser.add_argument("--metrics", type=Path, required=True, help="the summary (.json)")
    parser.add_argument(
        "--curves", type=Path, required=True, help="per-frame plot data: <curves>/<metric>/<task>.json"
    )
    parser.add_argument(
        "--sheets", type=Path, required=True, help="the folder of the contact sheet and curves"
    )


EVALUATE = Stage(
    "evaluate",
    "score the model's trajectories, join the baselines' scores, write metrics, plot data and sheets",
    _arguments,
    lambda p, a: run_evaluate(
        p,
        a.task,
        a.dataset,
        a.baselines,
        {"model": a.restored, "vae": a.reconstructed},
        a.metrics,
        a.curves,
        a.sheets,
    ),
)
