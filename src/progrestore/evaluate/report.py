"""Stage ``evaluate``: score every method's trajectory per frame and write metrics, plot data and sheets.

``metrics/<task>.json`` (the DVC metric) holds numbers only: the clip count and each method's
final-frame means. ``metrics/<task>/about.json`` says what they are (data, model, scored region, method
descriptions, protocol, LPIPS weights), ``metrics/<task>/clips.json`` has every clip's final-frame values
and ``metrics/per_frame/<metric>/<task>.json`` one row per frame and one column per method (DVC overlays
the columns). A PSNR of inf (a frame equal to the clean image) is written as null in all of them.
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
from progrestore.evaluate.protocol import ABOUT, METRICS, PROTOCOL
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

    def restricted(self, methods: list[str]) -> Evaluation:
        """The scores of ``methods`` only, in that order."""
        return Evaluation(methods, {m: self.values[m] for m in methods}, list(self.clip_ids))

    def merged(self, other: Evaluation, methods: list[str]) -> Evaluation:
        """This evaluation's and ``other``'s scores (the same clips), the methods in the order given."""
        if other.clip_ids != self.clip_ids:
            raise InputError(
                "the baseline scores and the model's are of different clips: run both stages again"
            )
        values = self.values | other.values
        return Evaluation(methods, {m: values[m] for m in methods}, list(self.clip_ids))

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


def scored_trajectories(ctx: ClipContext, methods: list[str], window: Window | None) -> dict[str, np.ndarray]:
    """Every method's trajectory of one clip, cropped to ``window`` (if any): what is scored and shown.
    The methods see the whole frame; only the scoring is restricted to the window."""
    trajectories = {method: method_trajectory(method, ctx) for method in methods}
    return trajectories if window is None else {m: window.crop(f) for m, f in trajectories.items()}


def _clip_context(task: str, split_dir: Path, entry: dict, methods: list[str], restored_dir: Path | None):
    clip = read_video(Path(split_dir) / entry["video"])
    restored = None
    if "model" in methods:
        path = Path(restored_dir or "") / f"{entry['clip_id']}.mp4"
        if not path.is_file():
            raise InputError(f"{path} not found: run the restore stage first (dvc repro restore@{task})")
        restored = read_video(path)
    return ClipContext(task, clip[0], len(clip), clip, entry["params"], restored)


def evaluate_dataset(
    task: str,
    split_dir: Path,
    methods: list[str],
    scorer: FrameScorer,
    restored_dir: Path | None = None,
    window: Window | None = None,
) -> Evaluation:
    """Score ``methods`` on every clip listed in ``<split_dir>/manifest.jsonl`` (inside ``window`` if given)."""
    evaluation = Evaluation(methods)
    for entry in tqdm(read_clip_manifest(split_dir), desc=f"evaluate {task}", unit="clip"):
        ctx = _clip_context(task, split_dir, entry, methods, restored_dir)
        clean = read_image(Path(split_dir) / entry["clean"])
        if window is not None:
            clean = window.crop(clean)
        reference = scorer.reference(clean)
        trajectories = scored_trajectories(ctx, methods, window)
        evaluation.add(entry["clip_id"], {m: scorer.score(f, reference) for m, f in trajectories.items()})
    return evaluation


def sheet_rows(
    task: str,
    split_dir: Path,
    methods: list[str],
    restored_dir: Path | None = None,
    display: dict[str, str] | None = None,
    window: Window | None = None,
) -> list:
    """Every method's trajectory (inside ``window``) of the first clips, labelled, for the contact sheet."""
    rows, names = [], display or {}
    where = "" if window is None else f", window {window.width}x{window.height}+{window.x}+{window.y}"
    for entry in read_clip_manifest(split_dir)[:SHEET_CLIPS]:
        ctx = _clip_context(task, split_dir, entry, methods, restored_dir)
        for method, frames in scored_trajectories(ctx, methods, window).items():
            rows.append((f"{names.get(method, method)} {entry['clip_id']}{where}", frames))
    return rows


def plot_rows(curves: dict[str, dict[str, list[float]]], metric: str) -> list[dict]:
    frames = len(next(iter(curves.values()))[metric])
    return [
        {
            "frame": t + 1,
            **{m: (v[metric][t] if math.isfinite(v[metric][t]) else None) for m, v in curves.items()},
        }
        for t in range(frames)
    ]


def finite_or_null(value: float) -> float | None:
    """A metric value for JSON files that DVC reads: an infinite PSNR (a frame equal to the clean image)
    is null, since DVC's views and diffs cannot show it."""
    return value if math.isfinite(value) else None


def write_report(
    task: str,
    summary: dict,
    methods: dict[str, str],
    labels: dict,
    metrics_path: Path,
    curve_paths: dict[str, Path],
) -> None:
    """The evaluation of ``task`` as files:

    - ``metrics_path`` (the DVC metric): numbers only, short, so that ``dvc exp show`` and ``dvc metrics
      diff`` stay readable: the clip count and each method's final-frame means;
    - ``<metrics_path without suffix>/about.json``: what the numbers are (``methods`` describes each
      method; ``labels``: data, model, scored region), the protocol and the LPIPS weights' identity;
    - ``<metrics_path without suffix>/clips.json``: every clip's final-frame values;
    - ``curve_paths[<metric>]``: one row per frame, one column per method (DVC's plots).
    """
    metrics_path = Path(metrics_path)
    finals = {m: {k: finite_or_null(v) for k, v in per.items()} for m, per in summary["final"].items()}
    write_json(metrics_path, {"clips": summary["clips"], "final": finals})
    details = metrics_path.with_suffix("")
    about = {
        "task": task,
        **labels,
        "methods": methods,
        "protocol": PROTOCOL,
        "lpips_weights_sha256": Lpips.weights_id,
        "null": "a PSNR of null is infinite: the frame equals the clean image",
    }
    write_json(details / ABOUT, about)
    per_clip = {
        clip: {m: {k: finite_or_null(v) for k, v in per.items()} for m, per in methods_.items()}
        for clip, methods_ in summary["per_clip"].items()
    }
    write_json(details / "clips.json", per_clip)
    for metric in METRICS:
        write_json(Path(curve_paths[metric]), plot_rows(summary["per_frame"], metric))


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
    figure, axes = plt.subplots(
        1, len(METRICS), figsize=(4.2 * len(METRICS), 3.7), dpi=100, layout="constrained"
    )
    for axis, metric in zip(axes, METRICS, strict=True):
        for method, curves in per_frame.items():
            values = [v if math.isfinite(v) else float("nan") for v in curves[metric]]
            name = (display or {}).get(method, method)
            axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        axis.set_xlabel("frame")
        axis.set_title(names[metric], fontsize=10)
        axis.grid(alpha=0.3)
    handles, names_ = axes[0].get_legend_handles_labels()
    figure.suptitle(f"{task}: {label}", fontsize=9)
    # below the panels, not over a curve: one column per method
    figure.legend(handles, names_, loc="outside lower center", ncols=len(names_), fontsize=8, frameon=False)
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(figure)
