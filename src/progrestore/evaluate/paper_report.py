"""``progrestore report``: the paper's comparisons as one generated report (``reports/paper.md``, with its
figures in ``reports/paper/``), from the pipeline's own outputs.

- Fig. 2, per task: the model fine-tuned on uniform prompts beside the model fine-tuned on scene-adaptive
  ones: final-frame means, progression and coherence means, per-frame means of every metric, and a figure
  of the per-frame curves (the methods that read no prompt as thin reference lines, shown once when both
  sources agree on them, which they must: they never see a prompt).
- Table I: the ReLoBlur report's per-frame LPIPS beside the paper's published row.

Each strategy's results come from a *source*: a folder laid out like the pipeline's metrics folder, or a
git revision or DVC experiment name (its files read from git, where ``cache: false`` keeps the metrics);
by default, the workspace's metrics folder for the strategy the workspace's params.yaml sets.
A revision and the workspace's own metrics folder carry a record of how their files were made, and it is
checked: their params.yaml must set ``prompts.strategy`` to the strategy the source is given for, each
task's files must be the ones their dvc.lock records, and every stage upstream of those (followed through
dvc.lock's hashes) that records ``prompts.strategy`` must have run with it. A task that fails is stale: it
is left out (refused when asked for by name) with the ``dvc exp run`` that makes it. A plain folder has no
such record: its strategy is labelled as given on the command line, not verified.

Every table says what produced its numbers (the model profile's label, the data, the clip count), and a
report whose model is a tiny random profile says at its top, in bold, that its numbers are plumbing. Only
JSON files are read and figures drawn (no torch). The report's first line marks it as this command's and
lists the figures it wrote: an existing file without that line is never replaced.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from progrestore import tasks as task_registry
from progrestore.config import PARAMS_FILE
from progrestore.errors import InputError, ParamsError
from progrestore.evaluate.metrics import Metric, metrics
from progrestore.evaluate.metrics import get as metric_named
from progrestore.evaluate.progression import COHERENCE, MONOTONICITY, PROGRESS
from progrestore.evaluate.protocol import ABOUT
from progrestore.evaluate.published import PAPER_TABLE_I_LPIPS, TABLE_I_METRIC, TABLE_I_SOURCE
from progrestore.io.atomic import check_writable, write_bytes, write_text
from progrestore.model.profiles import profile_named
from progrestore.prompts.build import STRATEGIES
from progrestore.verify import folder_md5

STRATEGY_KEY = "prompts.strategy"
PROMPTED = "model"  # the one method whose trajectories the prompts reach (the restore stage's)
CEILING = (
    "model_vs_vae"  # a metrics file's optional ``against`` entry: the model scored against its VAE's clip
)
LOCK_FILE = "dvc.lock"
MARKER = "<!-- written by `progrestore report`, which rewrites this file and the figures it lists:"
UNDEFINED = "n/a"
ABSENT = "not in this source"
Files = dict[str, bytes]  # a source's snapshot: posix path relative to its root -> contents


@dataclass(frozen=True)
class Layout:
    """Where a source's files are, relative to its root (dvc.yaml's ``metrics`` and ``curves`` vars)."""

    metrics: PurePosixPath
    curves: PurePosixPath

    def numbers(self, task: str) -> str:
        return str(self.metrics / f"{task}.json")

    def details(self, task: str) -> str:
        return str(self.metrics / task)

    def curve(self, metric: str, task: str) -> str:
        return str(self.curves / metric / f"{task}.json")


@dataclass(frozen=True)
class TaskResult:
    """One task's evaluation as one source holds it."""

    task: str
    numbers: dict  # metrics/<task>.json
    about: dict  # metrics/<task>/about.json
    per_frame: dict[str, dict[str, list[float | None]]]  # column -> metric -> value per frame (None: null)

    @property
    def frames(self) -> int:
        return len(next(iter(next(iter(self.per_frame.values())).values())))

    def label(self) -> str:
        """What produced these numbers: the model profile's label, the data, the clip count."""
        return (
            f"model: {self.about['model_profile']}; data: {self.about['data']}; {self.numbers['clips']} clips"
        )


@dataclass(frozen=True)
class Source:
    """One strategy's results: every task found in it, and the tasks whose record says they are stale."""

    strategy: str
    option: str  # the command line's option, e.g. "--uniform"
    given: str  # its argument
    description: str  # where the files were read and what was checked
    results: dict[str, TaskResult]
    stale: dict[str, str]  # task -> why its files cannot count as this strategy's


@dataclass(frozen=True)
class Comparison:
    """One task under both strategies (``STRATEGIES`` order)."""

    task: str
    results: tuple[TaskResult, TaskResult]
    compared: list[str]  # per-frame columns that depend on the prompts: the model's, and what derives from it
    shared: list[str]  # methods that read no prompt
    differing: list[str]  # shared methods whose values differ between the sources (they should not)


