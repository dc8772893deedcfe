"""Fail when a prepare/degrade/prompts/encode/restore output hashes differently from the committed dvc.lock (non-determinism).

Evaluation outputs are left to `progrestore gate --base HEAD`, which compares them with a tolerance.
"""

import subprocess
import sys
from pathlib import Path

import yaml

committed = yaml.safe_load(
    subprocess.run(["git", "show", "HEAD:dvc.lock"], capture_output=True, text=True, check=True).stdout
)
current = yaml.safe_load(Path("dvc.lock").read_text())


def outs(lock: dict) -> dict[str, str]:
    return {
        out["path"]: out["md5"]
        for name, stage in lock["stages"].items()
        if name.startswith(("prepare", "degrade@", "prompts@", "encode_", "restore@"))
        for out in stage.get("outs", [])
    }


before, after = outs(committed), outs(current)
changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
for path in changed:
    print(f"not reproduced: {path} {before.get(path)} -> {after.get(path)}")
print(f"{len(before) - len(changed)} of {len(before)} data outputs reproduced byte for byte")
sys.exit(1 if changed else 0)
