"""The cache cannot be corrupted through the workspace, and ``progrestore verify`` names what differs.

A two-output DVC stage in a scratch repository with the project's committed ``.dvc/config``: a file and
a folder, a local-folder remote to recover from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from progrestore.cli import main

from .conftest import REPO

STAGE = """\
stages:
  make:
    cmd: python make.py
    outs:
      - out.bin
      - folder
  notes:
    cmd: python -c "import os; os.makedirs('notes', exist_ok=True); open('notes/n.txt', 'w').write('n')"
    outs:
      - notes:
          cache: false
"""
MAKE = """\
import os
os.makedirs("folder", exist_ok=True)
open("out.bin", "wb").write(b"recorded output " * 64)
open("folder/a.txt", "w").write("a" * 100)
open("folder/b.txt", "w").write("b" * 100)
"""


def _dvc(*args: str, cwd: Path) -> str:
    env = os.environ | {
        "DVC_NO_ANALYTICS": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"dvc {args}: {result.stdout}{result.stderr}"
    return result.stdout


def _cache_object(repo: Path, content: bytes) -> Path:
    import hashlib

    md5 = hashlib.md5(content).hexdigest()
    return repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def _verify(repo: Path, capsys, monkeypatch, *args: str) -> tuple[int, list[str], str]:
    monkeypatch.chdir(repo)
    status = main(["verify", *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err.strip().splitlines()[-1]


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    _dvc("init", "-q", cwd=root)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the committed link type
    (root / "dvc.yaml").write_text(STAGE)
    (root / "make.py").write_text(MAKE)
    _dvc("remote", "add", "-d", "backup", str(tmp_path / "remote"), cwd=root)
    _dvc("repro", "-q", cwd=root)
    _dvc("push", "-q", cwd=root)
    return root


def test_a_fresh_run_verifies_clean(repo, capsys, monkeypatch):
    status, out, last = _verify(repo, capsys, monkeypatch)
    assert status == 0 and out == ["verify: all 4 files and 4 cache objects match dvc.lock"], (out, last)


def test_writing_into_an_output_in_place_cannot_reach_the_cache_by_default(repo, capsys, monkeypatch):
    """As root, read-only modes stop nothing: the default link type must keep the object apart."""
    output, recorded = repo / "folder/a.txt", b"a" * 100
    os.chmod(output, 0o644)  # what root's writes amount to
    with open(output, "r+b") as handle:  # in place: same inode, as `cp other a.txt` does
        handle.write(b"corrupt")
    assert _cache_object(repo, recorded).read_bytes() == recorded
    assert "modified" in _dvc("status", cwd=repo)
    status, out, last = _verify(repo, capsys, monkeypatch)
    assert status == 1 and len(out) == 1, out
    assert out[0].startswith("folder/a.txt: differs from dvc.lock (md5 ") and "in folder of make;" in out[0]
    assert last == "progrestore verify: 1 of 4 files and 4 cache objects do not match dvc.lock"
    _dvc("checkout", "--force", cwd=repo)
    assert output.read_bytes() == recorded
    assert _verify(repo, capsys, monkeypatch)[0] == 0


def test_under_hard_links_verify_names_a_file_written_in_place_and_repair_lets_repro_heal(
    repo, capsys, monkeypatch
):
    """The documented opt-in: DVC's own status misses the damage (it trusts inode and mtime); verify does not."""
    _dvc("config", "--local", "cache.type", "hardlink", cwd=repo)
    _dvc("checkout", "--relink", "-q", cwd=repo)
    output, recorded = repo / "out.bin", b"recorded output " * 64
    cache_object = _cache_object(repo, recorded)
    assert output.samefile(cache_object)
    os.chmod(output, 0o644)
    with open(output, "r+b") as handle:
        handle.write(b"CORRUPT")
    status, out, _last = _verify(repo, capsys, monkeypatch)
    assert status == 1 and len(out) == 1, out
    assert out[0].startswith(
        "out.bin: written in place through a hard link: its DVC cache object changed with it"
    )
    assert str(cache_object) in out[0] and "--repair" in out[0]

    status, out, _ = _verify(repo, capsys, monkeypatch, "--repair")
    assert status == 1 and out[-1] == f"removed from the cache: {cache_object.relative_to(repo)}"
    assert not cache_object.exists() and output.read_bytes().startswith(b"CORRUPT")  # the user's file stays
    _dvc("repro", "-q", cwd=repo)
    assert output.read_bytes() == recorded and cache_object.read_bytes() == recorded
    assert _verify(repo, capsys, monkeypatch)[0] == 0


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_cache_object_damaged_behind_dvcs_back_is_named_and_pulled_back(repo, damage, capsys, monkeypatch):
    recorded = b"b" * 100
    cache_object = _cache_object(repo, recorded)
    if damage == "truncated":
        os.chmod(cache_object, 0o644)
        os.truncate(cache_object, 10)
    else:
        cache_object.unlink()
    status, out, _ = _verify(repo, capsys, monkeypatch)
    assert status == 1 and len(out) == 1, out
    problem = (
        "damaged DVC cache object (its bytes hash to "
        if damage == "truncated"
        else "missing from the DVC cache"
    )
    assert (
        out[0].startswith(f"{cache_object.relative_to(repo)}: {problem}") and "in folder of make;" in out[0]
    )
    if damage == "truncated":  # DVC may keep an object that exists (it trusts its size): take it out
        status, out, _ = _verify(repo, capsys, monkeypatch, "--repair")
        assert (
            out[-1] == f"removed from the cache: {cache_object.relative_to(repo)}"
            and not cache_object.exists()
        )
    _dvc("pull", "-q", cwd=repo)
    assert cache_object.read_bytes() == recorded
    assert _verify(repo, capsys, monkeypatch)[0] == 0


