"""Stage ``restore@<task>``: the LoRA's trajectories of the val clips, and its launcher: with
``$PROGRESTORE_PROCESSES`` = N > 1, ``stages/restore.py`` runs the stage under accelerate's launcher on
N processes (:func:`restore_script`)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from progrestore import tasks
from progrestore.config import Section
from progrestore.entry import Stage, report_errors, run_stage
from progrestore.errors import InputError, Interrupted
from progrestore.infer.trajectories import restore_inputs, run_restore

PROCESSES_ENV = "PROGRESTORE_PROCESSES"  # stages/restore.py under accelerate launch with this many processes


def requested_processes() -> int:
    """``$PROGRESTORE_PROCESSES``: how many processes to run the stage on (1 without it, and inside a
    process the launcher started)."""
    value = os.environ.get(PROCESSES_ENV)
    if not value or "LOCAL_RANK" in os.environ:  # torchrun's, in every process it starts
        return 1
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"${PROCESSES_ENV}={value!r}: give a number of processes (1 or more)")
    return int(value)


def launch_processes(script: str, argv: list[str], processes: int) -> int:
    """Run ``script`` under accelerate's launcher on ``processes`` processes (one per GPU; CPU processes
    over gloo without GPUs), in this process, so that an interrupt ends as one line; its exit status."""
    from accelerate.commands.launch import launch_command, launch_command_parser
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    flags = ["--multi_gpu", "--num_processes", str(processes), "--num_machines", "1"]
    flags += [
        "--main_process_port",
        "0",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]  # 0: a free port
    try:
        launch_command(launch_command_parser().parse_args([*flags, script, *argv]))
    except SignalException as err:  # the processes got the signal too, and said so
        raise Interrupted(err.sigval) from err
    except ChildFailedError as err:  # a process failed and said why: its status
        return err.get_first_failure()[1].exitcode
    return 0


def restore_script(script: str, argv: list[str]) -> int:
    """``stages/restore.py``'s exit status: the stage here, or, with ``$PROGRESTORE_PROCESSES`` = N > 1,
    its inputs checked here and the stage on N processes. This is how ``dvc repro`` runs it on N GPUs with
    dvc.yaml's command line: the environment is not part of dvc.lock."""
    launched: list[int] = []

    def launch() -> None:
        processes = requested_processes()
        if processes > 1:
            checked = run_stage(CHECK_RESTORE, argv)
            launched.append(checked or launch_processes(script, argv, processes))

    status = report_errors(RESTORE.name, launch)
    return status or (launched[0] if launched else run_stage(RESTORE, argv))


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder (its val/)")
    parser.add_argument("--text", type=Path, required=True, help="the task's text.safetensors")
    parser.add_argument("--lora", type=Path, required=True, help="the LoRA's folder")
    parser.add_argument("--out", type=Path, required=True, help="the trajectories' folder")


def _run(params: Section, args: argparse.Namespace) -> None:
    run_restore(params, args.dataset, args.text, args.lora, args.out, args.task)


def _check(params: Section, args: argparse.Namespace) -> None:
    restore_inputs(params, args.dataset, args.text, args.lora, args.out)


RESTORE = Stage("restore", "the LoRA's trajectories of a task's val clips", _arguments, _run)
CHECK_RESTORE = Stage(RESTORE.name, RESTORE.description, _arguments, _check)  # the inputs only
