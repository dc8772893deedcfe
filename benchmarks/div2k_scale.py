"""Synthesis at DIV2K size: prepare + degrade on images of 2040x1356, then DVC's bookkeeping.

    python benchmarks/div2k_scale.py [--images 50] [--tasks TASK ...]

The images are made here: scikit-image's photographs resized to 2040x1356 (DIV2K's commonest size), each
shifted, flipped and given fine grain so that no two are alike and the lossless clips carry real detail.
They go through the code ``dvc repro`` runs (``prepare_images``, ``build_task_dataset``: one clip per
worker process) with params.yaml's clip settings (1360x768, 9 frames, 2 clips per image, 10% val). Then
the outputs are put under DVC (``dvc commit``: hashing, and linking into the cache) and ``dvc status`` is
timed. Reported: clips/s per task, the workers' peak RSS, disk per clip, the DVC times, and a projection
to DIV2K's 900 images (800 train + 100 val: 1800 clips per task).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import yaml

from progrestore.config import ClipSettings, Section, load_params
from progrestore.data.dataset import build_task_dataset, task_settings
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import list_sources
from progrestore.parallel import worker_count

REPO = Path(__file__).resolve().parents[1]
DIV2K_SIZE = (2040, 1356)
DIV2K_IMAGES = 900
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


def make_images(folder: Path, count: int) -> None:
    """``count`` distinct 2040x1356 PNGs from the bundled photographs."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        photo = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()[..., :3]
        big = cv2.resize(photo, DIV2K_SIZE, interpolation=cv2.INTER_CUBIC)
        big = np.roll(big, (int(rng.integers(0, 300)), int(rng.integers(0, 300))), axis=(0, 1))
        big = big[:, ::-1] if i % 2 else big
        grain = rng.normal(0.0, 3.0, big.shape)
        image = np.clip(big + grain, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image[..., ::-1])


def cpu_name() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()


def peak_worker_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def dvc(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--tasks", nargs="+", default=None, help="default: params.yaml's tasks")
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    chosen = args.tasks or list(params.names("tasks"))
    clip = ClipSettings.from_params(params)
    work = Path(tempfile.mkdtemp(prefix="progrestore-div2k-"))
    try:
        make_images(work / "sources", args.images)
        data = Section(
            {
                "source": "folder",
                "folder": {"path": str(work / "sources"), "val_fraction": 0.1},
                "on_bad_image": "error",
                "portrait": "band",
            },
            "data",
        )
        start = time.perf_counter()
        prepare_images(
            list_sources(data), work / "data/images", clip.width, clip.height, "band", skip_bad=False
        )
        prepare_s = time.perf_counter() - start
        rows = {}
        for task in chosen:
            start = time.perf_counter()
            entries = build_task_dataset(
                task,
                task_settings(params, task),
                clip,
                2025,
                work / "data/images",
                work / "data/datasets" / task,
                work / "reports/degrade" / f"{task}.png",
            )
            seconds = time.perf_counter() - start
            videos = [work / "data/datasets" / task / e["split"] / e["video"] for e in entries]
            rows[task] = {
                "clips": len(entries),
                "seconds": round(seconds, 1),
                "clips_per_s": round(len(entries) / seconds, 3),
                "mb_per_clip": round(sum(v.stat().st_size for v in videos) / len(videos) / 2**20, 2),
            }
        worker_rss = peak_worker_rss_mb()

        # DVC's bookkeeping on the same outputs: the pipeline's own definition, outputs committed as they are
        for name in ("dvc.yaml", "params.yaml"):
            shutil.copy(REPO / name, work / name)
        values = yaml.safe_load((work / "params.yaml").read_text())
        values["tasks"] = chosen
        values["data"] = {
            **values["data"],
            "source": "folder",
            "folder": {"path": str(work / "sources"), "val_fraction": 0.1},
        }
        (work / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
        shutil.copytree(REPO / "stages", work / "stages")
        shutil.copytree(
            REPO / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        dvc("init", "-q", cwd=work)
        shutil.copy(REPO / ".dvc/config", work / ".dvc/config")
        targets = ["prepare", *(f"degrade@{task}" for task in chosen)]
        commit_s = dvc("commit", "-f", *targets, cwd=work)
        status_s = dvc("status", *targets, cwd=work)
        disk_gb = sum(f.stat().st_size for f in (work / "data").rglob("*") if f.is_file()) / 2**30
        files = [f for folder in ("data", ".dvc/cache") for f in (work / folder).rglob("*") if f.is_file()]
        inodes = {
            (f.stat().st_dev, f.stat().st_ino): f.stat().st_size for f in files
        }  # a hard link counts once
        with_cache_gb = sum(inodes.values()) / 2**30

        total_clips = sum(r["clips"] for r in rows.values())
        synth_s = prepare_s + sum(r["seconds"] for r in rows.values())
        scale = DIV2K_IMAGES / args.images
        report = {
            "machine": f"{cpu_name()}, {os.cpu_count()} cores, {worker_count()} workers",
            "images": args.images,
            "prepare_s": round(prepare_s, 1),
            "tasks": rows,
            "peak_worker_rss_mb": round(worker_rss),
            "dvc_commit_s": round(commit_s, 1),
            "dvc_status_s": round(status_s, 2),
            "data_gb": round(disk_gb, 2),
            "data_and_cache_gb_on_disk": round(with_cache_gb, 2),
            "projection_full_div2k": {
                "clips": round(total_clips * scale),
                "synthesis_h": round(synth_s * scale / 3600, 2),
                "dvc_commit_h": round(commit_s * scale / 3600, 2),
                "data_gb": round(disk_gb * scale, 1),
            },
        }
        print("| task | clips | s | clips/s | MB per clip |")
        print("|---|---|---|---|---|")
        for task, row in rows.items():
            print(
                f"| {task} | {row['clips']} | {row['seconds']} | {row['clips_per_s']} | {row['mb_per_clip']} |"
            )
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
