"""Stage ``degrade@<task>``: prepared images -> the task's dataset folder and contact sheet."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.data.dataset import run_degrade
from progrestore.entry import Stage


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--images", type=Path, required=True, help="the prepared images")
    parser.add_argument("--out", type=Path, required=True, help="the task's dataset folder")
    parser.add_argument("--sheet", type=Path, required=True, help="the contact sheet (.png)")


DEGRADE = Stage(
    "degrade",
    "synthesise one task's progression clips",
    _arguments,
    lambda params, args: run_degrade(params, args.task, args.images, args.out, args.sheet),
)
