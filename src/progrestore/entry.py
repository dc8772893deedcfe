"""How stages and commands run: parameters from params.yaml, user errors as one line, an audit.

A stage is one :class:`Stage` in its module of :mod:`progrestore.stages`: its name (as in dvc.yaml),
its command line (the task, and every path it reads or writes: dvc.yaml names them, the code has no
defaults) and its body. The script ``stages/<name>.py`` and ``progrestore stage <name>`` both run it
through :func:`run_stage`.
With ``$PROGRESTORE_AUDIT_DIR`` set (the dependency tests set it), a stage also writes
``<dir>/<stage>.json``: the params keys it read and the progrestore modules it loaded, which its
``params`` and ``deps`` in dvc.yaml must cover.

While a command runs, SIGINT (Ctrl-C) and SIGTERM raise :class:`~progrestore.errors.Interrupted`: the
run unwinds (staging folders and worker pools go) and ends as one line and exit status 128 + the signal.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import progrestore
from progrestore.config import PARAMS_FILE, Section, load_params
from progrestore.errors import WRITE_ERRNOS, CheckFailed, Interrupted, ProgrestoreError
from progrestore.io.atomic import write_json

AUDIT_ENV = "PROGRESTORE_AUDIT_DIR"
INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# what the machine, not the program, got wrong: reported as one line naming the file
REPORTED_ERRNOS = WRITE_ERRNOS | {errno.EACCES, errno.EPERM, errno.EIO}

_received: list[int] = []  # the signals that arrived while the handlers were in


def _on_signal(signum: int, _frame: object) -> None:
    """The first signal raises; later ones are only noted, so that the cleanup the first one started
    (staging folders, worker pools) is not cut short."""
    _received.append(signum)
    if len(_received) == 1:
        raise Interrupted(signum)


@contextlib.contextmanager
def interrupt_handlers() -> Iterator[list[int]]:
    """SIGINT and SIGTERM raise :class:`Interrupted` in the block; yields the signals received so far.

    Python's own SIGINT handling would raise ``KeyboardInterrupt`` and leave SIGTERM deadly (no cleanup).
    Only the main thread can install handlers; elsewhere, and when already installed, this changes nothing.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is _on_signal
    ):
        yield _received
        return
    _received.clear()
    previous = {signum: signal.signal(signum, _on_signal) for signum in INTERRUPT_SIGNALS}
    try:
        yield _received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def interrupt_signal(err: BaseException, received: list[int]) -> int | None:
    """The signal ``err`` stands for: an interrupt, or anything raised once a signal has arrived (an
    ffmpeg killed by the terminal's Ctrl-C, a pool whose workers were ended): the signal was the cause."""
    if isinstance(err, Interrupted):
        return err.signum
    if received:
        return received[0]
    return signal.SIGINT if isinstance(err, KeyboardInterrupt) else None


def close_progress_bars() -> None:
    """End the line of every open tqdm bar now: one the interrupt left open (``for x in tqdm(...)``) would
    otherwise close when its frame goes, writing after the report."""
    std = sys.modules.get("tqdm.std")  # imported only if some bar was: gate and friends load no tqdm
    for bar in list(getattr(getattr(std, "tqdm", None), "_instances", ())):
        bar.close()


def os_error_line(err: OSError) -> str | None:
    """``no space left on device writing <path>``, ``permission denied: <path>``: the machine's refusal
    naming the file; None for errors that name no file or may be the program's own (a missing file)."""
    if err.errno not in REPORTED_ERRNOS:
        return None
    reason = os.strerror(err.errno).lower()
    if err.errno in WRITE_ERRNOS:  # copyfile and replace name the destination second
        path = err.filename2 if err.filename2 is not None else err.filename
        return None if path is None else f"{reason} writing {os.fsdecode(path)}"
    if err.filename is None:
        return None
    paths = [os.fsdecode(name) for name in (err.filename, err.filename2) if name is not None]
    return f"{reason}: {' -> '.join(paths)}"


def report_errors(command: str, body: Callable[[], object]) -> int:
    """Run ``body``; a user error becomes one line on stderr and exit status 2 (a failed check: 1), and
    so does the machine's refusal to write a file (a full disk); an interrupt: one line, 128 + signal."""
    with interrupt_handlers() as received:
        try:
            body()
        except BaseException as err:
            signum = interrupt_signal(err, received)
            if signum is not None:
                close_progress_bars()
                name = signal.Signals(signum).name
                print(
                    f"progrestore {command}: interrupted by {name}; nothing half-written was kept",
                    file=sys.stderr,
                )
                return 128 + signum
            if isinstance(err, CheckFailed):
                print(f"progrestore {command}: {err}", file=sys.stderr)
                return 1
            line = str(err) if isinstance(err, ProgrestoreError) else None
            if line is None and isinstance(err, OSError):
                line = os_error_line(err)
            if line is None:
                raise
            print(f"progrestore {command}: error: {line}", file=sys.stderr)
            return 2
    return 0


def loaded_module_files() -> list[Path]:
    """The source files of the progrestore modules this process has imported, sorted."""
    package = Path(progrestore.__file__).resolve().parent
    names = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    files = {Path(name).resolve() for name in names if name}  # built-in modules have no file
    return sorted(path for path in files if path.is_relative_to(package))


def loaded_modules() -> list[str]:
    """``loaded_module_files`` relative to the package's parent (src/)."""
    root = Path(progrestore.__file__).resolve().parent.parent
    return [path.relative_to(root).as_posix() for path in loaded_module_files()]


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    arguments: Callable[[argparse.ArgumentParser], None]  # adds the stage's positional args and paths
    run: Callable[[Section, argparse.Namespace], object]  # the body: validated params and the args


def stage_parser(stage: Stage, prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or f"stages/{stage.name}.py", description=stage.description)
    stage.arguments(parser)
    return parser


def run_stage(stage: Stage, argv: list[str], params_file: Path = PARAMS_FILE, prog: str | None = None) -> int:
    """Parse ``argv`` with the stage's command line and run it with ``params_file``, as an exit status."""
    args = stage_parser(stage, prog).parse_args(argv)
    audit = os.environ.get(AUDIT_ENV)
    reads: set[str] | None = set() if audit else None
    status = report_errors(stage.name, lambda: stage.run(load_params(params_file, reads), args))
    if audit:
        item = getattr(args, "task", None) or "+".join(getattr(args, "tasks", None) or ())
        name = os.environ.get("DVC_STAGE") or "@".join(filter(None, (stage.name, item)))
        record = {"stage": name, "params": sorted(reads or ()), "modules": loaded_modules()}
        write_json(Path(audit) / f"{name}.json", record)
    return status
