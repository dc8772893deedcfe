"""Where the clean images come from: scikit-image's bundled photographs, DIV2K, or a user's folder.

A source is turned into a list of :class:`SourceItem` (picklable, so worker processes can load them)
before any image is decoded, which is when names, splits and paths are checked.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from progrestore.config import SPLITS, Section
from progrestore.data import div2k
from progrestore.errors import ParamsError
from progrestore.io.images import ImageDecodeError, decode_image, read_image, to_rgb8

SOURCES = ("sample", "div2k", "folder")
_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SourceItem:
    image_id: str
    split: str
    origin: str  # "skimage:<name>", a file path, or "<zip>::<member>"

    def load(self) -> np.ndarray:
        """Decode to HxWx3 uint8 RGB, raising :class:`ImageDecodeError` naming the item."""
        if self.origin.startswith("skimage:"):
            return _load_sample(self.origin.removeprefix("skimage:"))
        if "::" in self.origin:
            archive, member = self.origin.split("::", 1)
            try:
                with zipfile.ZipFile(archive) as handle:
                    data = handle.read(member)
            except (zipfile.BadZipFile, KeyError, OSError) as err:
                raise ImageDecodeError(f"{self.origin}: cannot be read from the archive ({err})") from err
            return decode_image(data, self.origin)
        return read_image(Path(self.origin))


def _load_sample(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs: the left view
        image = image[0]
    return to_rgb8(np.asarray(image), f"skimage.data.{name}")


def list_sources(data: Section) -> list[SourceItem]:
    """All images of the configured source, sorted by split then id; raises ParamsError on bad settings."""
    kind = data.choice("source", SOURCES)
    items = {"sample": _sample_items, "div2k": _div2k_items, "folder": _folder_items}[kind](
        data.section(kind)
    )
    for split in SPLITS:
        if not any(item.split == split for item in items):
            raise ParamsError(f"data.source={kind}: no {split} images were found")
    return sorted(items, key=lambda item: (SPLITS.index(item.split), item.image_id))


def _sample_items(section: Section) -> list[SourceItem]:
    import skimage.data

    items = []
    for split in SPLITS:
        for name in section.names(split):
            if not callable(getattr(skimage.data, name, None)) or name.startswith("_"):
                raise section.fail(
                    split, f"names of scikit-image sample images (skimage.data); {name!r} is not one"
                )
            items.append(SourceItem(name, split, f"skimage:{name}"))
    overlap = set(section.names("train")) & set(section.names("val"))
    if overlap:
        raise section.fail("val", f"disjoint from data.sample.train (both list {sorted(overlap)})")
    return items


def _div2k_items(section: Section) -> list[SourceItem]:
    root = section.optional_path("root") or Path("data/raw/div2k")
    allow_download = section.boolean("download")
    limits = {split: section.optional_integer(f"limit_{split}") for split in SPLITS}
    items = []
    for split in SPLITS:
        archive = div2k.ARCHIVES[split]
        location = div2k.locate(root, split, allow_download)
        for member in archive.members(limits[split]):
            image_id = Path(member).stem
            origin = str(location / Path(member).name) if location.is_dir() else f"{location}::{member}"
            items.append(SourceItem(image_id, split, origin))
    return items


def _folder_items(section: Section) -> list[SourceItem]:
    """Sorted files of ``data.folder.path``; the last ``val_fraction`` of them (at least one) are val.

    A folder that holds ``train/`` and ``val/`` subfolders is split by them instead.
    """
    root = section.optional_path("path")
    if root is None or not root.is_dir():
        raise section.fail("path", "an existing folder of images")
    if (root / "train").is_dir() and (root / "val").is_dir():
        return [item for split in SPLITS for item in _files_as_items(_visible_files(root / split), split)]
    fraction = section.number("val_fraction", 0.0, 1.0)
    files = _visible_files(root)
    if len(files) < 2:
        raise section.fail("path", "a folder with at least two images (one for train, one for val)")
    n_val = min(len(files) - 1, max(1, round(len(files) * fraction)))
    return _files_as_items(files[: len(files) - n_val], "train") + _files_as_items(files[-n_val:], "val")


def _visible_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _files_as_items(files: list[Path], split: str) -> list[SourceItem]:
    seen: dict[str, Path] = {}
    items = []
    for path in files:
        image_id = _SAFE_ID.sub("_", path.stem)
        if image_id in seen:
            raise ParamsError(f"{path} and {seen[image_id]} would both be called '{image_id}'; rename one")
        seen[image_id] = path
        items.append(SourceItem(image_id, split, str(path)))
    return items
