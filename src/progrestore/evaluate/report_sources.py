"""The sources of ``progrestore report`` (:mod:`.paper_report`): each prompt strategy's results, read from
a folder laid out like the pipeline's metrics folder, or a git revision or DVC experiment name (its files
read from git, where ``cache: false`` keeps the metrics), and checked against their record.

A revision and the workspace's own metrics folder carry a record of how their files were made, and it is
checked: their params.yaml must set ``prompts.strategy`` to the strategy the source is given for, each
task's files must be the ones their dvc.lock records, and every stage upstream of those (followed through
dvc.lock's hashes) that records ``prompts.strategy`` must have run with it. A task that fails is stale: it
is left out (refused when asked for by name) with the ``dvc exp run`` that makes it. A plain folder has no
such record: its strategy is labelled as given on the command line, not verified. Also here: the two
results of a task put side by side (:func:`compare`), and the ReLoBlur report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from progrestore import tasks as task_registry
from progrestore.config import PARAMS_FILE
from progrestore.errors import InputError, ParamsError
from progrestore.evaluate.metrics import metrics
from progrestore.evaluate.protocol import ABOUT
from progrestore.evaluate.published import TABLE_I_METRIC
from progrestore.model.profiles import profile_named
from progrestore.verify import folder_md5

STRATEGY_KEY = "prompts.strategy"
PROMPTED = "model"  # the one method whose trajectories the prompts reach (the restore stage's)
LOCK_FILE = "dvc.lock"
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


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def lookup(tree: object, key: str) -> tuple[bool, object]:
    """The dotted ``key`` in ``tree``, whose own keys may be dotted too (dvc.lock's ``prompts.strategy``)."""
    if not isinstance(tree, dict):
        return False, None
    if key in tree:
        return True, tree[key]
    for name, subtree in tree.items():
        if isinstance(name, str) and key.startswith(f"{name}."):
            return lookup(subtree, key[len(name) + 1 :])
    return False, None


def parsed(data: bytes | None, what: str, parse: Callable[[bytes], object]) -> object:
    if data is None:
        return None
    try:
        return parse(data)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        raise InputError(f"{what}: cannot be parsed ({err.__class__.__name__})") from None


def _json(files: Files, path: str, where: str) -> object:
    return parsed(files.get(path), f"{path} in {where}", json.loads)


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
            found, value = lookup(params, STRATEGY_KEY)
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
    found, value = lookup(params, STRATEGY_KEY)
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
        params = parsed(read_file(Path(params_file)), str(params_file), yaml.safe_load)
        lock = parsed(read_file(root / LOCK_FILE), str(root / LOCK_FILE), yaml.safe_load)
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
    params = parsed(files.get(PARAMS_FILE.name), f"{PARAMS_FILE.name} at {where}", yaml.safe_load)
    lock = parsed(files.get(LOCK_FILE), f"{LOCK_FILE} at {where}", yaml.safe_load)
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


def read_file(path: Path) -> bytes | None:
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
    return parsed(read_file(path), str(path), json.loads)


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