def test_missing_and_unrecorded_files_and_a_changed_git_folder_are_each_named(repo, capsys, monkeypatch):
    (repo / "folder/b.txt").unlink()
    (repo / "folder/stray.txt").write_text("not DVC's")
    (repo / "notes/n.txt").write_text("edited")
    status, out, _ = _verify(repo, capsys, monkeypatch)
    assert status == 1
    lines = sorted(out)
    assert len(lines) == 3, out
    assert lines[0].startswith("folder/b.txt: missing from the workspace, in folder of make; `dvc checkout`")
    assert lines[1].startswith("folder/stray.txt: not recorded in dvc.lock, in folder of make;")
    assert lines[2].startswith("notes: differs from dvc.lock (its 1 files hash to ")
    assert f"recorded {_lock_md5(repo, 'notes')}), in notes of notes;" in lines[2]
    assert "git checkout" in next(line for line in out if line.startswith("notes"))
    status, out, _ = _verify(repo, capsys, monkeypatch, "notes")  # one stage only
    assert status == 1 and len(out) == 1 and out[0].startswith("notes: ")
    shutil.rmtree(repo / "notes")  # a folder kept in git is restored by git, not by DVC's cache
    status, out, _ = _verify(repo, capsys, monkeypatch, "notes")
    assert out == [
        "notes: missing from the workspace, in notes of notes; `git checkout` restores the committed "
        "version, `dvc repro` rebuilds it"
    ]


def _lock_md5(repo: Path, path: str) -> str:
    import yaml

    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return next(o["md5"] for s in lock["stages"].values() for o in s["outs"] if o["path"] == path)


def test_bad_requests_are_refused_in_one_line(repo, tmp_path, capsys, monkeypatch):
    status, _, last = _verify(repo, capsys, monkeypatch, "nosuch")
    assert (
        status == 2
        and last == "progrestore verify: error: dvc.lock records no stage nosuch (it has: make, notes)"
    )
    status, _out, last = _verify(tmp_path, capsys, monkeypatch)
    assert status == 2 and last.startswith("progrestore verify: error: ") and "dvc.lock: not found" in last