@dataclass(frozen=True)
class Reloblur:
    """The ``progrestore reloblur`` report: its numbers, labels and Table I metric per frame."""

    path: Path
    numbers: dict
    about: dict
    per_frame: dict[str, list[float | None]]  # method -> Table I metric per frame


@dataclass(frozen=True)
class Written:
    """What the command wrote, and the tasks it left out (with why), for its summary lines."""

    out: Path
    figures: list[Path]
    left_out: dict[str, str]  # task -> why


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _lookup(tree: object, key: str) -> tuple[bool, object]:
    """The dotted ``key`` in ``tree``, whose own keys may be dotted too (dvc.lock's ``prompts.strategy``)."""
    if not isinstance(tree, dict):
        return False, None
    if key in tree:
        return True, tree[key]
    for name, subtree in tree.items():
        if isinstance(name, str) and key.startswith(f"{name}."):
            return _lookup(subtree, key[len(name) + 1 :])
    return False, None


def _parsed(data: bytes | None, what: str, parse: Callable[[bytes], object]) -> object:
    if data is None:
        return None
    try:
        return parse(data)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        raise InputError(f"{what}: cannot be parsed ({err.__class__.__name__})") from None


def _json(files: Files, path: str, where: str) -> object:
    return _parsed(files.get(path), f"{path} in {where}", json.loads)


def _disk_files(root: Path, folders: list[PurePosixPath]) -> Files:
    """Every file under ``folders`` of ``root`` (metrics folders: small JSON files)."""
    found = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _revision_files(root: Path, option: str, given: str, layout: Layout) -> tuple[str, Files]:
    """(commit, files) of the revision or DVC experiment ``given``: the metrics and per-frame folders,
    params.yaml and dvc.lock, as committed. DVC resolves experiment names as ``dvc exp`` does."""
    from dvc.exceptions import DvcException
    from dvc.scm import SCM, resolve_rev

    try:
        with SCM(str(root)) as scm:
            commit = resolve_rev(scm, given)
            tree = scm.get_fs(commit)
            names = [name for folder in (layout.metrics, layout.curves) for name in tree.find(str(folder))]
            names += [name for name in (PARAMS_FILE.name, LOCK_FILE) if tree.exists(name)]
            return commit, {name: tree.read_bytes(name) for name in sorted(set(names))}
    except DvcException as err:
        raise InputError(
            f"{option} {given}: no such folder, nor a git revision or DVC experiment of {root} ({err})"
        ) from None


def _numeric(tree: object) -> bool:
    """Whether every leaf of ``tree`` is a number or null, as in the evaluation's JSON files."""
    if isinstance(tree, dict):
        return all(_numeric(value) for value in tree.values())
    if isinstance(tree, list):
        return all(_numeric(value) for value in tree)
    return tree is None or (isinstance(tree, int | float) and not isinstance(tree, bool))


def read_task(files: Files, layout: Layout, task: str, where: str) -> TaskResult | None:
    """``task``'s evaluation in ``files`` (None when it has no metrics file there)."""
    numbers = _json(files, layout.numbers(task), where)
    if numbers is None:
        return None
    if not (isinstance(numbers, dict) and isinstance(numbers.get("final"), dict) and _numeric(numbers)):
        raise InputError(
            f"{layout.numbers(task)} in {where}: expected an evaluation's numbers (clips, final values, ...)"
        )
    about_path = f"{layout.details(task)}/{ABOUT}"
    about = _json(files, about_path, where)
    if not isinstance(about, dict) or not {"data", "methods"} <= set(about):
        raise InputError(f"{about_path} in {where}: missing or without data and methods: unlabelled numbers")
    per_frame: dict[str, dict[str, list[float | None]]] = {}
    for metric in metrics():
        path = layout.curve(metric.name, task)
        rows = _json(files, path, where)
        frames = [row.get("frame") if isinstance(row, dict) else None for row in rows or []]
        if not rows or frames != list(range(1, len(frames) + 1)) or not _numeric(rows):
            raise InputError(f"{path} in {where}: missing, or not one row of numbers per frame 1..T")
        for row in rows:
            for column, value in row.items():
                if column != "frame":
                    per_frame.setdefault(column, {}).setdefault(metric.name, []).append(value)
    return TaskResult(task, numbers, about, per_frame)


def _task_hashes(files: Files, layout: Layout, task: str) -> dict[str, str]:
    """What DVC would record for the files ``task``'s result was read from: md5s, a folder's ``.dir``."""
    details = f"{layout.details(task)}/"
    hashes = {layout.numbers(task): _md5(files[layout.numbers(task)])}
    hashes[layout.details(task)] = folder_md5(
        {path.removeprefix(details): _md5(data) for path, data in files.items() if path.startswith(details)}
    )
    for metric in metrics():
        hashes[layout.curve(metric.name, task)] = _md5(files[layout.curve(metric.name, task)])
    return hashes


