"""Where the pipeline's files live. dvc.yaml's ``vars`` name every folder once and pass them to the
stages on their command line; the commands outside DVC take their defaults from there too."""

from __future__ import annotations

from pathlib import Path

import yaml

from progrestore.errors import InputError

PIPELINE_FILE = Path("dvc.yaml")
IMAGES_MANIFEST = "manifest.json"  # in the prepared images' folder: framing and source of every image
CLIP_MANIFEST = "manifest.jsonl"  # in each dataset split folder: one entry per clip
# beside the model stages' trajectories, written last: what made them (the evaluation reads them)
RESTORED_RECORD = "restored.json"  # restore: profile, sampling, the window the model restored
RECONSTRUCTED_RECORD = "reconstructed.json"  # reconstruct: profile, the window the VAE reconstructed


def pipeline_path(name: str, pipeline_file: Path = PIPELINE_FILE) -> Path:
    """The folder dvc.yaml's vars call ``name`` (``images``, ``models``, ``metrics``, ...)."""
    try:
        entries = (yaml.safe_load(Path(pipeline_file).read_text()) or {}).get("vars", [])
    except (OSError, yaml.YAMLError) as err:
        raise InputError(
            f"{pipeline_file}: cannot read the pipeline's folders ({err.__class__.__name__}); "
            "run from the repository root or give the path explicitly"
        ) from err
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, dict) and isinstance(entry.get(name), str):
            return Path(entry[name])
    raise InputError(f"{pipeline_file}: its vars name no folder {name!r}; give the path explicitly")
