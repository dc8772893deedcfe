"""The restore stage on several processes (accelerate, CPU processes over gloo with the tiny model): the
same bytes as one process, and an interrupted run that a rerun finishes with the missing clips only."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from progrestore.entry import run_stage
from progrestore.errors import Interrupted
from progrestore.infer.trajectories import clip_files
from progrestore.stages.restore import RESTORE

from .conftest import REPO
from .helpers.stages import run_stage as run_pipeline_stage
from .helpers.stages import stage_arguments
from .test_interrupts import DEADLINE_S, Stderr, child_env, report_lines, tree_bytes, wait_until

TASK = "sr"
INTERRUPTED = "progrestore restore: interrupted by SIGINT; nothing half-written was kept"
TORCH_LOG = re.compile(r"^[DIWE]\d{4} ")  # torch.distributed's own log lines (glog style)
SAMPLED = re.compile(r"^sr: process (\d+): (\d+) clips sampled, (\d+) kept from an earlier run$", re.M)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A tiny sr project up to the LoRA: 4 val clips (2 images x 2) of 160x96, 2 sampling steps."""
    root = tmp_path_factory.mktemp("project")
    values = yaml.safe_load((REPO / "params.yaml").read_text())
    values["clip"] |= {"width": 160, "height": 96, "clips_per_image": 2}
    values["data"]["sample"] = {"train": ["astronaut"], "val": ["chelsea", "coffee"]}
    values["model"] |= {"height": 64, "width": 128}
    values["train"]["tiny"] |= {"steps": 1, "checkpoint_every": 1}
    values["restore"]["tiny"] = {"steps": 2}
    (root / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("PROGRESTORE_MLFLOW", "off")
        run_pipeline_stage("prepare")
        for stage in ("degrade", "prompts", "encode_video", "encode_text", "train"):
            run_pipeline_stage(stage, TASK)
    return root


def start_restore(project: Path, out: str, processes: int, lora: str | None = None) -> subprocess.Popen:
    """``python stages/restore.py sr ...`` as dvc.yaml says, with ``PROGRESTORE_PROCESSES``, in a session
    of its own; ``--out`` goes to ``out`` (and ``--lora`` to ``lora``, if given)."""
    args = stage_arguments("restore", TASK)
    args[args.index("--out") + 1] = out
    if lora is not None:
        args[args.index("--lora") + 1] = lora
    env = child_env(PROGRESTORE_PROCESSES=str(processes))
    return subprocess.Popen(
        [sys.executable, str(REPO / "stages/restore.py"), *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def restore(project: Path, out: str, processes: int) -> dict[int, tuple[int, int]]:
    """A run that must succeed: each process's (clips sampled, clips kept from an earlier run)."""
    process = start_restore(project, out, processes)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr.decode(errors="replace")[-3000:]
    return {int(p): (int(s), int(k)) for p, s, k in SAMPLED.findall(stdout.decode())}


@pytest.fixture(scope="module")
def one_process(project: Path) -> dict[str, bytes]:
    assert restore(project, "one", 1) == {0: (4, 0)}
    return tree_bytes(project / "one")


@pytest.mark.pipeline  # accelerate launches two restore processes
def test_two_processes_restore_the_same_bytes_as_one(project, one_process):
    assert sorted(one_process) == sorted(
        [
            f"{c}{s}"
            for c in ("chelsea_v0", "chelsea_v1", "coffee_v0", "coffee_v1")
            for s in (".mp4", "_last.png")
        ]
        + ["restored.json"]
    )
    # accelerate's split: contiguous halves of the manifest, one per process
    assert restore(project, "two", 2) == {0: (2, 0), 1: (2, 0)}
    assert tree_bytes(project / "two") == one_process
    assert not (project / ".two.partial").exists()  # the kept clips go once the output is published


@pytest.mark.pipeline  # accelerate launches two restore processes
def test_an_interrupted_two_process_restore_is_finished_by_a_rerun(project, one_process):
    kept = project / ".resumed.partial"
    process = start_restore(project, "resumed", 2)
    stderr = Stderr(process)
    wait_until(lambda: any(kept.glob("*_last.png")), "a first finished clip", process)
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the launcher and both processes
    process.wait(timeout=DEADLINE_S)
    text = stderr.rest()
    assert process.returncode == 130, text
    # one line from each process and one from the launcher they ran under (beside torchrun's log lines)
    assert [line for line in report_lines(text) if not TORCH_LOG.match(line)] == [INTERRUPTED] * 3, text
    assert not (project / "resumed").exists()
    assert not list(kept.glob(".*.tmp"))  # no half-written file is kept
    clips = [path.name.removesuffix("_last.png") for path in kept.glob("*_last.png")]
    finished = {name: (kept / name).stat().st_ino for clip in clips for name in clip_files(clip)}
    counts = restore(project, "resumed", 2)
    assert sum(k for _, k in counts.values()) == len(clips)  # the finished clips are reused
    assert sum(s for s, _ in counts.values()) == 4 - len(clips)  # and only the missing ones sampled
    assert {name: (project / "resumed" / name).stat().st_ino for name in finished} == finished
    assert tree_bytes(project / "resumed") == one_process
    assert not kept.exists()


def test_kept_clips_of_other_settings_are_not_reused(project, one_process, monkeypatch, capsys):
    """Clips kept by an interrupted run with seed 0 are stale for seed 1: every clip is sampled anew. A
    folder in the kept clips' place that the program did not make is refused before the model is loaded."""
    from progrestore.infer import trajectories

    monkeypatch.chdir(project)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    args = stage_arguments("restore", TASK)
    args[args.index("--out") + 1] = "stale"
    kept = project / ".stale.partial"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert run_stage(RESTORE, args, project / "params.yaml") == 2
    line = f"progrestore restore: error: {Path('.stale.partial')}: holds files this program did not write; remove it"
    assert capsys.readouterr().err.splitlines() == [line]
    (kept / "notes.txt").unlink()

    def interrupt_after_first(path: Path, image) -> None:
        write_png(path, image)
        raise Interrupted(signal.SIGINT)

    write_png = trajectories.write_png
    monkeypatch.setattr(trajectories, "write_png", interrupt_after_first)
    assert run_stage(RESTORE, args, project / "params.yaml") == 130
    assert sorted(p.name for p in kept.iterdir()) == ["chelsea_v0.mp4", "chelsea_v0_last.png", "kept.json"]
    assert (kept / "chelsea_v0.mp4").read_bytes() == one_process["chelsea_v0.mp4"]
    monkeypatch.undo()
    monkeypatch.chdir(project)
    monkeypatch.setenv("PROGRESTORE_MLFLOW", "off")
    values = yaml.safe_load((project / "params.yaml").read_text())
    values["restore"]["tiny"]["seed"] = 1
    (project / "seed1.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    capsys.readouterr()
    assert run_stage(RESTORE, args, project / "seed1.yaml") == 0
    assert SAMPLED.findall(capsys.readouterr().out) == [("0", "4", "0")]
    assert (project / "stale" / "chelsea_v0.mp4").read_bytes() != one_process["chelsea_v0.mp4"]
    assert not kept.exists()


def test_the_number_of_processes_and_the_inputs_are_checked_once_before_the_processes_start(project, capsys):
    """A bad ``$PROGRESTORE_PROCESSES`` is one line; so is a bad input (no LoRA here), found by the launching
    process before any process starts, not once by each."""
    from progrestore.stages.restore import restore_script

    args = stage_arguments("restore", TASK)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROGRESTORE_PROCESSES", "two")
        assert restore_script(str(REPO / "stages/restore.py"), args) == 2
    line = "progrestore restore: error: $PROGRESTORE_PROCESSES='two': give a number of processes (1 or more)"
    assert capsys.readouterr().err.splitlines() == [line]
    process = start_restore(project, "failed", 2, lora="nowhere")
    stdout, stderr = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 2
    assert report_lines(stderr.decode()) == [
        "progrestore restore: error: nowhere/pytorch_lora_weights.safetensors not found: train a LoRA first "
        "(dvc repro train@<task>) or pass --lora DIR"
    ]
    assert stdout == b"" and not (project / "failed").exists() and not (project / ".failed.partial").exists()


def test_the_kept_clips_fingerprint_follows_what_decides_their_bytes(project, tmp_path):
    """The same settings, prompts and input files give the same fingerprint; another seed, another prompt
    of a clip or another LoRA file each give another."""
    from dataclasses import replace

    from progrestore.config import load_params
    from progrestore.infer.trajectories import restore_fingerprint, restore_inputs

    params = load_params(project / "params.yaml")
    paths = [project / p for p in ("data/datasets/sr", "data/encoded/sr/text.safetensors", "models/sr")]
    inputs = restore_inputs(params, *paths, tmp_path / "out")
    first = restore_fingerprint(params, "cpu", inputs)
    assert restore_fingerprint(load_params(project / "params.yaml"), "cpu", inputs) == first
    values = yaml.safe_load((project / "params.yaml").read_text())
    values["restore"]["tiny"]["seed"] = 7
    (tmp_path / "seed7.yaml").write_text(yaml.safe_dump(values))
    assert restore_fingerprint(load_params(tmp_path / "seed7.yaml"), "cpu", inputs) != first
    entry, image, _ = inputs.work[0]
    other_prompt = replace(inputs, work=[(entry, image, "another prompt"), *inputs.work[1:]])
    assert restore_fingerprint(params, "cpu", other_prompt) != first
    lora = tmp_path / "lora.safetensors"
    lora.write_bytes(inputs.files[-1].read_bytes() + b" ")
    assert restore_fingerprint(params, "cpu", replace(inputs, files=[*inputs.files[:-1], lora])) != first
    assert restore_fingerprint(params, "cuda", inputs) != first
