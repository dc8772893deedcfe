"""The evaluate stage's computation (:mod:`progrestore.stages.evaluate`): the model's per-frame scores joined
with ``score_baselines``' (see :mod:`progrestore.evaluate.scoring`), as metrics, plots and MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from progrestore import tasks, tracking
from progrestore.config import Section
from progrestore.data.sources import SOURCES
from progrestore.errors import InputError
from progrestore.evaluate.baselines import read_baselines
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.evaluate.methods import MADE_BY_STAGE, describe, evaluated_methods
from progrestore.evaluate.metrics import names as metric_names
from progrestore.evaluate.report import write_curves, write_report, write_sheet
from progrestore.evaluate.scoring import Window, evaluate_dataset, sheet_rows
from progrestore.layout import RECONSTRUCTED_RECORD, RESTORED_RECORD
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
# each model stage's record beside its trajectories: (file name, its key of the window it changed)
STAGE_RECORDS = {
    "model": (RESTORED_RECORD, "restored_window"),
    "vae": (RECONSTRUCTED_RECORD, "reconstructed_window"),
}
CEILING = ("model", "vae")  # the model's frames scored against its VAE's ceiling: the denoiser's share


def track_evaluation(name: str, params: dict, summary: dict, artifacts: list[Path]) -> None:
    """One MLflow run: per-frame curves (step = frame) of each method and comparison, final values, the
    progression and coherence means, the metric files as artifacts."""
    with tracking.start_run("progrestore-evaluate", name, params, {"kind": "evaluate"}) as run:
        if run is None:
            return
        curves = summary["per_frame"] | {n: e["per_frame"] for n, e in summary["against"].items()}
        for method, per_metric in curves.items():
            for metric, series in per_metric.items():
                tracking.log_curve(f"{method}/{metric}", series)
        finals = {f"{m}/{k}_final": series[-1] for m, per in curves.items() for k, series in per.items()}
        progression = {
            f"{m}/{metric}_{key}": value
            for m, per in summary["progression"].items()
            for metric, measures in per.items()
            for key, value in measures.items()
        }
        coherence = {f"{m}/{key}": v for m, per in summary["coherence"].items() for key, v in per.items()}
        tracking.log_finite(finals | progression | coherence)
        tracking.log_artifacts(artifacts)


def stage_record(folder: Path, name: str, window_key: str, stage: str, task: str) -> dict:
    """The record a model stage (restore, reconstruct) writes beside its trajectories: what model made them
    and which window of the frames it changed."""
    path = Path(folder) / name
    if not path.is_file():
        raise InputError(f"{path} not found: run the {stage} stage first (dvc repro {stage}@{task})")
    meta = json.loads(path.read_text())
    if window_key not in meta:
        raise InputError(f"{path} comes from an older {stage} stage: run it again (dvc repro {stage}@{task})")
    return meta


def model_records(methods: list[str], folders: dict[str, Path], task: str) -> dict:
    """The records of the model stages whose methods are evaluated, checked to be of one model and one
    window (the model restores and the VAE reconstructs the same centre window at the same size)."""
    records = {
        method: stage_record(folders[method], *STAGE_RECORDS[method], MADE_BY_STAGE[method], task)
        for method in methods
        if method in MADE_BY_STAGE
    }
    made = {m: (r["profile"], r["model_size"], r[STAGE_RECORDS[m][1]]) for m, r in records.items()}
    if len(set(map(repr, made.values()))) > 1:
        detail = "; ".join(f"{MADE_BY_STAGE[m]}: {p} at {s}, window {w}" for m, (p, s, w) in made.items())
        raise InputError(
            f"the model stages' outputs are of different models or windows ({detail}): run them again "
            f"(dvc repro evaluate@{task})"
        )
    return records


def run_evaluate(
    params: Section,
    task: str,
    dataset: Path,
    baselines: Path,
    made: dict[str, Path],
    metrics: Path,
    curves: Path,
    sheets: Path,
) -> None:
    """Score the model stages' trajectories (``made``: the folders of the ``model`` and ``vae`` methods,
    when ``evaluate.methods`` has them), and the model's frames against the VAE's when it has both; join
    them with ``baselines``, and write the summary ``metrics`` (with ``<name>/about.json`` and
    ``clips.json``), per-frame plot data in ``<curves>/<metric>/<task>.json`` and ``<sheets>/<task>.png``,
    ``<task>_curves.png``. Reads ``evaluate`` and ``data.source``."""
    tasks.check(task)
    methods = evaluated_methods(params)
    source = params.section("data").choice("source", SOURCES)
    labels, display, window, architecture = {"data": DATA_LABELS[source]}, {}, None, ""
    records = model_records(methods, made, task)
    if records:
        meta = next(iter(records.values()))
        architecture = profile_named(meta["profile"]).architecture
        labels |= {"model_profile": meta["label"], "profile": meta["profile"]}
        for method in records:  # the tiny random model is labelled wherever it appears
            display[method] = f"{method} [{meta['label']}]"
        window_record = meta[STAGE_RECORDS[next(iter(records))][1]]
        window = Window(**window_record)
        labels["scored_region"] = {**window_record, "why": WINDOW_WHY}
    val = Path(dataset) / "val"
    evaluation = read_baselines(baselines, window, task)
    if records:
        against = CEILING if set(CEILING) <= set(records) else None
        model_side = evaluate_dataset(task, val, list(records), FrameScorer(), made, window, against)
        evaluation = evaluation.merged(model_side, methods)
    summary = evaluation.restricted(methods).summary()
    sheet, curves_png = Path(sheets) / f"{task}.png", Path(sheets) / f"{task}_curves.png"
    curve_paths = {metric: Path(curves) / metric / f"{task}.json" for metric in metric_names()}
    write_report(
        task, summary, describe(methods, task, architecture=architecture), labels, metrics, curve_paths
    )
    write_sheet(sheet_rows(task, val, methods, made, display, window), sheet)
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
    for name, entry in summary["against"].items():
        print(f"{task} {name}: " + "  ".join(f"{k} {v:.4f}" for k, v in entry["final"].items()))
