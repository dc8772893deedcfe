"""The prepare stage's computation (its command line: :mod:`progrestore.stages.prepare`): decode, frame and
store every source image as ``<out>/<split>/<id>.png``."""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import asdict
from pathlib import Path

from progrestore import tasks
from progrestore.config import SPLITS, Section, clip_size
from progrestore.data.framing import PORTRAIT_RULES, STRONG_ENLARGEMENT, frame_image
from progrestore.data.sources import SourceItem, list_sources
from progrestore.errors import InputError
from progrestore.io.atomic import check_output_dir, staged_output_dir, write_json
from progrestore.io.images import ImageDecodeError, encode_png
from progrestore.layout import IMAGES_MANIFEST
from progrestore.parallel import ordered_map


def _prepare_one(
    item: SourceItem, staging: Path, width: int, height: int, portrait: str, skip_bad: bool
) -> dict:
    try:
        image = item.load()
    except ImageDecodeError as err:
        if not skip_bad:
            raise ImageDecodeError(f"{err} (set data.on_bad_image: skip to leave such files out)") from err
        return {"image_id": item.image_id, "split": item.split, "origin": item.origin, "skipped": str(err)}
    framed, framing = frame_image(image, width, height, portrait)
    png = encode_png(framed)
    (staging / item.split / f"{item.image_id}.png").write_bytes(png)
    return {
        "image_id": item.image_id,
        "split": item.split,
        "origin": item.origin,
        "source_width": image.shape[1],
        "source_height": image.shape[0],
        **asdict(framing),
        "sha256": hashlib.sha256(png).hexdigest(),
    }


def prepare_images(
    items: list[SourceItem],
    out_dir: Path,
    width: int,
    height: int,
    portrait: str,
    skip_bad: bool,
    overwrite: bool = True,
) -> dict:
    """Write the framed images and ``manifest.json`` (kept images and recorded skips); returns the manifest.

    ``out_dir`` must be new, empty, or (with ``overwrite``) an earlier output of this function."""
    with staged_output_dir(out_dir, IMAGES_MANIFEST, overwrite) as staging:
        return _prepare_into(staging, items, width, height, portrait, skip_bad)


def _prepare_into(
    staging: Path, items: list[SourceItem], width: int, height: int, portrait: str, skip_bad: bool
) -> dict:
    for split in SPLITS:
        (staging / split).mkdir()
    work = functools.partial(
        _prepare_one, staging=staging, width=width, height=height, portrait=portrait, skip_bad=skip_bad
    )
    records = ordered_map(work, items, desc="prepare")
    kept = [r for r in records if "skipped" not in r]
    for record in kept:
        if record["scale"] > STRONG_ENLARGEMENT:
            print(
                f"warning: {record['origin']} ({record['source_width']}x{record['source_height']}) is enlarged "
                f"{record['scale']:.1f}x to {width}x{height}: most of its detail will be interpolated",
                file=sys.stderr,
            )
    for split in SPLITS:
        if not any(r["split"] == split for r in kept):
            raise InputError(f"no readable {split} image is left after skipping bad files")
    manifest = {
        "width": width,
        "height": height,
        "portrait": portrait,
        "images": kept,
        "skipped": [r for r in records if "skipped" in r],
    }
    write_json(staging / IMAGES_MANIFEST, manifest)
    return manifest


def run_prepare(params: Section, out: Path, overwrite: bool = False) -> None:
    """Stage ``prepare``: reads ``clip.width``, ``clip.height``, ``data`` and ``tasks``. ``out`` must be new,
    empty or (with ``overwrite``, as the stage runs) an earlier output of prepare.

    ``tasks`` is checked here because DVC runs this stage first: a mistyped task then stops ``dvc repro``
    with its name, before DVC looks for the ``degrade@<task>`` module that does not exist."""
    for task in params.names("tasks"):
        if task not in tasks.names():
            raise params.fail("tasks", f"a list of known tasks ({', '.join(tasks.names())})")
    width, height = clip_size(params)
    data = params.section("data")
    portrait = data.choice("portrait", PORTRAIT_RULES)
    skip_bad = data.choice("on_bad_image", ("error", "skip")) == "skip"
    check_output_dir(out, IMAGES_MANIFEST, overwrite)  # before the sources are listed or fetched
    manifest = prepare_images(list_sources(data), out, width, height, portrait, skip_bad, overwrite)
    print(f"prepared {len(manifest['images'])} images, skipped {len(manifest['skipped'])} -> {out}")
