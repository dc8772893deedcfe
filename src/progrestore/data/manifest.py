"""The clip manifest (``<split>/manifest.jsonl``): its one reader, used by every stage after ``degrade``."""

from __future__ import annotations

import json
from pathlib import Path

from progrestore.errors import InputError
from progrestore.layout import CLIP_MANIFEST

REQUIRED_KEYS = ("clip_id", "split", "image_id", "video", "image", "params")


def read_clip_manifest(split_dir: Path) -> list[dict]:
    """The clip entries of ``<split_dir>/manifest.jsonl``."""
    manifest = Path(split_dir) / CLIP_MANIFEST
    if not manifest.is_file():
        raise InputError(f"{manifest} not found: run the degrade stage first (dvc repro degrade@<task>)")
    entries = []
    for number, line in enumerate(manifest.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{manifest}:{number}: not a JSON object ({err.msg})") from err
        missing = [key for key in REQUIRED_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            raise InputError(f"{manifest}:{number}: a clip entry without {', '.join(missing)}")
        entries.append(entry)
    if not entries:
        raise InputError(f"{manifest} lists no clips")
    return entries


def read_prompts(split_dir: Path, entries: list[dict]) -> list[str]:
    """``<split_dir>/prompt.txt``: the prompt of each clip of ``entries``, line by line."""
    path = Path(split_dir) / "prompt.txt"
    if not path.is_file():
        raise InputError(f"{path} not found: run the prompts stage first")
    prompts = path.read_text().splitlines()
    if len(prompts) != len(entries):
        raise InputError(f"{path} has {len(prompts)} lines for {len(entries)} clips")
    return prompts
