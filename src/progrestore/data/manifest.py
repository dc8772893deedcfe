"""The clip manifest (``<split>/manifest.jsonl``): its one reader, used by every stage after ``degrade``."""

from __future__ import annotations

import json
from pathlib import Path

from progrestore.errors import InputError
from progrestore.layout import CLIP_MANIFEST


def read_clip_manifest(split_dir: Path) -> list[dict]:
    """The clip entries of ``<split_dir>/manifest.jsonl``."""
    manifest = Path(split_dir) / CLIP_MANIFEST
    if not manifest.is_file():
        raise InputError(f"{manifest} not found: run the degrade stage first (dvc repro degrade@<task>)")
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    if not entries:
        raise InputError(f"{manifest} lists no clips")
    return entries
