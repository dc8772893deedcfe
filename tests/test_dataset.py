"""Dataset folders of the degrade stage: layout, manifests, regeneration, determinism, interruption."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from progrestore.cli import main
from progrestore.data import dataset
from progrestore.data.dataset import build_task_dataset
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import SourceItem
from progrestore.data.synthesis import regenerate
from progrestore.errors import InputError
from progrestore.io.images import read_image
from progrestore.io.video import read_video

from .conftest import TASKS, TINY_CLIP

ITEMS = [
    SourceItem("astronaut", "train", "skimage:astronaut"),
    SourceItem("coffee", "train", "skimage:coffee"),
    SourceItem("chelsea", "val", "skimage:chelsea"),
]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "images"
    prepare_images(ITEMS, out, TINY_CLIP.width, TINY_CLIP.height, "band", skip_bad=False)
    return out


def _build(task: str, settings, images: Path, root: Path) -> list[dict]:
    return build_task_dataset(task, settings[task], TINY_CLIP, 5, images, root / task, root / f"{task}.png")


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("task", TASKS)
def test_layout_manifest_and_frames(task, settings, images, tmp_path):
    entries = _build(task, settings, images, tmp_path)
    assert len(entries) == len(ITEMS) * TINY_CLIP.clips_per_image
    for split, n_images in (("train", 2), ("val", 1)):
        folder = tmp_path / task / split
        videos = (folder / "videos.txt").read_text().splitlines()
        stills = (folder / "images.txt").read_text().splitlines()
        rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
        assert len(videos) == len(stills) == len(rows) == 2 * n_images
        assert sorted(p.name for p in (folder / "videos").iterdir()) == sorted(Path(v).name for v in videos)
        for video, still, row in zip(videos, stills, rows, strict=True):
            assert (video, still) == (row["video"], row["image"])
            frames = read_video(folder / video)
            assert frames.shape == (9, TINY_CLIP.height, TINY_CLIP.width, 3)
            assert np.array_equal(read_image(folder / still), frames[0])
            clean = read_image(images / split / f"{row['image_id']}.png")
            assert np.array_equal(frames[-1], clean)
            assert row["params"] and len(row["schedule"]) == 9
            if split == "val":
                assert np.array_equal(read_image(folder / row["clean"]), clean)
    assert not (tmp_path / task / "train" / "clean").exists()
    assert (tmp_path / f"{task}.png").stat().st_size > 0
    assert not (tmp_path / task / ".staging").exists()


@pytest.mark.parametrize("task", TASKS)
def test_manifest_entry_alone_regenerates_the_clip(task, settings, images, tmp_path):
    _build(task, settings, images, tmp_path)
    manifest = tmp_path / task / "train" / "manifest.jsonl"
    entry = json.loads(manifest.read_text().splitlines()[3])
    clean = read_image(images / "train" / f"{entry['image_id']}.png")
    stored = read_video(tmp_path / task / "train" / entry["video"])
    assert np.array_equal(regenerate(entry, clean), stored)
    out = tmp_path / "again.mp4"
    assert (
        main(["regenerate", str(manifest), entry["clip_id"], "--images", str(images), "--out", str(out)]) == 0
    )
    assert np.array_equal(read_video(out), stored)


def test_same_parameters_give_byte_identical_folders(settings, images, tmp_path):
    _build("lowlight", settings, images, tmp_path / "a")
    _build("lowlight", settings, images, tmp_path / "b")
    first, second = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert first.keys() == second.keys() and first == second


def test_killed_run_leaves_nothing_half_written_and_a_rerun_matches(settings, images, tmp_path, monkeypatch):
    _build("sr", settings, images, tmp_path / "clean_run")
    calls = {"n": 0}
    real = dataset.write_video

    def dies_on_third_clip(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        real(*args, **kwargs)

    monkeypatch.setattr(dataset, "write_video", dies_on_third_clip)
    monkeypatch.setenv("PROGRESTORE_WORKERS", "1")
    with pytest.raises(KeyboardInterrupt):
        _build("sr", settings, images, tmp_path / "killed")
    # an interrupt (Ctrl-C, SIGTERM) leaves nothing, not even the staging folder
    assert (
        list((tmp_path / "killed" / "sr").rglob("*")) == [] and not (tmp_path / "killed" / "sr.png").exists()
    )
    monkeypatch.setattr(dataset, "write_video", real)
    _build("sr", settings, images, tmp_path / "killed")
    assert _tree_bytes(tmp_path / "killed") == _tree_bytes(tmp_path / "clean_run")


def test_missing_prepared_images_are_reported(settings, tmp_path):
    with pytest.raises(InputError, match="run the prepare stage first"):
        _build("sr", settings, tmp_path / "nothing", tmp_path)
