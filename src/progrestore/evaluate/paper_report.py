"""``progrestore report``: the paper's comparisons as one generated report (``reports/paper.md``, with its
figures in ``reports/paper/``), from the pipeline's own outputs.

- Fig. 2, per task: the model fine-tuned on uniform prompts beside the model fine-tuned on scene-adaptive
  ones: final-frame means, progression and coherence means, per-frame means of every metric, and a figure
  of the per-frame curves (the methods that read no prompt as thin reference lines, shown once when both
  sources agree on them, which they must: they never see a prompt).
- Table I: the ReLoBlur report's per-frame LPIPS beside the paper's published row.

Each strategy's results come from a *source* (:mod:`.report_sources`: a metrics folder, a git revision or
a DVC experiment, checked against its record where it has one); by default, the workspace's metrics
folder for the strategy the workspace's params.yaml sets.

Every table says what produced its numbers (the model profile's label, the data, the clip count), and a
report whose model is a tiny random profile says at its top, in bold, that its numbers are plumbing. Only
JSON files are read and figures drawn (no torch). The report's first line marks it as this command's and
lists the figures it wrote: an existing file without that line is never replaced.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from progrestore import tasks as task_registry
from progrestore.errors import InputError
from progrestore.evaluate.metrics import Metric, metrics
from progrestore.evaluate.metrics import get as metric_named
from progrestore.evaluate.progression import COHERENCE, MONOTONICITY, PROGRESS
from progrestore.evaluate.published import PAPER_TABLE_I_LPIPS, TABLE_I_METRIC, TABLE_I_SOURCE
from progrestore.evaluate.report_sources import (
    PROMPTED,
    STRATEGY_KEY,
    Comparison,
    Layout,
    Reloblur,
    Source,
    TaskResult,
    compare,
    load_reloblur,
    load_source,
    lookup,
    parsed,
    plumbing_label,
    read_file,
)
from progrestore.io.atomic import check_writable, write_bytes, write_text
from progrestore.prompts.build import STRATEGIES

CEILING = (
    "model_vs_vae"  # a metrics file's optional ``against`` entry: the model scored against its VAE's clip
)
MARKER = "<!-- written by `progrestore report`, which rewrites this file and the figures it lists:"
UNDEFINED = "n/a"
ABSENT = "not in this source"


@dataclass(frozen=True)
class Written:
    """What the command wrote, and the tasks it left out (with why), for its summary lines."""

    out: Path
    figures: list[Path]
    left_out: dict[str, str]  # task -> why


# ---------------------------------------------------------------------------------------------- markdown


def _value(value: float | None, metric: Metric) -> str:
    """A metric value as the files hold it: null is the exact value where that is infinite (a PSNR of a
    frame equal to the clean image), elsewhere undefined."""
    if value is None:
        return "inf" if math.isinf(metric.exact) else UNDEFINED
    return f"{value:.4f}"


def _measure(value: float | None) -> str:
    """A progression or coherence mean: null is undefined (no clip where the measure is defined)."""
    return UNDEFINED if value is None else f"{value:.4f}"


def _difference(first: float | None, second: float | None) -> str:
    return UNDEFINED if first is None or second is None else f"{second - first:+.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows), ""]


def _caption(text: str) -> str:
    return f"*{text}*"


def _rows_by_method(comparison: Comparison) -> list[tuple[str, str, str, TaskResult]]:
    """(method, its name in the table, prompts, result) for each row of the method tables: the model under
    each strategy, then each shared method once (once per source when the sources disagree on it)."""
    first = comparison.results[0]
    model = f"`{PROMPTED}` ({first.about['profile']})"
    rows = [(PROMPTED, model, s, r) for s, r in zip(STRATEGIES, comparison.results, strict=True)]
    for method in comparison.shared:
        if method in comparison.differing:
            pairs = zip(STRATEGIES, comparison.results, strict=True)
            rows += [(method, f"`{method}`", f"none ({s} source)", r) for s, r in pairs]
        else:
            rows.append((method, f"`{method}`", "none (identical in both sources)", first))
    return rows


def _task_section(comparison: Comparison, figure: str, sources: list[Source]) -> list[str]:
    first = comparison.results[0]
    task, label, frames = comparison.task, first.label(), first.frames
    origin = ", ".join(f"{s.strategy} from `{s.given}`" for s in sources)
    lines = [f"### {task}", "", _caption(f"{task}; {label}; {origin}"), ""]
    lines += ["Methods: " + "; ".join(f"`{m}`: {d}" for m, d in sorted(first.about["methods"].items())), ""]
    if comparison.differing:
        lines += [
            f"**The sources differ in {', '.join(comparison.differing)}**, which read no prompt: both are shown.",
            "",
        ]
    lines += [f"![{task}: per-frame curves, {' vs '.join(STRATEGIES)} prompts]({figure})", ""]
    panels = metrics()
    rows = _rows_by_method(comparison)
    lines += [
        f"#### {task}: final frame ({frames}) and temporal coherence",
        "",
        _caption(f"means over clips; {label}"),
        "",
    ]
    header = ["method", "prompts", *(m.label for m in panels), *COHERENCE]
    body = []
    for method, name, prompts, result in rows:
        final = result.numbers["final"].get(method)
        coherence = result.numbers.get("coherence", {}).get(method, {})
        if final is None:
            cells = [ABSENT] * (len(header) - 2)
        else:
            cells = [_value(final.get(m.name), m) for m in panels]
            cells += [_measure(coherence.get(c)) for c in COHERENCE]
        body.append([name, prompts, *cells])
    lines += _table(header, body)
    if any(CEILING in r.numbers.get("against", {}) for r in comparison.results):
        lines += [
            f"#### {task}: the model against its autoencoder's ceiling",
            "",
            _caption(
                f"`against.{CEILING}`: final-frame means of the model scored against the VAE's reconstruction of each "
                f"clip (the `vae` method), not against the clean image; {label}"
            ),
            "",
        ]
        body = []
        for strategy, result in zip(STRATEGIES, comparison.results, strict=True):
            ceiling = result.numbers.get("against", {}).get(CEILING)
            cells = [_value(ceiling.get(m.name), m) for m in panels] if ceiling else [ABSENT] * len(panels)
            body.append([strategy, *cells])
        lines += _table(["prompts", *(m.label for m in panels)], body)
    for metric in panels:
        lines += [f"#### {task}: progression, {metric.label}", "", _caption(f"means over clips; {label}"), ""]
        body = []
        for method, name, prompts, result in rows:
            measures = result.numbers.get("progression", {}).get(method, {}).get(metric.name)
            keys = (*MONOTONICITY, *PROGRESS)
            cells = (
                [_measure(measures.get(k)) for k in keys] if measures is not None else [ABSENT] * len(keys)
            )
            body.append([name, prompts, *cells])
        lines += _table(["method", "prompts", *MONOTONICITY, *PROGRESS], body)
    for metric in panels:
        lines += [f"#### {task}: per frame, {metric.label}", "", _caption(f"means over clips; {label}"), ""]
        body = []
        for column in comparison.compared:
            series = [r.per_frame.get(column, {}).get(metric.name) for r in comparison.results]
            name = f"`{column}` ({first.about['profile']})"
            for strategy, values in zip(STRATEGIES, series, strict=True):
                cells = [_value(v, metric) for v in values] if values is not None else [ABSENT] * frames
                body.append([name, strategy, *cells])
            if None not in series:
                differences = [_difference(a, b) for a, b in zip(*series, strict=True)]
                body.append([name, f"{STRATEGIES[1]} - {STRATEGIES[0]}", *differences])
        lines += _table(["method", "prompts", *map(str, range(1, frames + 1))], body)
    return lines


def _reloblur_section(reloblur: Reloblur | None, path: Path) -> list[str]:
    metric = metric_named(TABLE_I_METRIC)
    lines = [f"## Table I: ReLoBlur, frame-wise {metric.label}", ""]
    paper = ["paper, Table I", *(f"{v:.3f}" for v in PAPER_TABLE_I_LPIPS)]
    if reloblur is None:
        lines += [
            f"Not run: `{path}` does not exist. With the ReLoBlur data and a trained LoRA, "
            f"`progrestore reloblur ROOT --split test` (ROOT: the ReLoBlur dataset folder) writes it. "
            f"The paper's row alone ({TABLE_I_SOURCE}):",
            "",
        ]
        return lines + _table(["frame", *map(str, range(1, len(PAPER_TABLE_I_LPIPS) + 1))], [paper])
    about, frames = reloblur.about, len(next(iter(reloblur.per_frame.values())))
    model = about.get("model_profile", f"not evaluated (no `{PROMPTED}` among its methods)")
    lines += [
        _caption(
            f"ours from `{reloblur.path}`: {about.get('data')}; {reloblur.numbers.get('clips')} pairs; "
            f"model: {model}; LoRA: {about.get('lora', UNDEFINED)}; restoration task: "
            f"{about.get('restoration_task')}. The paper's row: {TABLE_I_SOURCE}"
        ),
        "",
    ]
    if frames != len(PAPER_TABLE_I_LPIPS):
        lines += [
            f"Ours has {frames} frames, the paper's row {len(PAPER_TABLE_I_LPIPS)}: not frame for frame.",
            "",
        ]
    width = max(frames, len(PAPER_TABLE_I_LPIPS))
    methods = sorted(reloblur.per_frame, key=lambda m: (m != PROMPTED, m))
    body = [paper + [UNDEFINED] * (width - len(PAPER_TABLE_I_LPIPS))]
    for method in methods:
        name = f"`{method}` ({about['profile']})" if method == PROMPTED else f"`{method}`"
        values = [_value(v, metric) for v in reloblur.per_frame[method]]
        body.append([name, *values, *[UNDEFINED] * (width - frames)])
    return lines + _table(["frame", *map(str, range(1, width + 1))], body)


def render(
    comparisons: list[Comparison],
    sources: list[Source],
    left_out: dict[str, str],
    reloblur: Reloblur | None,
    reloblur_path: Path,
    figures: dict[str, str],
    plumbing: list[str],
) -> str:
    """The report's markdown; ``figures``: task -> the figure's path relative to the report."""
    lines = [
        f"{MARKER} {' '.join(figures.values())} -->",
        "# The paper's comparisons, from this pipeline's outputs",
        "",
    ]
    if plumbing:
        lines += [
            "**Plumbing numbers, not results.** The model rows come from a randomly initialised tiny profile "
            f"({'; '.join(f'`{label}`' for label in plumbing)}): it exercises the pipeline, and nothing here "
            "measures the method.",
            "",
        ]
    lines += [
        "Written by `progrestore report`. Every table names the model profile, the data and the clip count "
        "its numbers come from.",
        "",
        "## Sources",
        "",
    ]
    lines += [f"- {s.strategy} prompts: {s.description}" for s in sources]
    lines += [f"- ReLoBlur: `{reloblur_path}`" + ("" if reloblur else " (not run)"), ""]
    if left_out:
        lines += ["Left out:", "", *(f"- {task}: {why}" for task, why in left_out.items()), ""]
    lines += [f"## Fig. 2: {' vs '.join(STRATEGIES)} prompts, per task and per frame", ""]
    for comparison in comparisons:
        lines += _task_section(comparison, figures[comparison.task], sources)
    lines += _reloblur_section(reloblur, reloblur_path)
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------- figures


def _line(axis, values: list[float | None], **style) -> None:
    """One curve over frames 1..T; a null (an infinite PSNR) leaves a gap, as in the evaluate curves."""
    shown = [float("nan") if v is None else v for v in values]
    axis.plot(range(1, len(shown) + 1), shown, marker="o", markersize=3, **style)


def draw(comparison: Comparison) -> bytes:
    """Fig. 2's layout for one task: a panel per metric, the prompted columns thick (one colour each, a
    line style per strategy), the methods that read no prompt thin. PNG bytes, no time stamp."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    first, second = comparison.results
    panels, frames = metrics(), range(1, first.frames + 1)
    figure, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 4.2), dpi=100, layout="constrained"
    )
    for axis, metric in zip(axes, panels, strict=True):
        for colour, column in enumerate(comparison.compared):
            for strategy, result, dashes in zip(STRATEGIES, (first, second), ("-", "--"), strict=True):
                values = result.per_frame.get(column, {}).get(metric.name, [None] * len(frames))
                label = f"{column}, {strategy} prompts"
                _line(axis, values, color=f"C{colour}", linestyle=dashes, linewidth=2, label=label)
        for colour, method in enumerate(comparison.shared, start=len(comparison.compared)):
            each = method in comparison.differing
            sources = zip(STRATEGIES, (first, second), strict=True) if each else [(None, first)]
            for strategy, result in sources:
                label = method if strategy is None else f"{method} ({strategy} source)"
                values = result.per_frame.get(method, {}).get(metric.name, [None] * len(frames))
                _line(axis, values, color=f"C{colour}", linewidth=0.8, alpha=0.8, label=label)
        axis.set_xlabel("frame")
        axis.set_title(metric.label, fontsize=10)
        axis.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    about = first.about
    title = (
        f"{comparison.task}: {' vs '.join(STRATEGIES)} prompts\nmodel: {about['model_profile']}\n"
        f"data: {about['data']}; {first.numbers['clips']} clips"
    )
    figure.suptitle(title, fontsize=8)
    figure.legend(
        handles, names, loc="outside lower center", ncols=min(len(names), 4), fontsize=8, frameon=False
    )
    png = io.BytesIO()
    figure.savefig(png, format="png", metadata={"Software": None})
    plt.close(figure)
    return png.getvalue()


