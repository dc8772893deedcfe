"""Ctrl-C, SIGTERM and a full disk: one line on stderr, the conventional exit status, nothing half-written,
the previous outputs and checkpoints intact, and a rerun that finishes.

The interrupt tests run real processes, as a terminal would: the stage in a session of its own, Ctrl-C
sent to its whole process group (workers and ffmpeg included), SIGTERM to the main process alone.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from accelerate import Accelerator
from safetensors import SafetensorError

from progrestore.data.prepare import prepare_images
from progrestore.data.sources import SourceItem
from progrestore.entry import report_errors, run_stage
from progrestore.errors import Interrupted
from progrestore.io import atomic, video
from progrestore.io.atomic import write_text
from progrestore.stages.degrade import DEGRADE
from progrestore.train.config import TrainConfig
from progrestore.train.loop import train_lora
from progrestore.train.records import TrainData

from .conftest import REPO
from .helpers.tiny_training import synthetic_data, tiny_config, tiny_model

WIDTH, HEIGHT = 320, 192
ITEMS = [
    SourceItem("astronaut", "train", "skimage:astronaut"),
    SourceItem("coffee", "train", "skimage:coffee"),
    SourceItem("chelsea", "val", "skimage:chelsea"),
]
LONG_RUN = 100  # clips per image: far more work than the tests wait for before they interrupt
DEADLINE_S = 120.0
HAS_PROC = Path("/proc/self/stat").is_file()
PROGRESS = re.compile(r"^[\w .-]*: +\d+%\|")  # a tqdm bar as the terminal last shows it


def _message(command: str, name: str) -> str:
    return f"progrestore {command}: interrupted by {name}; nothing half-written was kept"


def report_lines(stderr: str) -> list[str]:
    """What stays on a terminal, less the progress bars: a bar redraws its line with ``\\r``."""
    shown = [line.rsplit("\r", 1)[-1] for line in stderr.split("\n")]
    return [line for line in shown if line.strip() and not PROGRESS.match(line)]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def session_processes(session: int) -> list[int]:
    """The live (not zombie) processes of a session: the stage's own, its workers, their ffmpeg."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone meanwhile
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"the process ended (status {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def assert_session_ends(session: int) -> None:
    """Nothing of the run survives it: no worker, no ffmpeg (they get a few seconds to notice)."""
    if not HAS_PROC:
        return  # the processes are listed from Linux's /proc
    deadline = time.monotonic() + 10
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_processes(session) == [], "processes of the run outlived it"


class Stderr:
    """A child's stderr read as it comes, so a test can wait for a line without a fixed sleep."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.chunks: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for chunk in iter(lambda: process.stderr.read1(4096), b""):
            self.chunks.append(chunk.decode(errors="replace"))

    def text(self) -> str:
        return "".join(self.chunks)

    def rest(self) -> str:
        self.thread.join(timeout=DEADLINE_S)
        return self.text()


def child_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, (str(REPO / "src"), os.environ.get("PYTHONPATH"))))
    return {**os.environ, "PYTHONPATH": path, "PROGRESTORE_MLFLOW": "off", **extra}


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "images"
    prepare_images(ITEMS, out, WIDTH, HEIGHT, "band", skip_bad=False)
    return out


def write_params(folder: Path, clips_per_image: int) -> Path:
    """The repository's params.yaml with small clips (``folder/params.yaml``, as a stage reads it)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["clip"].update(width=WIDTH, height=HEIGHT, clips_per_image=clips_per_image)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def degrade_args(images: Path, out: Path) -> list[str]:
    return ["sr", "--images", str(images), "--out", str(out / "sr"), "--sheet", str(out / "sr.png")]


