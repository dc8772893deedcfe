"""Stage ``prepare``: source images (params ``data``, ``clip``) -> the prepared images' folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from progrestore.data.prepare import run_prepare
from progrestore.entry import Stage


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output of prepare")


PREPARE = Stage(
    "prepare",
    "decode and frame the source images",
    _arguments,
    lambda p, a: run_prepare(p, a.out, a.overwrite),
)
