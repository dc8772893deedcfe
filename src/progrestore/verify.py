"""``progrestore verify``: re-hash every output dvc.lock records, and the cache objects behind them.

``dvc status`` trusts its state database (inode, mtime, size), so a file written in place under hard
links, or a cache object damaged or deleted behind DVC's back, passes unnoticed until a stage reads it.
This reads every byte instead and names each file that no longer holds what dvc.lock says, with the
command that recovers it. A hard-linked file and its cache object (one inode) are read once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from tqdm import tqdm

from progrestore.errors import InputError

CHUNK = 1 << 20


def folder_md5(files: dict[str, str]) -> str:
    """DVC's hash of a folder output (``<md5>.dir``) from its files' md5s by relative (posix) path: the md5
    of their {md5, relpath} listing in DVC's order (by path parts), serialised as DVC serialises it. A
    folder kept in git (``cache: false``) has no stored listing, so whoever checks one rebuilds it so."""
    ordered = sorted(files.items(), key=lambda item: tuple(item[0].split("/")))
    listing = [{"md5": md5, "relpath": relpath} for relpath, md5 in ordered]
    digest = hashlib.md5(json.dumps(listing, sort_keys=True).encode(), usedforsecurity=False).hexdigest()
    return f"{digest}.dir"


class Problem(Enum):
    """What is wrong with one file, and the command that recovers it."""

    MISSING = "missing from the workspace", "`dvc checkout` restores it"
    MISSING_IN_GIT = (
        "missing from the workspace",
        "`git checkout` restores the committed version, `dvc repro` rebuilds it",
    )
    CHANGED = (
        "differs from dvc.lock",
        "`dvc checkout --force` restores the recorded version, `dvc repro` rebuilds it",
    )
    CHANGED_IN_GIT = (
        "differs from dvc.lock",
        "`git checkout` restores the committed version, `dvc repro` rebuilds it",
    )
    UNRECORDED = (
        "not recorded in dvc.lock",
        "`dvc checkout --force` removes it, `dvc repro` rebuilds the folder",
    )
    WRITTEN_IN_PLACE = (
        "written in place through a hard link: its DVC cache object changed with it",
        "`progrestore verify --repair` takes the object out of the cache (the file stays); then `dvc repro` rebuilds it, `dvc pull` fetches it from a remote",
    )
    OBJECT_MISSING = (
        "missing from the DVC cache",
        "`dvc pull` fetches it from a remote, `dvc repro` rebuilds it",
    )
    OBJECT_DAMAGED = (
        "damaged DVC cache object",
        "`progrestore verify --repair` removes it; then `dvc pull` fetches it from a remote, `dvc repro` rebuilds it",
    )

    def __init__(self, text: str, remedy: str) -> None:
        self.text, self.remedy = text, remedy


@dataclass(frozen=True)
class Mismatch:
    path: Path  # the workspace file or the cache object
    output: str  # "<output> of <stage>", as dvc.yaml names them
    problem: Problem
    detail: str = ""  # the md5s, where they differ
    damaged_object: Path | None = None  # what repair removes from the cache

    def line(self, root: Path) -> str:
        shown = self.path.relative_to(root) if self.path.is_relative_to(root) else self.path
        detail = f" ({self.detail})" if self.detail else ""
        return f"{shown}: {self.problem.text}{detail}, in {self.output}; {self.problem.remedy}"


@dataclass
class Verification:
    files: int = 0  # workspace files checked
    objects: int = 0  # distinct cache objects checked
    mismatches: list[Mismatch] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)  # damaged cache objects taken out (repair)


class _Checker:
    """Compares files with their recorded md5s, reading each inode once."""

    def __init__(self, report: Verification, progress: tqdm) -> None:
        self.report, self._progress = report, progress
        self._hashes: dict[tuple[int, int, int, int], str] = {}
        self._objects: set[Path] = set()

    def md5(self, path: Path) -> str:
        info = path.stat()
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        if key not in self._hashes:
            digest = hashlib.md5(usedforsecurity=False)
            with open(path, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    self._progress.update(len(chunk))
            self._hashes[key] = digest.hexdigest()
        return self._hashes[key]

    def tracked_file(self, path: Path, md5: str, output: str, cache_object: Path | None) -> None:
        """A workspace file and, unless it is kept in git (``cache_object`` None), its cache object."""
        self.report.files += 1
        if not path.is_file():
            problem = Problem.MISSING if cache_object is not None else Problem.MISSING_IN_GIT
            self.report.mismatches.append(Mismatch(path, output, problem))
        elif (actual := self.md5(path)) != md5:
            detail = f"md5 {actual}, recorded {md5}"
            if cache_object is None:
                problem = Problem.CHANGED_IN_GIT
            elif cache_object.is_file() and path.samefile(cache_object):
                self._objects.add(cache_object)  # one file, one report
                self.report.mismatches.append(
                    Mismatch(
                        path,
                        output,
                        Problem.WRITTEN_IN_PLACE,
                        f"{detail}; the cache object is {cache_object}",
                        cache_object,
                    )
                )
                return
            else:
                problem = Problem.CHANGED
            self.report.mismatches.append(Mismatch(path, output, problem, detail))
        if cache_object is not None:
            self.cache_object(cache_object, md5, output)

    def git_folder(self, folder: Path, oid: str, output: str) -> None:
        """A ``cache: false`` folder: its files' listing, serialised as DVC does, must hash to ``oid``."""
        files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        self.report.files += len(files)
        actual = folder_md5({p.relative_to(folder).as_posix(): self.md5(p) for p in files})
        if not files:
            self.report.mismatches.append(Mismatch(folder, output, Problem.MISSING_IN_GIT))
        elif actual != oid:
            detail = f"its {len(files)} files hash to {actual}, recorded {oid}"
            self.report.mismatches.append(Mismatch(folder, output, Problem.CHANGED_IN_GIT, detail))

    def cache_object(self, path: Path, md5: str, output: str) -> bool:
        """Whether the object holds ``md5``'s bytes; each object is checked (and reported) once."""
        if path in self._objects:
            return path.is_file() and self.md5(path) == md5
        self._objects.add(path)
        self.report.objects += 1
        if not path.is_file():
            self.report.mismatches.append(Mismatch(path, output, Problem.OBJECT_MISSING))
            return False
        if (actual := self.md5(path)) != md5:
            self.report.mismatches.append(
                Mismatch(path, output, Problem.OBJECT_DAMAGED, f"its bytes hash to {actual}", path)
            )
            return False
        return True


