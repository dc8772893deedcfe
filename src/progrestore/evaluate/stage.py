"""Stage ``evaluate@<task>``: the model's per-frame scores joined with ``score_baselines``' (see
:mod:`progrestore.evaluate.scoring`), as metrics, plots and MLflow."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from progrestore import tasks, tracking
from progrestore.config import Section
from progrestore.data.sources import SOURCES
from progrestore.entry import Stage
from progrestore.errors import InputError
from progrestore.evaluate.baselines import read_baselines
from progrestore.evaluate.methods import describe, evaluated_methods
from progrestore.evaluate.metrics import names as metric_names
from progrestore.evaluate.report import write_curves, write_report, write_sheet
from progrestore.evaluate.scoring import FrameScorer, Window, evaluate_dataset, sheet_rows
from progrestore.model.profiles import profile_named

DATA_LABELS = {
    "sample": "embedded sample: scikit-image photographs upscaled to the clip size (a pipeline check, not a benchmark)",
    "div2k": "DIV2K validation images 0801-0900",
    "folder": "images from data.folder.path",
}
WINDOW_WHY = (
    "the model restores the centre window of its aspect ratio and leaves the rest of the frame as the "
    "input; every method is scored inside that window only"
)


def track_evaluation(name: str, params: dict, summary: dict, artifacts: list[Path]) -> None:
    """One MLflow run: per-frame curves (step = frame), final values, the metric files as artifacts."""
    with tracking.start_run("progrestore-evaluate", name, params, {"kind": "evaluate"}) as run:
        if run is None:
            return
        for method, per_metric in summary["per_frame"].items():
            for metric, series in per_metric.items():
                tracking.log_curve(f"{method}/{metric}", series)
        finals = {f"{m}/{k}_final": v for m, per in summary["final"].items() for k, v in per.items()}
        tracking.log_finite(finals)
        tracking.log_artifacts(artifacts)


def restored_record(restored: Path, task: str) -> dict:
    """The restore stage's record of what the model ran and which window of the frames it restored."""
    meta_path = Path(restored) / "restored.json"
    if not meta_path.is_file():
        raise InputError(f"{meta_path} not found: run the restore stage first (dvc repro restore@{task})")
    meta = json.loads(meta_path.read_text())
    if "restored_window" not in meta:
        raise InputError(
            f"{meta_path} comes from an older restore stage: run it again (dvc repro restore@{task})"
        )
    return meta


def run_evaluate(
    params: Section,
    task: str,
    dataset: Path,
    baselines: Path,
    restored: Path,
    metrics: Path,
    curves: Path,
    sheets: Path,
) -> None:
    """Score the model's trajectories in ``restored`` (when ``evaluate.methods`` has the model), join them
    with ``baselines``, and write the summary ``metrics`` (with ``<name>/about.json`` and ``clips.json``),
    per-frame plot data in ``<curves>/<metric>/<task>.json`` and ``<sheets>/<task>.png``, ``<task>_curves.png``.
    Reads ``evaluate`` and ``data.source``."""
    tasks.check(task)
    methods = evaluated_methods(params)
    source = params.section("data").choice("source", SOURCES)
    labels, display, window, architecture = {"data": DATA_LABELS[source]}, {}, None, ""
    if "model" in methods:
        meta = restored_record(restored, task)
        architecture = profile_named(meta["profile"]).architecture
        labels |= {"model_profile": meta["label"], "profile": meta["profile"]}
        display["model"] = f"model [{meta['label']}]"  # the tiny random model is labelled wherever it appears
        window = Window(**meta["restored_window"])
        labels["scored_region"] = {**meta["restored_window"], "why": WINDOW_WHY}
    val = Path(dataset) / "val"
    evaluation = read_baselines(baselines, window, task)
    if "model" in methods:
        model = evaluate_dataset(task, val, ["model"], FrameScorer(), restored, window)
        evaluation = evaluation.merged(model, methods)
    summary = evaluation.restricted(methods).summary()
    sheet, curves_png = Path(sheets) / f"{task}.png", Path(sheets) / f"{task}_curves.png"
    curve_paths = {metric: Path(curves) / metric / f"{task}.json" for metric in metric_names()}
    write_report(
        task, summary, describe(methods, task, architecture=architecture), labels, metrics, curve_paths
    )
    write_sheet(sheet_rows(task, val, methods, restored, display, window), sheet)
    write_curves(task, summary["per_frame"], DATA_LABELS[source], curves_png, display)
    run_params = {
        "task": task,
        "methods": ",".join(methods),
        "data_source": source,
        "clips": summary["clips"],
    }
    run_params |= {"model_profile": labels.get("model_profile", "-")}
    details = Path(metrics).with_suffix("")
    artifacts = [Path(metrics), *details.glob("*.json"), sheet, curves_png, *curve_paths.values()]
    track_evaluation(f"evaluate-{task}", run_params, summary, artifacts)
    for method in methods:
        final = summary["final"][method]
        print(f"{task} {display.get(method, method)}: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", choices=tasks.names())
    parser.add_argument("--dataset", type=Path, required=True, help="the task's dataset folder (its val/)")
    parser.add_argument("--baselines", type=Path, required=True, help="score_baselines' scores (.json)")
    parser.add_argument("--restored", type=Path, required=True, help="the restore stage's trajectories")
    parser.add_argument("--metrics", type=Path, required=True, help="the summary (.json)")
    parser.add_argument(
        "--curves", type=Path, required=True, help="per-frame plot data: <curves>/<metric>/<task>.json"
    )
    parser.add_argument(
        "--sheets", type=Path, required=True, help="the folder of the contact sheet and curves"
    )


EVALUATE = Stage(
    "evaluate",
    "score the model's trajectories, join the baselines' scores, write metrics, plot data and sheets",
    _arguments,
    lambda p, a: run_evaluate(p, a.task, a.dataset, a.baselines, a.restored, a.metrics, a.curves, a.sheets),
)
