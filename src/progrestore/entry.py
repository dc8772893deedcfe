"""How stage scripts and commands run: parameters from params.yaml, user errors as one line, an audit.

Every DVC stage script calls :func:`run_stage`. With ``$PROGRESTORE_AUDIT_DIR`` set (the dependency
tests set it), a stage also writes ``<dir>/<stage>.json``: the params keys it read and the progrestore
modules it loaded, which its ``params`` and ``deps`` in dvc.yaml must cover.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import progrestore
from progrestore.config import PARAMS_FILE, load_params
from progrestore.errors import GateFailed, ProgrestoreError
from progrestore.io.atomic import write_json

AUDIT_ENV = "PROGRESTORE_AUDIT_DIR"


def report_errors(command: str, body: Callable[[], object]) -> int:
    """Run ``body``; a user error becomes one line on stderr and exit status 2 (a failed gate: 1)."""
    try:
        body()
    except GateFailed as err:
        print(f"progrestore gate: {err}", file=sys.stderr)
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


def run_stage(command: str, body: Callable[..., object], *args: str) -> int:
    """A stage body ``body(params, *args)`` with params.yaml, as a process exit status."""
    audit = os.environ.get(AUDIT_ENV)
    reads: set[str] | None = set() if audit else None
    status = report_errors(command, lambda: body(load_params(PARAMS_FILE, reads), *args))
    if audit:
        stage = os.environ.get("DVC_STAGE") or "@".join((command, *args))
        record = {"stage": stage, "params": sorted(reads or ()), "modules": loaded_modules()}
        write_json(Path(audit) / f"{stage}.json", record)
    return status
