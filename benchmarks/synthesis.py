"""Clip synthesis speed: the degrade stage against a straightforward implementation of the same protocol.

Straightforward = one process; every frame computed from scratch from the clean image (no work shared
between a clip's frames); frames saved as PNGs, then encoded with ffmpeg from the PNG sequence (same
codec settings). The stage = ``build_task_dataset``: per-clip work shared between frames, frames
piped raw into the encoder, one clip per process on every core.

Both read the same clip parameters (the stage's manifest) and every decoded frame must be identical.
Images and degradation settings come from params.yaml (the embedded default: scikit-image's photographs).

    python benchmarks/synthesis.py [--width 1360 --height 768] [--tasks TASK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import ffmpeg
import numpy as np

from progrestore import tasks
from progrestore.config import ClipSettings, load_params
from progrestore.data.dataset import build_task_dataset, task_settings
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import list_sources
from progrestore.io.images import read_image, write_png
from progrestore.io.video import ffmpeg_executable, read_video
from progrestore.parallel import worker_count


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def straightforward_clip(task: str, image: np.ndarray, entry: dict, out: Path, scratch: Path) -> None:
    definition = tasks.get(task)
    for t in range(entry["frames"]):  # every frame from scratch: the per-clip work is redone each time
        state = definition.prepare(image, entry["params"])
        write_png(
            scratch / f"{t:02d}.png", definition.render(state, entry["params"], t / (entry["frames"] - 1))
        )
    (
        ffmpeg.input(str(scratch / "%02d.png"), framerate=entry["fps"])
        .output(str(out), vcodec="libx264rgb", pix_fmt="rgb24", crf=0, preset="ultrafast", threads=1)
        .overwrite_output()
        .run(cmd=ffmpeg_executable(), quiet=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1360)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--tasks", nargs="+", default=list(tasks.names()))
    args = parser.parse_args()
    clip = ClipSettings(args.width, args.height, frames=9, fps=5, clips_per_image=2)
    work = Path(tempfile.mkdtemp(prefix="progrestore-bench-"))
    params = load_params()
    items = list_sources(params.section("data"))
    prepare_images(items, work / "images", clip.width, clip.height, "band", skip_bad=False)

    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, {worker_count()} workers, python {platform.python_version()}"
    )
    print(
        f"{len(items)} images x {clip.clips_per_image} clips, {clip.frames} frames at {clip.width}x{clip.height}\n"
    )
    print("| task | clips | straightforward (clips/s) | stage (clips/s) | speed-up | frames identical |")
    print("|---|---|---|---|---|---|")
    totals = [0, 0.0, 0.0]
    for task in args.tasks:
        settings = task_settings(params, task)
        start = time.perf_counter()
        entries = build_task_dataset(
            task, settings, clip, 2025, work / "images", work / task, work / f"{task}.png"
        )
        fast = time.perf_counter() - start

        start = time.perf_counter()
        for entry in entries:
            image = read_image(work / "images" / entry["split"] / f"{entry['image_id']}.png")
            with tempfile.TemporaryDirectory() as scratch:
                straightforward_clip(
                    task, image, entry, work / f"{entry['clip_id']}.{task}.mp4", Path(scratch)
                )
        slow = time.perf_counter() - start

        identical = all(
            np.array_equal(
                read_video(work / task / entry["split"] / entry["video"]),
                read_video(work / f"{entry['clip_id']}.{task}.mp4"),
            )
            for entry in entries
        )
        n = len(entries)
        totals = [totals[0] + n, totals[1] + slow, totals[2] + fast]
        print(
            f"| {task} | {n} | {n / slow:.2f} | {n / fast:.2f} | {slow / fast:.1f}x | {'yes' if identical else 'NO'} |"
        )
        if not identical:
            raise SystemExit(f"{task}: the two implementations disagree")
    n, slow, fast = totals
    print(f"| all | {n} | {n / slow:.2f} | {n / fast:.2f} | {slow / fast:.1f}x | yes |")
    print(json.dumps({"clips": n, "straightforward_s": round(slow, 2), "stage_s": round(fast, 2)}))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