def lineage_problem(lock: dict, hashes: dict[str, str], strategy: str) -> tuple[str | None, str | None]:
    """(why the files of ``hashes`` are not ``strategy``'s results according to ``lock``, or None; the
    stage that wrote the first of them). They must be the outputs dvc.lock records; from their stages,
    every dependency that another stage outputs is followed upstream, its recorded hash matching that
    stage's; each stage on the way that records ``prompts.strategy`` must have run with ``strategy``."""
    stages = lock.get("stages") if isinstance(lock.get("stages"), dict) else {}
    outputs = {
        out.get("path"): (name, out.get("md5"))
        for name, stage in stages.items()
        for out in stage.get("outs") or []
    }
    writer = outputs.get(next(iter(hashes)), (None, None))[0]
    todo = []
    for path, md5 in hashes.items():
        if path not in outputs:
            return f"dvc.lock records no stage that writes {path}", writer
        stage, recorded = outputs[path]
        if recorded != md5:
            return f"{path} is not the file dvc.lock records for {stage} (changed since it ran)", writer
        todo.append(stage)
    seen, ran_with = set(), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for params in (stages[name].get("params") or {}).values():
            found, value = _lookup(params, STRATEGY_KEY)
            if found:
                ran_with[name] = value
        for dep in stages[name].get("deps") or []:
            if dep.get("path") in outputs:
                upstream, md5 = outputs[dep["path"]]
                if dep.get("md5") != md5:
                    return f"{name} ran on a {dep['path']} that {upstream} has replaced since", writer
                todo.append(upstream)
    if not ran_with:
        return f"no stage upstream of {writer} records {STRATEGY_KEY}", writer
    for name, value in sorted(ran_with.items()):
        if value != strategy:
            return f"{name} ran with {STRATEGY_KEY} {value}, not {strategy} (its outputs are stale)", writer
    return None, writer


def _declared_strategy(params: object, option: str, given: str, strategy: str, where: str) -> None:
    """A source whose params.yaml sets the other strategy holds the other strategy's results: refused."""
    found, value = _lookup(params, STRATEGY_KEY)
    if value != strategy:
        sets = f"sets {STRATEGY_KEY} {value!r}" if found else f"sets no {STRATEGY_KEY}"
        raise InputError(
            f"{option} {given}: the params.yaml of {where} {sets}, not {strategy!r}; give the results of a run "
            f"with {STRATEGY_KEY}={strategy} (e.g. `dvc exp run -S {STRATEGY_KEY}={strategy}`)"
        )


@dataclass(frozen=True)
class Snapshot:
    """A source's files in memory, where they came from, and their record (params.yaml, dvc.lock) if any."""

    files: Files
    layout: Layout  # where in ``files`` the metrics are
    where: str  # for messages
    description: str  # for the report
    record: tuple[object, dict] | None


def snapshot(option: str, given: str, root: Path, layout: Layout, params_file: Path) -> Snapshot:
    """The files of ``given``: the workspace's metrics folder (with the workspace's record), another folder
    (no record), or a git revision or DVC experiment (with its own)."""
    path = Path(given)
    if path.is_dir() and path.resolve() == (root / layout.metrics).resolve():
        params = _parsed(_read(Path(params_file)), str(params_file), yaml.safe_load)
        lock = _parsed(_read(root / LOCK_FILE), str(root / LOCK_FILE), yaml.safe_load)
        if not isinstance(lock, dict):
            raise InputError(f"{option} {given}: {root / LOCK_FILE} not found: run `dvc repro` first")
        files = _disk_files(root, [layout.metrics, layout.curves])
        checked = (
            f"the workspace's `{layout.metrics}` folder, checked against `{params_file}` and `{LOCK_FILE}`"
        )
        return Snapshot(files, layout, f"the workspace ({root})", checked, (params, lock))
    if path.is_dir():
        if not layout.curves.is_relative_to(layout.metrics):
            raise InputError(
                f"{option} {given}: dvc.yaml's per-frame folder {layout.curves} is not inside its metrics "
                f"folder {layout.metrics}, so a metrics folder cannot hold it; give a git revision"
            )
        inside = Layout(PurePosixPath("."), layout.curves.relative_to(layout.metrics))
        unverified = (
            f"folder `{given}`: strategy as given on the command line ({option}), not verified "
            "(a folder holds no record of the run that made it)"
        )
        return Snapshot(_disk_files(path, [PurePosixPath(".")]), inside, f"folder {given}", unverified, None)
    if path.exists():
        raise InputError(
            f"{option} {given}: a file; give a metrics folder, a git revision or a DVC experiment"
        )
    commit, files = _revision_files(root, option, given, layout)
    where = f"{given} (commit {commit[:10]})"
    params = _parsed(files.get(PARAMS_FILE.name), f"{PARAMS_FILE.name} at {where}", yaml.safe_load)
    lock = _parsed(files.get(LOCK_FILE), f"{LOCK_FILE} at {where}", yaml.safe_load)
    if not isinstance(lock, dict):
        raise InputError(f"{option} {given}: no {LOCK_FILE} at {where}: its metrics have no record")
    checked = f"`{given}` (commit {commit[:10]}), checked against its {PARAMS_FILE.name} and {LOCK_FILE}"
    return Snapshot(files, layout, where, checked, (params, lock))


