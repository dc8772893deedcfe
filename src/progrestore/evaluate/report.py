"""Stage ``evaluate``: score every method's trajectory per frame and write metrics, plot data and sheets.

``metrics/<task>.json`` holds, per method, the per-frame means over the val clips, the final-frame
means, the clip count, the protocol and the LPIPS weights' identity. ``metrics/per_frame/<task>/<metric>.json``
has one row per frame and one column per method (DVC overlays the columns); a PSNR of inf (a frame equal
to the clean image) is written as null there, since plots cannot draw it. ``metrics/<task>/clips.json``
has every clip's final-frame values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from progrestore.data.contact_sheet import contact_sheet
from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError
from progrestore.evaluate.methods import ClipContext, method_trajectory
from progrestore.evaluate.metrics import FrameScorer, Lpips
from progrestore.evaluate.protocol import METRICS, PROTOCOL
from progrestore.io.atomic import atomic_path, write_json
from progrestore.io.images import read_image, write_png
from progrestore.io.video import read_video

SHEET_CLIPS = 1


@dataclass
class Evaluation:
    """Scores of several methods over several clips: values[method][metric] is a clips x frames list."""

    methods: list[str]
    values: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    clip_ids: list[str] = field(default_factory=list)

    def add(self, clip_id: str, scores: dict[str, dict[str, list[float]]]) -> None:
        self.clip_ids.append(clip_id)
        for method, per_metric in scores.items():
            for metric, series in per_metric.items():
                self.values.setdefault(method, {}).setdefault(metric, []).append(series)

    def per_frame(self) -> dict[str, dict[str, list[float]]]:
        return {
            method: {metric: [float(v) for v in np.mean(rows, axis=0)] for metric, rows in per_metric.items()}
            for method, per_metric in self.values.items()
        }

    def summary(self) -> dict:
        curves = self.per_frame()
        return {
            "clips": len(self.clip_ids),
            "final": {m: {k: series[-1] for k, series in per.items()} for m, per in curves.items()},
            "per_frame": curves,
            "per_clip": {
                clip_id: {m: {k: rows[i][-1] for k, rows in per.items()} for m, per in self.values.items()}
                for i, clip_id in enumerate(self.clip_ids)
            },
        }


@dataclass(frozen=True)
class Window:
    """The region of the frames that is scored: (x, y, width, height) in pixels."""

    x: int
    y: int
    width: int
    height: int

    def crop(self, images: np.ndarray) -> np.ndarray:
        """The window of an (H, W, 3) image or a (T, H, W, 3) trajectory, contiguous."""
        return np.ascontiguousarray(
            images[..., self.y : self.y + self.height, self.x : self.x + self.width, :]
        )


def score_methods(
    scorer: FrameScorer, reference, ctx: ClipContext, methods: list[str], window: Window | None = None
) -> tuple[dict, dict]:
    """Scores and trajectories (cropped to ``window``, if any) of every method for one clip.

    The methods see the whole frame; only the scoring is restricted to the window.
    """
    trajectories = {method: method_trajectory(method, ctx) for method in methods}
    if window is not None:
        trajectories = {m: window.crop(frames) for m, frames in trajectories.items()}
    return {m: scorer.score(frames, reference) for m, frames in trajectories.items()}, trajectories


def evaluate_dataset(
    task: str,
    split_dir: Path,
    methods: list[str],
    scorer: FrameScorer,
    restored_dir: Path | None = None,
    display: dict[str, str] | None = None,
    window: Window | None = None,
) -> tuple[Evaluation, list]:
    """Score every clip listed in ``<split_dir>/manifest.jsonl`` (inside ``window`` if given); returns
    the scores and sheet rows."""
    entries = read_clip_manifest(split_dir)
    evaluation, sheet_rows = Evaluation(methods), []
    for entry in tqdm(entries, desc=f"evaluate {task}", unit="clip"):
        clip = read_video(Path(split_dir) / entry["video"])
        clean = read_image(Path(split_dir) / entry["clean"])
        if window is not None:
            clean = window.crop(clean)
        restored = None
        if "model" in methods:
            path = Path(restored_dir or "") / f"{entry['clip_id']}.mp4"
            if not path.is_file():
                raise InputError(f"{path} not found: run the restore stage first (dvc repro restore@{task})")
            restored = read_video(path)
        ctx = ClipContext(task, clip[0], len(clip), clip, entry["params"], restored)
        scores, trajectories = score_methods(scorer, scorer.reference(clean), ctx, methods, window)
        evaluation.add(entry["clip_id"], scores)
        if len(sheet_rows) < SHEET_CLIPS * len(methods):
            names = display or {}
            where = "" if window is None else f", window {window.width}x{window.height}+{window.x}+{window.y}"
            sheet_rows += [(f"{names.get(m, m)} {entry['clip_id']}{where}", trajectories[m]) for m in methods]
    return evaluation, sheet_rows


def plot_rows(curves: dict[str, dict[str, list[float]]], metric: str) -> list[dict]:
    frames = len(next(iter(curves.values()))[metric])
    return [
        {
            "frame": t + 1,
            **{m: (v[metric][t] if math.isfinite(v[metric][t]) else None) for m, v in curves.items()},
        }
        for t in range(frames)
    ]


def write_report(
    task: str, summary: dict, methods: dict[str, str], labels: dict, metrics_path: Path, curves_dir: Path
) -> None:
    """``metrics_path`` (the summary), ``clips.json`` in the folder of its name without the suffix, and
    one plot-data file per metric in ``curves_dir``; ``methods`` says what each scored method is."""
    metrics_path = Path(metrics_path)
    report = {
        "task": task,
        **labels,
        "methods": methods,
        "protocol": PROTOCOL,
        "lpips_weights_sha256": Lpips.weights_id,
        **{key: value for key, value in summary.items() if key != "per_clip"},
    }
    write_json(metrics_path, report)
    for metric in METRICS:
        write_json(Path(curves_dir) / f"{metric}.json", plot_rows(summary["per_frame"], metric))
    write_json(metrics_path.with_suffix("") / "clips.json", summary["per_clip"])


def write_sheet(rows: list, path: Path) -> None:
    write_png(Path(path), contact_sheet(rows))


def write_curves(
    task: str,
    per_frame: dict[str, dict[str, list[float]]],
    label: str,
    path: Path,
    display: dict[str, str] | None = None,
) -> None:
    """PSNR, SSIM and LPIPS per frame, one line per method (the layout of the paper's Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    names = {"psnr": "PSNR (dB)", "ssim": "SSIM", "lpips": "LPIPS (lower is better)"}
    figure, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.4), dpi=100)
    for axis, metric in zip(axes, METRICS, strict=True):
        for method, curves in per_frame.items():
            values = [v if math.isfinite(v) else float("nan") for v in curves[metric]]
            name = (display or {}).get(method, method)
            axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        axis.set_xlabel("frame")
        axis.set_title(names[metric], fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{task}: {label}", fontsize=9)
    figure.tight_layout()
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(figure)