# ------------------------------------------------------------------------------------------------ writing


def earlier_figures(out: Path) -> list[str]:
    """The figures an earlier report at ``out`` lists (none when there is no file): a file there that this
    command did not write is refused, never replaced."""
    if out.suffix != ".md" or out.is_dir():
        raise InputError(
            f"--out {out}: give a file name ending in .md (its figures go in {out.stem}/ beside it)"
        )
    if not out.exists():
        return []
    try:
        first = out.read_bytes().split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        first = ""
    if not (first.startswith(MARKER) and first.endswith("-->")):
        raise InputError(
            f"--out {out}: exists and was not written by progrestore report; give a new file name"
        )
    own = re.compile(rf"{re.escape(out.stem)}/[A-Za-z0-9_-]+\.png")  # only figure names this command gives
    return [name for name in first.removeprefix(MARKER).removesuffix("-->").split() if own.fullmatch(name)]


def run_report(
    given: dict[str, str | None],
    tasks: list[str] | None,
    reloblur: Path | None,
    out: Path,
    root: Path,
    layout: Layout,
    params_file: Path,
    default_reloblur: Path,
) -> Written:
    """Write the report ``out`` and its figures from the sources ``given`` per strategy (None: the
    workspace's metrics folder, for the strategy the workspace's params.yaml sets); ``tasks``: those only
    (each must be comparable), else every task present in both sources (the others are left out, with why).
    """
    out = Path(out)
    earlier = earlier_figures(out)
    check_writable(out.parent)
    if None in given.values():
        params = parsed(read_file(Path(params_file)), str(params_file), yaml.safe_load)
        found, workspace = lookup(params, STRATEGY_KEY)
        for strategy, source in given.items():
            if source is None and strategy != workspace:
                sets = f"sets {STRATEGY_KEY} {workspace!r}" if found else f"sets no {STRATEGY_KEY}"
                raise InputError(
                    f"--{strategy}: required, since the workspace's {params_file} {sets}; give a metrics "
                    "folder, a git revision or a DVC experiment name"
                )
        given = {s: str(layout.metrics) if g is None else g for s, g in given.items()}
    folders = [Path(g).resolve() for g in given.values() if Path(g).is_dir()]
    if len(set(folders)) < len(folders):
        raise InputError(
            f"{', '.join(f'--{s}' for s in given)}: name the same folder; give each strategy its own"
        )
    sources = [load_source(f"--{s}", g, s, root, layout, params_file) for s, g in given.items()]
    reloblur_path = Path(reloblur or default_reloblur)
    if reloblur is not None and not reloblur_path.is_file():
        raise InputError(f"--reloblur {reloblur}: not found; give a report of progrestore reloblur")
    relo = load_reloblur(reloblur_path) if reloblur_path.is_file() else None
    comparisons, left_out = [], {}
    present = [t for t in task_registry.names() if any(t in s.results or t in s.stale for s in sources)]
    for task in tasks or present:
        why = next((s.stale[task] for s in sources if task in s.stale), None)
        missing = [s for s in sources if task not in s.results and task not in s.stale]
        if missing:
            why = f"{missing[0].option} {missing[0].given} has no {layout.numbers(task)}"
        if why is None:
            compared = compare(task, *(s.results[task] for s in sources))
            why = compared if isinstance(compared, str) else None
            if why is None:
                comparisons.append(compared)
        if why is not None:
            if tasks:
                raise InputError(f"{task}: {why}")
            left_out[task] = why
    if not comparisons:
        raise InputError(
            "no task has results to compare: "
            + ("; ".join(f"{t}: {w}" for t, w in left_out.items()) or "no metrics found")
        )
    plumbing = [
        label
        for where, about in [
            *(
                (f"{c.task} in {s.option} {s.given}", c.results[i].about)
                for c in comparisons
                for i, s in enumerate(sources)
            ),
            *([(str(reloblur_path), relo.about)] if relo and PROMPTED in relo.per_frame else []),
        ]
        if (label := plumbing_label(about, where)) is not None
    ]
    figures = {c.task: f"{out.stem}/{c.task}.png" for c in comparisons}
    for name in figures.values():
        target = out.parent / name
        if (target.exists() or target.is_symlink()) and name not in earlier:
            raise InputError(
                f"{target}: exists and was not written by progrestore report; move it or give another --out"
            )
    markdown = render(comparisons, sources, left_out, relo, reloblur_path, figures, sorted(set(plumbing)))
    drawn = {name: draw(c) for c, name in zip(comparisons, figures.values(), strict=True)}
    write_text(out, markdown)  # first: from now on it lists the figures as this command's
    for name, png in drawn.items():
        write_bytes(out.parent / name, png)
    for name in sorted(set(earlier) - set(figures.values())):
        (out.parent / name).unlink(missing_ok=True)  # an earlier report's figure for a task now left out
    return Written(out, [out.parent / name for name in figures.values()], left_out)
