"""The user cache folder, and a content-addressed cache of small JSON results in it.

One file per key, written atomically: each finished result (a caption, a refinement) is on disk the
moment it is done, so an interrupted run loses nothing and a rerun pays only for what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from progrestore.io.atomic import write_json


def cache_dir() -> Path:
    """``$PROGRESTORE_CACHE``, else ``$XDG_CACHE_HOME/progrestore``, else ``~/.cache/progrestore``."""
    if os.environ.get("PROGRESTORE_CACHE"):
        return Path(os.environ["PROGRESTORE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "progrestore"


def cache_key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


class JsonCache:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            value = json.loads(path.read_text())
        except json.JSONDecodeError:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: dict) -> None:
        write_json(self._path(key), value)
