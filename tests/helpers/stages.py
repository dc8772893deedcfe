"""Run a pipeline stage exactly as dvc.yaml's command line says, in the current folder."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from progrestore.cli import main

REPO = Path(__file__).resolve().parents[2]


def stage_arguments(name: str, item: str | None = None) -> list[str]:
    """The arguments dvc.yaml passes to ``stages/<name>.py`` (its vars and ``${item}`` filled in)."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    names = {key: value for entry in pipeline["vars"] for key, value in entry.items()}
    if item is not None:
        names["item"] = item
    stage = pipeline["stages"][name]
    command = (stage["do"] if "foreach" in stage else stage)["cmd"]
    words = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: names[m.group(1)], command))
    assert words[:2] == ["python", f"stages/{name}.py"], words
    return words[2:]


def run_stage(name: str, item: str | None = None) -> None:
    """``progrestore stage <name>`` with dvc.yaml's arguments; it must succeed."""
    assert main(["stage", name, *stage_arguments(name, item)]) == 0, f"stage {name}@{item} failed"