def _listing(cache_object: Path) -> list[dict]:
    """A directory output's ``.dir`` object: one {md5, relpath} per file (its hash was checked)."""
    return json.loads(cache_object.read_bytes())


def _check_output(checker: _Checker, out, cache) -> None:
    name = f"{out.def_path} of {out.stage.addressing}"
    workspace = Path(out.fs_path)
    oid: str = out.hash_info.value
    if not out.hash_info.isdir:
        checker.tracked_file(workspace, oid, name, Path(cache.oid_to_path(oid)) if out.use_cache else None)
        return
    if not out.use_cache:  # a folder kept in git: its listing is not stored, so rebuild it to compare
        checker.git_folder(workspace, oid, name)
        return
    listing_object = Path(cache.oid_to_path(oid))
    if not checker.cache_object(listing_object, oid.removesuffix(".dir"), name):
        return  # without its listing, a folder's files cannot be named (the object is reported)
    recorded = set()
    for entry in _listing(listing_object):
        path = workspace / entry["relpath"]
        recorded.add(path)
        checker.tracked_file(path, entry["md5"], name, Path(cache.oid_to_path(entry["md5"])))
    if workspace.is_dir():
        extra = sorted(p for p in workspace.rglob("*") if p.is_file() and p not in recorded)
        checker.report.mismatches.extend(Mismatch(path, name, Problem.UNRECORDED) for path in extra)


def verify(root: Path, stages: set[str] | None = None, repair: bool = False) -> Verification:
    """Check the workspace and the cache under ``root`` against its dvc.lock (``stages``: only those).

    ``repair`` removes damaged cache objects, so that ``dvc pull`` or ``dvc repro`` can put them back
    (DVC never replaces an object that exists). Under hard links a damaged object is also a workspace
    file: only the cache's link goes, so what the user wrote stays.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    root = Path(root).resolve()
    if not (root / "dvc.lock").is_file():
        raise InputError(
            f"{root / 'dvc.lock'}: not found (run `dvc repro` first, or verify from the repository root)"
        )
    try:
        repo = Repo(str(root))
    except DvcException as err:
        raise InputError(f"{root}: not a DVC repository ({err})") from None
    report = Verification()
    with repo, tqdm(desc="verify", unit="B", unit_scale=True, unit_divisor=1024) as progress:
        outputs = [out for out in repo.index.outs if out.hash_info.value]  # a stage never run has none
        known = {out.stage.addressing for out in outputs}
        if stages is not None and (unknown := stages - known):
            raise InputError(
                f"dvc.lock records no stage {', '.join(sorted(unknown))} (it has: {', '.join(sorted(known))})"
            )
        checker = _Checker(report, progress)
        for out in outputs:
            if stages is None or out.stage.addressing in stages:
                _check_output(checker, out, repo.cache.local)
    if repair:
        for damaged in sorted({m.damaged_object for m in report.mismatches} - {None}):
            if damaged.is_file():
                damaged.unlink()
                report.removed.append(damaged)
    return report
