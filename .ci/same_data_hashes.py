"""Fail when an output that must be portable hashes differently from the committed dvc.lock.

Portable = the same bytes on every x86-64 CPU: prepare, degrade@<task> and prompts@<task> (README,
"Reproducibility"). The model stages (encode, train, restore: float torch) are deterministic on one machine
only; their effect reaches CI through `progrestore gate --base HEAD`, which compares metrics with a
tolerance.
"""

import subprocess
import sys
from pathlib import Path

import yaml

PORTABLE_STAGES = ("prepare", "degrade@", "prompts@")

committed = yaml.safe_load(
    subprocess.run(["git", "show", "HEAD:dvc.lock"], capture_output=True, text=True, check=True).stdout
)
current = yaml.safe_load(Path("dvc.lock").read_text())


def outs(lock: dict) -> dict[str, str]:
    return {
        out["path"]: out["md5"]
        for name, stage in lock["stages"].items()
        if name.startswith(PORTABLE_STAGES)
        for out in stage.get("outs", [])
    }


before, after = outs(committed), outs(current)
if not before:
    sys.exit("the committed dvc.lock lists no portable outputs")
changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
for path in changed:
    print(f"not reproduced: {path} {before.get(path)} -> {after.get(path)}")
print(f"{len(before) - len(changed)} of {len(before)} portable data outputs reproduced byte for byte")
sys.exit(1 if changed else 0)
