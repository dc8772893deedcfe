"""How stages and commands run: parameters from params.yaml, user errors as one line, an audit.

A stage is one :class:`Stage` beside its code: its name (as in dvc.yaml), its command line (the task,
and every path it reads or writes: dvc.yaml names them, the code has no defaults) and its body. The
script ``stages/<name>.py`` and ``progrestore stage <name>`` both run it through :func:`run_stage`.
With ``$PROGRESTORE_AUDIT_DIR`` set (the dependency tests set it), a stage also writes
``<dir>/<stage>.json``: the params keys it read and the progrestore modules it loaded, which its
``params`` and ``deps`` in dvc.yaml must cover.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import progrestore
from progrestore.config import PARAMS_FILE, Section, load_params
from progrestore.errors import CheckFailed, ProgrestoreError
from progrestore.io.atomic import write_json

AUDIT_ENV = "PROGRESTORE_AUDIT_DIR"


def report_errors(command: str, body: Callable[[], object]) -> int:
    """Run ``body``; a user error becomes one line on stderr and exit status 2 (a failed check: 1)."""
    try:
        body()
    except CheckFailed as err:
        print(f"progrestore {command}: {err}", file=sys.stderr)
        return 1
    except ProgrestoreError as err:
        print(f"progrestore {command}: error: {err}", file=sys.stderr)
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
