"""Training checkpoints: ``checkpoint-<step>`` folders (LoRA, optimizer and scheduler state, the step log
so far), written whole or not at all, pruned to ``keep_checkpoints``, and the newest matching one resumed."""

from __future__ import annotations

import errno
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

from progrestore.errors import disk_full, disk_full_error
from progrestore.io.atomic import write_json
from progrestore.train.config import TrainConfig
from progrestore.train.records import StepLog, TrainResult
from progrestore.train.setup import Training

CHECKPOINT_PREFIX = "checkpoint-"
PARTIAL_PREFIX = ".partial-"  # a checkpoint being written: never resumed, removed by the next save
FULL_DISK_BYTES = 2**20  # less room than this after a failed save: the disk was full


def _latest_checkpoint(folder: Path, fingerprint: str) -> tuple[Path, dict] | None:
    """(folder, metadata) of the newest checkpoint of this fingerprint that logs every step before it."""
    candidates = []
    for path in Path(folder).glob(f"{CHECKPOINT_PREFIX}*"):  # not the hidden .partial-checkpoint-*
        meta_file = path / "progrestore.json"
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        if meta.get("fingerprint") == fingerprint and len(meta.get("history", ())) == meta["step"]:
            candidates.append((meta["step"], path, meta))
    return max(candidates, key=lambda c: c[0])[1:] if candidates else None


def resume(training: Training, checkpoints: Path, fingerprint: str) -> TrainResult:
    """The state and step log of the newest matching checkpoint, or a fresh start."""
    result = TrainResult()
    latest = _latest_checkpoint(checkpoints, fingerprint)
    if latest is not None:
        folder, meta = latest
        training.accelerator.load_state(str(folder))
        result.resumed_from = meta["step"]
        result.logs = [StepLog(**entry) for entry in meta["history"]]
    return result


def _save_failure(err: BaseException, partial: Path, folder: Path) -> OSError | None:
    """A full disk, as an error naming the checkpoint: in safetensors' words or as an errno, or, from
    torch's writer (whose errors do not say why: ``unexpected pos``, ``iostream error``), a disk with
    no room left."""
    code = disk_full(err)
    if code is None and isinstance(err, RuntimeError) and partial.parent.is_dir():
        code = errno.ENOSPC if shutil.disk_usage(partial.parent).free < FULL_DISK_BYTES else None
    return None if code is None else disk_full_error(code, folder)


def save_checkpoint(
    training: Training, checkpoints: Path, done: int, fingerprint: str, cfg: TrainConfig, logs: list[StepLog]
) -> None:
    """``checkpoint-<done>`` with the LoRA, optimizer and scheduler state and the log so far; older
    checkpoints beyond ``keep_checkpoints`` go.

    Written whole into a hidden sibling, then renamed: a save cut short (a full disk, an interrupt) leaves
    no half checkpoint, prunes nothing, and the previous checkpoint stays the one to resume."""
    accelerator = training.accelerator
    folder = Path(checkpoints) / f"{CHECKPOINT_PREFIX}{done}"
    partial = folder.with_name(f"{PARTIAL_PREFIX}{folder.name}")  # every process writes its part there
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # a killed save's leftover
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(str(partial))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            history = [asdict(entry) for entry in logs]
            meta = {"step": done, "fingerprint": fingerprint, "config": asdict(cfg), "history": history}
            write_json(partial / "progrestore.json", meta)
            if folder.exists():  # a checkpoint of other settings at this step
                shutil.rmtree(folder)
            os.replace(partial, folder)
    except BaseException as err:
        full = _save_failure(err, partial, folder) if accelerator.is_main_process else None
        shutil.rmtree(partial, ignore_errors=True)
        if full is not None:
            raise full from err
        raise
    if accelerator.is_main_process:
        kept = sorted(
            Path(checkpoints).glob(f"{CHECKPOINT_PREFIX}*"), key=lambda p: int(p.name.split("-")[1])
        )
        for old in kept[: -cfg.keep_checkpoints]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