def start_degrade(folder: Path, images: Path, workers: int) -> subprocess.Popen:
    """``python stages/degrade.py sr ...`` as dvc runs it, in a session (and process group) of its own."""
    return subprocess.Popen(
        [sys.executable, str(REPO / "stages" / "degrade.py"), *degrade_args(images, folder / "out")],
        cwd=folder,
        env=child_env(PROGRESTORE_WORKERS=str(workers)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def finished_clip(folder: Path) -> bool:
    """A clip of this run is done (renamed into place in the staging folder): the run is mid-work."""
    return any((folder / "out" / "sr" / ".staging").glob("*/videos/*.mp4"))


@pytest.mark.parametrize(
    ("signum", "whole_group", "workers"),
    [(signal.SIGINT, True, 2), (signal.SIGINT, True, 1), (signal.SIGTERM, False, 2)],
    ids=["ctrl-c-workers", "ctrl-c-in-process", "sigterm-main-pid"],
)
def test_an_interrupted_degrade_says_one_line_and_keeps_the_previous_output(
    images, tmp_path, signum, whole_group, workers
):
    write_params(tmp_path, clips_per_image=1)
    first = start_degrade(tmp_path, images, workers)
    _, err = first.communicate(timeout=DEADLINE_S)
    assert first.returncode == 0, err.decode()
    previous = tree_bytes(tmp_path / "out")

    write_params(tmp_path, clips_per_image=LONG_RUN)
    process = start_degrade(tmp_path, images, workers)
    wait_until(lambda: finished_clip(tmp_path), "a finished clip", process)
    (os.killpg if whole_group else os.kill)(process.pid, signum)
    _, err = process.communicate(timeout=DEADLINE_S)  # returns once no worker holds stderr open
    stderr = err.decode(errors="replace")

    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and "ffmpeg" not in stderr
    assert report_lines(stderr) == [_message("degrade", signal.Signals(signum).name)], stderr
    assert stderr.endswith("\n" + _message("degrade", signal.Signals(signum).name) + "\n")  # on its own line
    assert_session_ends(process.pid)
    assert tree_bytes(tmp_path / "out") == previous  # no staging folder, nothing of the interrupted run
    assert not list((tmp_path / "out").rglob(".*"))

    write_params(tmp_path, clips_per_image=1)
    again = start_degrade(tmp_path, images, workers)
    _, err = again.communicate(timeout=DEADLINE_S)
    assert again.returncode == 0, err.decode()
    assert tree_bytes(tmp_path / "out") == previous


def test_a_first_degrade_interrupted_leaves_no_output_folder(images, tmp_path):
    write_params(tmp_path, clips_per_image=LONG_RUN)
    process = start_degrade(tmp_path, images, workers=2)
    wait_until(lambda: finished_clip(tmp_path), "a finished clip", process)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=DEADLINE_S)
    assert process.returncode == 130, err.decode()
    assert list((tmp_path / "out").rglob("*")) == []  # not even an empty out/sr for dvc to find


def test_workers_of_a_killed_stage_do_not_outlive_it(images, tmp_path):
    """SIGKILL (the OOM killer, a closed terminal) runs no cleanup, but the workers must still end
    instead of waiting on the dead parent's queue for ever; the next run clears the staging folder."""
    if not HAS_PROC:
        pytest.skip("lists the processes from Linux's /proc")
    write_params(tmp_path, clips_per_image=LONG_RUN)
    process = start_degrade(tmp_path, images, workers=2)
    wait_until(lambda: finished_clip(tmp_path), "a finished clip", process)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=DEADLINE_S)
    assert_session_ends(process.pid)

    write_params(tmp_path, clips_per_image=1)
    again = start_degrade(tmp_path, images, workers=2)
    _, err = again.communicate(timeout=DEADLINE_S)
    assert again.returncode == 0, err.decode()
    assert not (tmp_path / "out" / "sr" / ".staging").exists()
    assert len(list((tmp_path / "out" / "sr" / "train" / "videos").iterdir())) == 2


def test_an_interrupted_restore_says_one_line_and_writes_nothing(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    pixels = np.random.default_rng(0).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.png"), pixels)
    command = [sys.executable, "-m", "progrestore.cli", "restore", "photo.png", "--task", "sr", "--no-lora"]
    process = subprocess.Popen(
        [*command, "--out", "result"],
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    stderr = Stderr(process)
    # the tiny model is loaded (its text encoder's bar has ended its line): sampling is under way
    loaded = re.compile(r"Loading checkpoint shards: 100%[^\n]*\n")
    wait_until(lambda: loaded.search(stderr.text()) is not None, "the model to load", process)
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=DEADLINE_S)
    text = stderr.rest()
    assert process.returncode == 130, text
    assert "Traceback" not in text
    assert report_lines(text) == [_message("restore", "SIGINT")], text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "photo.png"]
    assert_session_ends(process.pid)


def test_report_errors_maps_interrupts_and_whatever_follows_them(capsys):
    assert report_errors("x", lambda: (_ for _ in ()).throw(Interrupted(signal.SIGTERM))) == 143
    assert report_errors("x", lambda: (_ for _ in ()).throw(KeyboardInterrupt())) == 130

    def signal_then_broken_pipe() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the handler raises Interrupted at once
        finally:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")  # e.g. an ffmpeg the terminal killed

    assert report_errors("y", signal_then_broken_pipe) == 130
    err = capsys.readouterr().err
    assert err.splitlines() == [
        _message("x", "SIGTERM"),
        _message("x", "SIGINT"),
        _message("y", "SIGINT"),
    ]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back afterwards


