"""Stage ``prompts@<task>``: prompt_uniform.txt, prompt_scene.txt, prompt.txt, prompts.jsonl per split."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.entry import Stage
from progrestore.prompts.build import run_prompts


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder")
    parser.add_argument("--images", type=Path, required=True, help="the prepared clean images")


PROMPTS = Stage(
    "prompts",
    "write one task's uniform and scene prompt files",
    _arguments,
    lambda params, args: run_prompts(params, args.task, args.dataset, args.images),
)