def load_source(
    option: str, given: str, strategy: str, root: Path, layout: Layout, params_file: Path
) -> Source:
    """The results ``given`` holds for ``strategy``, checked against their record where there is one."""
    found = snapshot(option, given, root, layout, params_file)
    description = found.description
    if found.record is not None:
        _declared_strategy(found.record[0], option, given, strategy, found.where)
        description += (
            f": {STRATEGY_KEY} is {strategy} there; each task's files are the ones {LOCK_FILE} records, and "
            f"every stage upstream of them (followed through its hashes) that records {STRATEGY_KEY} ran with "
            f"{strategy}"
        )
    results, stale = {}, {}
    for task in task_registry.names():
        result = read_task(found.files, found.layout, task, found.where)
        if result is None:
            continue
        if found.record is not None:
            hashes = _task_hashes(found.files, found.layout, task)
            problem, writer = lineage_problem(found.record[1], hashes, strategy)
            if problem is not None:
                run = f"dvc exp run -S {STRATEGY_KEY}={strategy}" + (f" {writer}" if writer else "")
                stale[task] = f"{option} {given}: {problem}; `{run}` makes it"
                continue
        results[task] = result
    return Source(strategy, option, given, description, results, stale)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _method_values(result: TaskResult, method: str) -> tuple:
    """Everything a source says about ``method``: its final, progression and coherence means, per frame."""
    summaries = (result.numbers.get(key, {}).get(method) for key in ("final", "progression", "coherence"))
    return (*summaries, result.per_frame.get(method))


def compare(task: str, first: TaskResult, second: TaskResult) -> Comparison | str:
    """The two results of ``task`` side by side, or why they cannot be (only the prompts may differ)."""
    facts = {
        "model profile": lambda r: r.about.get("profile"),
        "data": lambda r: r.about.get("data"),
        "clip count": lambda r: r.numbers["clips"],
        "frame count": lambda r: r.frames,
    }
    for what, fact in facts.items():
        if fact(first) != fact(second):
            return f"the sources differ in {what} ({fact(first)!r}, {fact(second)!r}): not the prompts alone"
    if any(PROMPTED not in r.numbers["final"] or "model_profile" not in r.about for r in (first, second)):
        return f"a source has no {PROMPTED} results (its evaluate.methods lacks {PROMPTED})"
    shared = sorted((set(first.numbers["final"]) | set(second.numbers["final"])) - {PROMPTED})
    derived = sorted((set(first.per_frame) | set(second.per_frame)) - set(shared) - {PROMPTED})
    differing = [m for m in shared if _method_values(first, m) != _method_values(second, m)]
    return Comparison(task, (first, second), [PROMPTED, *derived], shared, differing)


def plumbing_label(about: dict, where: str) -> str | None:
    """The model's label if its profile is a tiny random one (plumbing, not quality), else None."""
    if "profile" not in about:
        raise InputError(f"{where}: names no model profile; run the command that wrote it again")
    try:
        profile = profile_named(about["profile"])
    except ParamsError as err:
        raise InputError(f"{where}: {err}") from None
    return about.get("model_profile", profile.label) if profile.tiny else None


def _json_file(path: Path) -> object:
    return _parsed(_read(path), str(path), json.loads)


def load_reloblur(path: Path) -> Reloblur:
    """The reloblur report at ``path`` (``metrics/reloblur.json``, its folder beside it)."""
    folder = Path(path).with_suffix("")
    numbers, about = _json_file(Path(path)), _json_file(folder / ABOUT)
    if not isinstance(numbers, dict) or not isinstance(about, dict) or about.get("task") != "reloblur":
        raise InputError(f"{path}: not a report of progrestore reloblur with its {folder / ABOUT}")
    rows = _json_file(folder / f"{TABLE_I_METRIC}.json")
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise InputError(f"{folder / f'{TABLE_I_METRIC}.json'}: missing or empty: no per-frame values")
    methods = [m for m in rows[0] if m != "frame"]
    return Reloblur(Path(path), numbers, about, {m: [row.get(m) for row in rows] for m in methods})


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
        params = _parsed(_read(Path(params_file)), str(params_file), yaml.safe_load)
        found, workspace = _lookup(params, STRATEGY_KEY)
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