# ---- a full disk ----


def test_a_refused_write_names_its_file_and_leaves_no_temporary(tmp_path, monkeypatch, capsys):
    real = Path.write_bytes

    def half_then_full(self: Path, data: bytes) -> int:
        real(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no file name

    target = tmp_path / "out" / "notes.txt"
    write_text(target, "earlier")
    monkeypatch.setattr(atomic.Path, "write_bytes", half_then_full)
    assert report_errors("prompts", lambda: write_text(target, "x" * 1000)) == 2
    assert (
        capsys.readouterr().err == f"progrestore prompts: error: no space left on device writing {target}\n"
    )
    assert target.read_text() == "earlier" and [p.name for p in target.parent.iterdir()] == ["notes.txt"]


def fake_ffmpeg(folder: Path, successes: int) -> Path:
    """An ffmpeg that encodes ``successes`` clips, then fails as the real one does on a full disk:
    part of the output written, then "No space left on device" in its log and status 1."""
    script = folder / "ffmpeg"
    script.write_text(
        f"""#!{sys.executable}
import os, sys
from pathlib import Path
count = Path({str(folder / "calls")!r})
calls = int(count.read_text()) if count.exists() else 0
count.write_text(str(calls + 1))
if calls < {successes}:
    os.execv({video.ffmpeg_executable()!r}, [sys.argv[0], *sys.argv[1:]])
sys.stdin.buffer.read(1000)
output = next(arg for arg in sys.argv if arg.endswith(".tmp"))
Path(output).write_bytes(b"\\0" * 500)
sys.stderr.write("[out#0/mp4] Error writing trailer: No space left on device\\nConversion failed!\\n")
sys.exit(1)
"""
    )
    script.chmod(0o755)
    return script


def test_a_full_disk_during_degrade_is_one_line_and_the_previous_output_survives(
    images, tmp_path, monkeypatch, capsys
):
    params = write_params(tmp_path, clips_per_image=1)
    out = tmp_path / "out"
    monkeypatch.setenv("PROGRESTORE_WORKERS", "1")  # the fake ffmpeg is this process's
    assert run_stage(DEGRADE, degrade_args(images, out), params) == 0
    previous = tree_bytes(out)
    capsys.readouterr()

    fake = fake_ffmpeg(tmp_path, successes=2)
    monkeypatch.setattr(video, "ffmpeg_executable", lambda: str(fake))
    assert run_stage(DEGRADE, degrade_args(images, out), params) == 2
    lines = report_lines(capsys.readouterr().err)
    third = (
        out / "sr" / ".staging" / "val" / "videos" / "chelsea_v0.mp4"
    )  # the third clip, as ffmpeg wrote it
    assert lines == [f"progrestore degrade: error: no space left on device writing {third}"]
    assert tree_bytes(out) == previous and not list(out.rglob(".*"))

    monkeypatch.undo()  # the space is freed
    monkeypatch.setenv("PROGRESTORE_WORKERS", "1")
    assert run_stage(DEGRADE, degrade_args(images, out), params) == 0
    assert tree_bytes(out) == previous


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[TrainConfig, TrainData, dict[str, torch.Tensor]]:
    """An uninterrupted tiny run (8 steps, checkpoints at 4 and 8, one kept), its data and its LoRA."""
    cfg = tiny_config(steps=8, checkpoint_every=4, keep_checkpoints=1)
    model = tiny_model()
    data = synthetic_data(model)
    _, result = train_lora(model, data, cfg, tmp_path_factory.mktemp("straight"), "fp")
    return cfg, data, result.adapter


def assert_same_lora(adapter: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert adapter.keys() == expected.keys()
    assert all(torch.equal(adapter[key], expected[key]) for key in expected)


SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


@pytest.mark.parametrize(
    ("failure", "status", "line"),
    [
        (
            SafetensorError(SAFETENSORS_FULL),
            2,
            "progrestore train: error: no space left on device writing {}",
        ),
        (Interrupted(signal.SIGINT), 130, _message("train", "SIGINT")),
    ],
    ids=["disk-full", "ctrl-c"],
)
def test_a_checkpoint_cut_short_leaves_the_previous_one_to_resume(
    straight, tmp_path, monkeypatch, capsys, failure, status, line
):
    """The second save writes its files, then one is cut in half and ``failure`` raised, as a full disk
    (safetensors' own error) or a Ctrl-C would in the middle of it."""
    cfg, data, expected = straight
    checkpoints = tmp_path / "checkpoints"
    real = Accelerator.save_state
    seen: dict[str, dict[str, bytes]] = {}

    def cut_short(self, output_dir: str, **kwargs) -> object:
        if (checkpoints / "checkpoint-4").is_dir():
            seen["previous"] = tree_bytes(checkpoints / "checkpoint-4")
            real(self, output_dir, **kwargs)
            weights = Path(output_dir) / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
            raise failure
        return real(self, output_dir, **kwargs)

    monkeypatch.setattr(Accelerator, "save_state", cut_short)
    assert report_errors("train", lambda: train_lora(tiny_model(), data, cfg, checkpoints, "fp")) == status
    assert report_lines(capsys.readouterr().err) == [line.format(checkpoints / "checkpoint-8")]
    # no half checkpoint, none hidden, and the previous one neither pruned nor touched
    assert [p.name for p in checkpoints.iterdir()] == ["checkpoint-4"]
    assert tree_bytes(checkpoints / "checkpoint-4") == seen["previous"]

    monkeypatch.undo()
    _, result = train_lora(tiny_model(), data, cfg, checkpoints, "fp")
    assert result.resumed_from == 4 and [log.step for log in result.logs] == list(range(1, 9))
    assert_same_lora(result.adapter, expected)
    assert [p.name for p in checkpoints.iterdir()] == ["checkpoint-8"]


# ---- a real full disk: a small tmpfs, where this process may mount one ----


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Callable[[str], Path]]:
    """``resize(size)``: a tmpfs at ``tmp_path/disk`` of that size (mounted first, then remounted)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = False

    def resize(size: str) -> Path:
        nonlocal mounted
        options = f"remount,size={size}" if mounted else f"size={size}"
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "none", str(disk)], capture_output=True
        )
        if result.returncode != 0:
            if not mounted:
                pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
            raise AssertionError(result.stderr.decode())
        mounted = True
        return disk

    yield resize
    if mounted:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)  # lazy: a file a failure left open


def used_bytes(folder: Path) -> int:
    usage = os.statvfs(folder)
    return (usage.f_blocks - usage.f_bfree) * usage.f_frsize


def test_degrade_on_a_full_tmpfs(images, tmp_path, small_disk, monkeypatch, capsys):
    """Real ENOSPC, met by ffmpeg in the pool's workers: one line naming the clip; after a remount with
    room, the rerun finishes."""
    out = small_disk("64m") / "out"
    params = write_params(tmp_path, clips_per_image=1)
    monkeypatch.setenv("PROGRESTORE_WORKERS", "2")
    assert run_stage(DEGRADE, degrade_args(images, out), params) == 0
    previous = tree_bytes(out)
    small_disk(str(used_bytes(out) + 64 * 1024))
    capsys.readouterr()

    params = write_params(tmp_path, clips_per_image=4)
    assert run_stage(DEGRADE, degrade_args(images, out), params) == 2
    lines = report_lines(capsys.readouterr().err)
    assert len(lines) == 1 and lines[0].startswith(
        "progrestore degrade: error: no space left on device writing "
    )
    assert Path(lines[0].rsplit(" ", 1)[1]).is_relative_to(out / "sr" / ".staging")
    assert tree_bytes(out) == previous and not list(out.rglob(".*"))

    small_disk("64m")
    assert run_stage(DEGRADE, degrade_args(images, out), params) == 0
    assert len(list((out / "sr" / "train" / "videos").iterdir())) == 8


def test_training_on_a_full_tmpfs(straight, small_disk, capsys):
    """Real ENOSPC in the middle of the second checkpoint (torch's writer says only "unexpected pos"):
    one line naming it, the first checkpoint intact, and after a remount with room the run resumes."""
    cfg, data, expected = straight
    checkpoints = small_disk("100k")  # room for one checkpoint of the tiny LoRA (68 KiB), not two
    seen: dict[str, dict[str, bytes]] = {}

    def note(log) -> None:
        if log.step == 5:
            seen["previous"] = tree_bytes(checkpoints / "checkpoint-4")

    run = lambda: train_lora(tiny_model(), data, cfg, checkpoints, "fp", on_step=note)  # noqa: E731
    assert report_errors("train", run) == 2
    error = f"progrestore train: error: no space left on device writing {checkpoints / 'checkpoint-8'}"
    assert report_lines(capsys.readouterr().err) == [error]
    assert [p.name for p in checkpoints.iterdir()] == ["checkpoint-4"]
    assert tree_bytes(checkpoints / "checkpoint-4") == seen["previous"]

    small_disk("10m")
    _, result = train_lora(tiny_model(), data, cfg, checkpoints, "fp")
    assert result.resumed_from == 4
    assert_same_lora(result.adapter, expected)
