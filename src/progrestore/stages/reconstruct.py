"""Stage ``reconstruct@<task>``: the model's VAE reconstructions of the val clips."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.entry import Stage
from progrestore.infer.ceiling import run_reconstruct


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder (its val/)")
    parser.add_argument("--out", type=Path, required=True, help="the reconstructions' folder")


RECONSTRUCT = Stage(
    "reconstruct",
    "the model's VAE reconstruction of a task's val clips (the autoencoder ceiling, method vae)",
    _arguments,
    lambda p, a: run_reconstruct(p, a.dataset, a.out, a.task),
)
