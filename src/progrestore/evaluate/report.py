"""Writing an evaluation (the summary of :class:`progrestore.evaluate.scoring.Evaluation`) as files.

``metrics/<task>.json`` (the DVC metric) holds numbers only: the clip count, each method's final-frame
means, the means over clips of its progression (monotonicity and progress per metric) and temporal
coherence, and, under ``against``, the final-frame means of one method scored against another's frames
(``model_vs_vae``: the model against its autoencoder's ceiling). ``metrics/<task>/about.json`` says what they are (data, model, scored region, method
descriptions, protocol, LPIPS weights), ``metrics/<task>/clips.json`` has every clip's final-frame values,
progression and coherence, and ``metrics/per_frame/<metric>/<task>.json`` one row per frame and one
column per method and comparison (DVC overlays the columns). Non-finite values are null in all of them (strict JSON): an
infinite PSNR (a frame equal to the clean image), a progression measure that is not defined.
"""

from __future__ import annotations

import math
from pathlib import Path

from progrestore.data.contact_sheet import contact_sheet
from progrestore.evaluate.lpips_weights import TRUNK_SHA256
from progrestore.evaluate.metrics import metrics
from progrestore.evaluate.progression import __doc__ as PROGRESSION_DOC
from progrestore.evaluate.protocol import ABOUT, CLIPS
from progrestore.io.atomic import atomic_path, write_json
from progrestore.io.images import write_png


def plot_rows(curves: dict[str, dict[str, list[float]]], metric: str) -> list[dict]:
    frames = len(next(iter(curves.values()))[metric])
    return [
        {
            "frame": t + 1,
            **{m: (v[metric][t] if math.isfinite(v[metric][t]) else None) for m, v in curves.items()},
        }
        for t in range(frames)
    ]


def finite_or_null(value: float | None) -> float | None:
    """A metric value for JSON files that DVC reads: an infinite PSNR (a frame equal to the clean image)
    or an undefined value is null, since DVC's views and diffs cannot show it."""
    return value if value is not None and math.isfinite(value) else None


def strict(tree: object) -> object:
    """``tree`` (nested dicts and lists of numbers) with every non-finite number as null."""
    if isinstance(tree, dict):
        return {k: strict(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [strict(v) for v in tree]
    if isinstance(tree, float):
        return finite_or_null(tree)
    return tree


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
      diff`` stay readable: the clip count, each method's final-frame means, progression and coherence,
      and the comparisons' final-frame means;
    - ``<metrics_path without suffix>/about.json``: what the numbers are (``methods`` describes each
      method; ``labels``: data, model, scored region), the protocol and the LPIPS weights' identity;
    - ``<metrics_path without suffix>/clips.json``: every clip's final-frame values, progression, coherence;
    - ``curve_paths[<metric>]``: one row per frame, one column per method and comparison (DVC's plots).
    """
    metrics_path = Path(metrics_path)
    numbers = {"clips": summary["clips"], "final": summary["final"], "progression": summary["progression"]}
    if summary["coherence"]:
        numbers["coherence"] = summary["coherence"]
    if summary["against"]:
        numbers["against"] = {name: entry["final"] for name, entry in summary["against"].items()}
    write_json(metrics_path, strict(numbers))
    details = metrics_path.with_suffix("")
    about = {
        "task": task,
        **labels,
        "methods": methods,
        "protocol": {m.name: m.protocol for m in metrics()},
        "progression": " ".join(PROGRESSION_DOC.split()),
        "lpips_weights_sha256": TRUNK_SHA256,
        "null": "a PSNR of null is infinite: the frame equals the clean image; elsewhere null is undefined",
    }
    write_json(details / ABOUT, about)
    write_json(details / CLIPS, strict(summary["per_clip"]))
    columns = summary["per_frame"] | {name: e["per_frame"] for name, e in summary["against"].items()}
    for metric in metrics():
        write_json(Path(curve_paths[metric.name]), plot_rows(columns, metric.name))


def write_sheet(rows: list, path: Path) -> None:
    write_png(Path(path), contact_sheet(rows))


def write_curves(
    task: str,
    per_frame: dict[str, dict[str, list[float]]],
    label: str,
    path: Path,
    display: dict[str, str] | None = None,
) -> None:
    """Every registered metric per frame, one line per method (the layout of the paper's Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = metrics()
    figure, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.7), dpi=100, layout="constrained"
    )
    for axis, metric in zip(axes, panels, strict=True):
        for method, curves in per_frame.items():
            values = [v if math.isfinite(v) else float("nan") for v in curves[metric.name]]
            name = (display or {}).get(method, method)
            axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        axis.set_xlabel("frame")
        axis.set_title(metric.label, fontsize=10)
        axis.grid(alpha=0.3)
    handles, names_ = axes[0].get_legend_handles_labels()
    figure.suptitle(f"{task}: {label}", fontsize=9)
    # below the panels, not over a curve: one column per method
    figure.legend(handles, names_, loc="outside lower center", ncols=len(names_), fontsize=8, frameon=False)
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(figure)
