"""safetensors files with the same bytes for the same content.

safetensors writes its ``__metadata__`` map in hash order, which changes from process to process; the
header is rewritten with the metadata keys sorted (same length, so offsets are untouched), so that DVC
sees an unchanged file as unchanged.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors.torch import save_file

from progrestore.io.atomic import atomic_path


def canonicalise(path: Path) -> None:
    path = Path(path)
    with path.open("r+b") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
        if "__metadata__" in header:
            header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        text = json.dumps(header, separators=(",", ":")).encode()
        if len(text) > length:
            raise ValueError(f"{path}: canonical header is longer than the original")
        handle.seek(8)
        handle.write(text + b" " * (length - len(text)))


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    with atomic_path(Path(path)) as tmp:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        canonicalise(tmp)
