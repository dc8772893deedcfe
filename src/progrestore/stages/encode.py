"""Stages ``encode_video@<task>`` (the train clips' latents) and ``encode_text@<task>`` (the prompts'
embeddings)."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.config import Section
from progrestore.entry import Stage
from progrestore.train.encode import run_encode_text, run_encode_video


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")


def _run_video(params: Section, args: argparse.Namespace) -> None:
    run_encode_video(params, args.dataset, args.out)
    print(f"{args.task}: video -> {args.out}")


def _run_text(params: Section, args: argparse.Namespace) -> None:
    run_encode_text(params, args.dataset, args.out)
    print(f"{args.task}: text -> {args.out}")


ENCODE_VIDEO = Stage("encode_video", "latents of a task's train clips", _arguments, _run_video)
ENCODE_TEXT = Stage("encode_text", "embeddings of a task's prompts", _arguments, _run_text)
