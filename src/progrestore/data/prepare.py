"""Stage ``prepare``: decode, frame and store every source image as ``<out>/<split>/<id>.png``."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict
from pathlib import Path

from progrestore.config import SPLITS, Section, clip_size
from progrestore.data.framing import PORTRAIT_RULES, frame_image
from progrestore.data.sources import SourceItem, list_sources
from progrestore.errors import InputError
from progrestore.io.atomic import fresh_staging_dir, replace_tree, write_json
from progrestore.io.images import ImageDecodeError, encode_png
from progrestore.layout import IMAGES_DIR, IMAGES_MANIFEST
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
    items: list[SourceItem], out_dir: Path, width: int, height: int, portrait: str, skip_bad: bool
) -> dict:
    """Write the framed images and ``manifest.json`` (kept images and recorded skips); returns the manifest."""
    out_dir = Path(out_dir)
    staging = fresh_staging_dir(out_dir.with_name(f".{out_dir.name}.staging"))
    for split in SPLITS:
        (staging / split).mkdir()
    work = functools.partial(
        _prepare_one, staging=staging, width=width, height=height, portrait=portrait, skip_bad=skip_bad
    )
    records = ordered_map(work, items, desc="prepare")
    kept = [r for r in records if "skipped" not in r]
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
    replace_tree(staging, out_dir)
    return manifest


def run_prepare(params: Section, out: Path = IMAGES_DIR) -> None:
    """Stage ``prepare``: reads ``clip.width``, ``clip.height`` and ``data``."""
    width, height = clip_size(params)
    data = params.section("data")
    portrait = data.choice("portrait", PORTRAIT_RULES)
    skip_bad = data.choice("on_bad_image", ("error", "skip")) == "skip"
    manifest = prepare_images(list_sources(data), out, width, height, portrait, skip_bad)
    print(f"prepared {len(manifest['images'])} images, skipped {len(manifest['skipped'])} -> {out}")
