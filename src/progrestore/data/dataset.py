"""The degrade stage's computation (:mod:`progrestore.stages.degrade`): one task's progression clips as
I2V-finetune dataset folders.

For each split, ``<out>/<split>/`` receives::

    videos/<image>_v<k>.mp4   lossless clips (libx264rgb, crf 0), frame 1 degraded, frame T clean
    videos.txt                their paths relative to the folder, one per line
    images/<image>_v<k>.png   the degraded first frames (the I2V conditioning images)
    images.txt                their paths, aligned line by line with videos.txt
    manifest.jsonl            one JSON object per clip: every sampled parameter and the per-frame schedule
    clean/<image>.png         (val) the clean targets the evaluation compares against

``prompt.txt`` is written beside them by the prompts stage. Everything is built in a staging folder and
moved into place at the end, so an interrupted run leaves no partial output.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from progrestore import tasks
from progrestore.config import SPLITS, ClipSettings, Section
from progrestore.data.contact_sheet import contact_sheet
from progrestore.data.synthesis import frame_schedule, render_clip, sample_params
from progrestore.errors import InputError
from progrestore.io.atomic import STAGING, fresh_staging_dir, replace_tree, write_jsonl, write_text
from progrestore.io.images import read_image, write_png
from progrestore.io.video import read_video, write_video
from progrestore.layout import CLIP_MANIFEST, IMAGES_MANIFEST
from progrestore.parallel import ordered_map

SPLIT_OUTPUTS = ("videos", "images", "videos.txt", "images.txt", CLIP_MANIFEST)
SHEET_CLIPS = 3


def task_settings(params: Section, task: str) -> object:
    """Validate ``task`` against the registry, then parse its ``degrade.<task>`` block."""
    return tasks.get(task).settings(params.section("degrade").section(task))


@dataclass(frozen=True)
class ClipJob:
    entry: dict
    source: Path
    folder: Path  # the split's staging folder


def clip_entry(task: str, settings: object, clip: ClipSettings, seed: int, image: dict, variant: int) -> dict:
    """The manifest entry of one clip: everything needed to regenerate it from its clean image."""
    clip_id = f"{image['image_id']}_v{variant}"
    params = sample_params(task, settings, seed, image["image_id"], variant)
    return {
        "clip_id": clip_id,
        "image_id": image["image_id"],
        "split": image["split"],
        "task": task,
        "variant": variant,
        "seed": seed,
        "frames": clip.frames,
        "fps": clip.fps,
        "width": clip.width,
        "height": clip.height,
        "params": params,
        "schedule": frame_schedule(task, params, clip.frames),
        "video": f"videos/{clip_id}.mp4",
        "image": f"images/{clip_id}.png",
        "clean": f"clean/{image['image_id']}.png" if image["split"] == "val" else None,
        "source_sha256": image["sha256"],
    }


def _make_clip(job: ClipJob) -> None:
    entry = job.entry
    image = read_image(job.source)
    if image.shape[:2] != (entry["height"], entry["width"]):
        raise InputError(
            f"{job.source} is {image.shape[1]}x{image.shape[0]}, but clip.width x clip.height is "
            f"{entry['width']}x{entry['height']}: rerun the prepare stage"
        )
    frames = render_clip(entry["task"], image, entry["params"], entry["frames"])
    write_video(job.folder / entry["video"], frames, entry["fps"])
    write_png(job.folder / entry["image"], frames[0])


def build_task_dataset(
    task: str, settings: object, clip: ClipSettings, seed: int, images_dir: Path, out_dir: Path, sheet: Path
) -> list[dict]:
    """Synthesise every clip of ``task`` from the prepared images; returns the manifest entries."""
    images_dir, out_dir = Path(images_dir), Path(out_dir)
    manifest_path = images_dir / IMAGES_MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path} not found: run the prepare stage first (dvc repro prepare)")
    images = json.loads(manifest_path.read_text())["images"]
    created = not out_dir.exists()
    staging = fresh_staging_dir(out_dir / STAGING)
    try:  # the staging folder goes whatever happens (a kill's leftover goes at the next run)
        jobs = []
        for split in SPLITS:
            for sub in ("videos", "images", "clean"):
                (staging / split / sub).mkdir(parents=True)
            for image in (i for i in images if i["split"] == split):
                for variant in range(clip.clips_per_image):
                    entry = clip_entry(task, settings, clip, seed, image, variant)
                    jobs.append(
                        ClipJob(entry, images_dir / split / f"{image['image_id']}.png", staging / split)
                    )
        ordered_map(_make_clip, jobs, desc=f"degrade {task}")
        entries = [job.entry for job in jobs]

        for split in SPLITS:
            folder = staging / split
            rows = [e for e in entries if e["split"] == split]
            write_text(folder / "videos.txt", "".join(e["video"] + "\n" for e in rows))
            write_text(folder / "images.txt", "".join(e["image"] + "\n" for e in rows))
            write_jsonl(folder / CLIP_MANIFEST, rows)
            if split == "val":
                for image_id in {e["image_id"] for e in rows}:
                    shutil.copyfile(
                        images_dir / split / f"{image_id}.png", folder / "clean" / f"{image_id}.png"
                    )

        shown = [e for e in entries if e["split"] == "val"][:SHEET_CLIPS] or entries[:SHEET_CLIPS]
        sheet_rows = [
            (f"{task} {e['clip_id']}", read_video(staging / e["split"] / e["video"])) for e in shown
        ]
        write_png(staging / "contact_sheet.png", contact_sheet(sheet_rows))

        for split in SPLITS:
            outputs = SPLIT_OUTPUTS + (("clean",) if split == "val" else ())
            for name in outputs:
                replace_tree(staging / split / name, out_dir / split / name)
        replace_tree(staging / "contact_sheet.png", Path(sheet))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if (
            created and out_dir.is_dir() and not any(out_dir.iterdir())
        ):  # and so does the folder, if this run made it
            out_dir.rmdir()
    return entries


def run_degrade(params: Section, task: str, images: Path, out: Path, sheet: Path) -> None:
    """Reads ``seed``, ``clip`` and ``degrade.<task>``."""
    settings = task_settings(params, task)
    clip = ClipSettings.from_params(params)
    seed = params.integer("seed", 0)
    entries = build_task_dataset(task, settings, clip, seed, images, out, sheet)
    print(f"{task}: {len(entries)} clips -> {out}")
