"""Per-frame evaluation speed: the evaluate stage's scorer against the straightforward path.

Straightforward = every frame of every method's trajectory scored on its own: ``skimage``'s SSIM
(gaussian_weights, sigma 1.5, population covariance) and ``lpips.LPIPS`` called pairwise (both images
through AlexNet), plus PSNR. The stage's :class:`FrameScorer`: the clean image's SSIM statistics and LPIPS
features computed once per clip, separable SSIM filters, frames batched through AlexNet, repeated frames
(identity, classical) scored once. Both score the same 1360x768 trajectories (oracle, identity, classical)
of the val clips that ``dvc repro`` wrote; the numbers must agree (LPIPS 1e-6, SSIM within
``SKIMAGE_SSIM_TOLERANCE``, PSNR exactly).

    python benchmarks/evaluation.py [--clips 2] [--tasks TASK ...] [--methods oracle ...]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import lpips
import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from progrestore.config import load_params
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.lpips_weights import load_trunk
from progrestore.evaluate.methods import ClipContext, method_trajectory
from progrestore.evaluate.metrics.ssim import SKIMAGE_SSIM_ARGS, SKIMAGE_SSIM_TOLERANCE
from progrestore.io.images import read_image
from progrestore.io.video import read_video
from progrestore.layout import pipeline_path

METHODS = ("oracle", "identity", "classical")


def straightforward(model: lpips.LPIPS, frames: np.ndarray, clean: np.ndarray) -> dict[str, list[float]]:
    scores = {"psnr": [], "ssim": [], "lpips": []}
    for frame in frames:
        scores["psnr"].append(float(peak_signal_noise_ratio(clean, frame, data_range=255)))
        scores["ssim"].append(float(structural_similarity(frame, clean, **SKIMAGE_SSIM_ARGS)))
        with torch.inference_mode():
            scores["lpips"].append(model(lpips.im2tensor(frame), lpips.im2tensor(clean)).item())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2, help="val clips per task")
    parser.add_argument("--tasks", nargs="+", default=None, help="default: params.yaml's tasks")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    model.net.load_state_dict(load_trunk())
    model.eval()
    scorer = FrameScorer()

    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(
        "| task | frames scored | straightforward (frames/s) | stage (frames/s) | speed-up | max LPIPS diff | max SSIM diff |"
    )
    print("|---|---|---|---|---|---|---|")
    totals = [0, 0.0, 0.0]
    for task in args.tasks or load_params().names("tasks"):
        folder = pipeline_path("datasets") / task / "val"
        entries = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()][
            : args.clips
        ]
        slow = fast = 0.0
        lpips_diff = ssim_diff = 0.0
        count = 0
        for entry in entries:
            clip = read_video(folder / entry["video"])
            clean = read_image(folder / entry["clean"])
            ctx = ClipContext(task, clip[0], len(clip), clip, entry["params"])
            trajectories = {m: method_trajectory(m, ctx) for m in args.methods}
            start = time.perf_counter()
            reference = scorer.reference(clean)
            ours = {m: scorer.score(frames, reference) for m, frames in trajectories.items()}
            fast += time.perf_counter() - start
            start = time.perf_counter()
            theirs = {m: straightforward(model, frames, clean) for m, frames in trajectories.items()}
            slow += time.perf_counter() - start
            for m in args.methods:
                count += len(trajectories[m])
                if ours[m]["psnr"] != theirs[m]["psnr"]:
                    raise SystemExit(f"{task}/{m}: PSNR differs: {ours[m]['psnr']} vs {theirs[m]['psnr']}")
                lpips_diff = max(
                    lpips_diff, float(np.max(np.abs(np.subtract(ours[m]["lpips"], theirs[m]["lpips"]))))
                )
                ssim_diff = max(
                    ssim_diff, float(np.max(np.abs(np.subtract(ours[m]["ssim"], theirs[m]["ssim"]))))
                )
        if lpips_diff > 1e-6 or ssim_diff > SKIMAGE_SSIM_TOLERANCE:
            raise SystemExit(f"{task}: scores disagree (LPIPS {lpips_diff:.2e}, SSIM {ssim_diff:.2e})")
        totals = [totals[0] + count, totals[1] + slow, totals[2] + fast]
        print(
            f"| {task} | {count} | {count / slow:.2f} | {count / fast:.2f} | {slow / fast:.1f}x | {lpips_diff:.1e} | {ssim_diff:.1e} |"
        )
    count, slow, fast = totals
    print(f"| all | {count} | {count / slow:.2f} | {count / fast:.2f} | {slow / fast:.1f}x | | |")


if __name__ == "__main__":
    main()
