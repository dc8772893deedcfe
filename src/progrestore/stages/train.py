"""Stage ``train@<task>``: encoded clips -> the LoRA (pytorch_lora_weights.safetensors, train.json)."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore import tasks
from progrestore.config import Section
from progrestore.entry import Stage
from progrestore.train.run import run_train


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tasks", nargs="+", choices=tasks.names(), help="one LoRA on these tasks")
    parser.add_argument("--datasets", type=Path, required=True, help="holds <task>/train/")
    parser.add_argument("--encoded", type=Path, required=True, help="holds <task>/{video,text}.safetensors")
    parser.add_argument("--out", type=Path, required=True, help="the LoRA's folder")


def _run(params: Section, args: argparse.Namespace) -> None:
    from accelerate import PartialState

    weights = run_train(params, args.tasks, args.datasets, args.encoded, args.out)
    if PartialState().is_main_process:  # every process trains (accelerate launch); one says where it went
        print(f"LoRA ({'+'.join(args.tasks)}) -> {weights}")


TRAIN = Stage("train", "LoRA-fine-tune the backbone on one task (or several: a joint LoRA)", _arguments, _run)
