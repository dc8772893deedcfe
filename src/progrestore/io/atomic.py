"""Write-then-rename helpers, so an interrupted stage never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from progrestore.errors import WRITE_ERRNOS, InputError

STAGING = ".staging"  # the one place a folder output is built: inside the output folder itself
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; it replaces ``target`` only if the block succeeds.

    A refused write (a full disk) names ``target``: ``write()`` raises it without a file name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, target)
    except OSError as err:
        if err.errno in WRITE_ERRNOS and err.filename is None:
            raise OSError(err.errno, err.strerror, str(target)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path, obj: object) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_jsonl(target: Path, rows: list[dict]) -> None:
    write_text(target, "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows))


def replace_tree(staged: Path, target: Path) -> None:
    """Move a fully built file or folder into place, removing what was there before."""
    target = Path(target)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)


def fresh_staging_dir(path: Path) -> Path:
    """An empty folder for building outputs; leftovers of a killed run are removed first."""
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def check_output_dir(out: Path, marker: str, overwrite: bool) -> None:
    """Refuse an output folder the program may not fill, before any work starts.

    Allowed: a new or empty folder, or, with ``overwrite``, a folder holding this command's earlier output
    (recognised by its ``marker`` file). Refused: a file, any folder with files the program did not
    write (nothing of the user's is ever deleted or replaced), and a path it cannot write.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; give a new folder for the output")
    if out.is_dir() and [entry for entry in out.iterdir() if entry.name != STAGING]:
        if not (out / marker).is_file():
            raise InputError(
                f"{out}: already holds files this command did not write; give a new or empty folder"
            )
        if not overwrite:
            raise InputError(
                f"{out}: holds an earlier output of this command; pass --overwrite to replace it, "
                "or give a new folder"
            )
    check_writable(out)


def check_writable(out: Path) -> None:
    """Refuse, in one line naming the path, an output folder that cannot be made or written in (a file on
    its path, a read-only parent), by making and removing a probe folder where the staging folder will
    go: found before any work, not as a traceback once the results are ready. Leaves nothing behind."""
    folder = Path(os.path.abspath(out))  # ".." resolved, so that each parent made is one folder
    ancestors = [folder, *folder.parents]
    first = next(i for i, path in enumerate(ancestors) if path.exists() or path.is_symlink())
    if not ancestors[first].is_dir():
        raise InputError(f"{out}: {ancestors[first]} is not a folder; give a folder for the output")
    created: list[Path] = []
    try:
        for missing in reversed(ancestors[:first]):
            missing.mkdir()
            created.append(missing)
        os.rmdir(tempfile.mkdtemp(prefix=f"{STAGING}-probe-", dir=folder))
    except OSError as err:
        cause = err.strerror or err.__class__.__name__
        raise InputError(f"{out}: cannot be written ({cause}); give a folder you may write") from err
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                made.rmdir()


@contextlib.contextmanager
def staged_output_dir(out: Path, marker: str, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder inside ``out`` (checked by :func:`check_output_dir`).

    When the block succeeds, each staged entry replaces the entry of the same name in ``out``, ``marker``
    last, so that a half-published folder is never taken for a finished one. Whatever happens, the staging
    folder is removed, and so is ``out`` if this call created it and nothing was published.
    """
    out = Path(out)
    check_output_dir(out, marker, overwrite)
    created = not out.exists()
    staging = fresh_staging_dir(out / STAGING)
    published = False
    try:
        yield staging
        for entry in sorted(staging.iterdir(), key=lambda e: (e.name == marker, e.name)):
            replace_tree(entry, out / entry.name)
        published = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not published and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


KEPT_MARKER = (
    "kept.json"  # in a folder of kept work: the program made it, and the fingerprint of what made it
)


def kept_work_dir(out: Path) -> Path:
    """Where a run keeps its finished pieces until the whole output is done: ``.<name>.partial`` beside
    ``out``, since DVC removes a stage's outputs before it runs it (work kept inside ``out`` would not
    survive to the rerun). Refuses, before any work, a folder there that the program did not make."""
    out = Path(out)
    folder = out.parent / f".{out.name}.partial"
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise InputError(f"{folder}: exists and is not a folder this program made; remove it")
    if folder.is_dir() and any(folder.iterdir()) and _kept_fingerprint(folder) is None:
        raise InputError(f"{folder}: holds files this program did not write; remove it")
    return folder


def _kept_fingerprint(folder: Path) -> str | None:
    try:
        record = json.loads((folder / KEPT_MARKER).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record.get("fingerprint") if isinstance(record, dict) else None


def start_kept_work(folder: Path, fingerprint: str) -> None:
    """Make ``folder`` (checked by :func:`kept_work_dir`) ready to keep the pieces of a run made by
    ``fingerprint``: pieces of another one (other settings, inputs or code) and the temporaries of a
    killed write are removed, so that only finished pieces of this very run are ever reused."""
    folder = Path(folder)
    if folder.is_dir() and _kept_fingerprint(folder) not in (None, fingerprint):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".*.tmp"):
        leftover.unlink()
    if _kept_fingerprint(folder) is None:
        write_json(folder / KEPT_MARKER, {"fingerprint": fingerprint})


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` with ``source``'s bytes: a hard link (no copy of a video), or a copy across devices."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
