"""Stage ``evaluate@<task>``: every method's per-frame scores on the val clips, as metrics, plots and MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from progrestore import tracking
from progrestore.config import Section
from progrestore.data import degradations
from progrestore.data.sources import SOURCES
from progrestore.errors import InputError
from progrestore.evaluate.methods import METHODS
from progrestore.evaluate.metrics import FrameScorer
from progrestore.evaluate.report import Window, evaluate_dataset, write_curves, write_report, write_sheet
from progrestore.layout import DATASETS_DIR, EVALUATE_SHEETS_DIR, METRICS_DIR, RESTORED_DIR

DATA_LABELS = {
    "sample": "embedded sample: scikit-image photographs upscaled to the clip size (a pipeline check, not a benchmark)",
    "div2k": "DIV2K validation images 0801-0900",
    "folder": "images from data.folder.path",
}


def evaluated_methods(params: Section) -> list[str]:
    evaluate = params.section("evaluate")
    methods = list(evaluate.names("methods"))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "identity" not in methods:
        raise evaluate.fail("methods", f"a list of {', '.join(METHODS)} that includes identity")
    return methods


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


def run_evaluate(params: Section, task: str) -> None:
    """Reads ``evaluate`` and ``data.source``; the model method reads the restore stage's trajectories."""
    degradations.check(task)
    methods = evaluated_methods(params)
    source = params.section("data").choice("source", SOURCES)
    restored = RESTORED_DIR / task
    labels, display, window = {"data": DATA_LABELS[source]}, {}, None
    if "model" in methods:
        meta_path = restored / "restored.json"
        if not meta_path.is_file():
            raise InputError(f"{meta_path} not found: run the restore stage first (dvc repro restore@{task})")
        meta = json.loads(meta_path.read_text())
        if "restored_window" not in meta:
            raise InputError(
                f"{meta_path} comes from an older restore stage: run it again (dvc repro restore@{task})"
            )
        labels |= {"model_profile": meta["label"], "profile": meta["profile"]}
        display["model"] = f"model [{meta['label']}]"  # the tiny random model is labelled wherever it appears
        window = Window(**meta["restored_window"])
        labels["scored_region"] = {
            **meta["restored_window"],
            "why": "the model restores the centre window of its aspect ratio and leaves the rest of the "
            "frame as the input; every method is scored inside that window only",
        }
    scorer = FrameScorer()
    val = DATASETS_DIR / task / "val"
    evaluation, sheet_rows = evaluate_dataset(task, val, methods, scorer, restored, display, window)
    summary = evaluation.summary()
    metrics_path = METRICS_DIR / f"{task}.json"
    sheet = EVALUATE_SHEETS_DIR / f"{task}.png"
    write_report(task, summary, methods, labels, metrics_path)
    write_sheet(sheet_rows, sheet)
    curves = EVALUATE_SHEETS_DIR / f"{task}_curves.png"
    write_curves(task, summary["per_frame"], DATA_LABELS[source], curves, display)
    run_params = {
        "task": task,
        "methods": ",".join(methods),
        "data_source": source,
        "clips": summary["clips"],
    }
    run_params |= {"model_profile": labels.get("model_profile", "-")}
    artifacts = [metrics_path, sheet, curves, *metrics_path.with_suffix("").glob("*.json")]
    track_evaluation(f"evaluate-{task}", run_params, summary, artifacts)
    for method in methods:
        final = summary["final"][method]
        print(f"{task} {display.get(method, method)}: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))
