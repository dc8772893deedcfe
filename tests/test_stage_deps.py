"""dvc.yaml names exactly the code each stage runs: the import closure of its stage script.

A stage's code deps must be files (no folders, which over-cover) and equal the closure of every
``progrestore`` import reachable from the script, at module level or inside functions. The imports
the source cannot show are those made by name: ``tasks.get(task)`` loading the task's module may add the
stage's own task module and what it imports; the backbone registry is followed for every family and the
metric registry for every metric (see :func:`registry_imports`). The pipeline test checks with the modules each stage really loaded (and the
params keys it really read) that nothing else is missing.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

SRC = REPO / "src"
TASK_MODULE = "src/progrestore/tasks/{task}.py"


def module_file(name: str) -> Path | None:
    """The source file of module ``name`` under src/, or None when ``name`` is not a module there."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def registry_imports() -> dict[Path, set[str]]:
    """What the backbone and metric registries import by name, by the file that does it: listing the
    profiles (``model.profiles``) imports every family's ``profiles`` module, loading a model
    (``model.families``) the specification module the profile's family names, here every family's, and
    listing the metrics (``evaluate.metrics``) every metric's module."""
    from progrestore.evaluate import metrics
    from progrestore.model import profiles

    families = [profiles.family_named(name) for name in profiles.family_names()]
    return {
        module_file("progrestore.evaluate.metrics"): {
            f"progrestore.evaluate.metrics.{m.name}" for m in metrics.metrics()
        },
        module_file("progrestore.model.profiles"): {f"progrestore.model.{f.name}.profiles" for f in families},
        module_file("progrestore.model.families"): {f.specification.partition(":")[0] for f in families},
    }


def imported_modules(path: Path) -> set[str]:
    """Every progrestore module that ``path`` imports, anywhere in the file (or by name, through the
    backbone registry)."""
    found = set(registry_imports().get(path, ()))
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; use absolute progrestore imports"
            found.add(node.module or "")
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "progrestore" and module_file(name)}


def import_closure(entry: Path) -> set[str]:
    """Repository-relative files run when ``entry`` runs: it, the modules it reaches, their packages."""
    files, todo = {entry}, [entry]
    while todo:
        for name in imported_modules(todo.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                path = module_file(".".join(parts[:depth]))
                if path not in files:
                    files.add(path)
                    todo.append(path)
    return {path.relative_to(REPO).as_posix() for path in files}


@dataclass(frozen=True)
class StageInstance:
    name: str
    item: str | None
    cmd: str
    deps: tuple[str, ...]
    params: tuple[str, ...]

    @property
    def entry(self) -> Path:
        scripts = [word for word in self.cmd.split() if word.endswith(".py")]
        assert len(scripts) == 1, f"{self.name}: expected one stage script in {self.cmd!r}"
        return REPO / scripts[0]

    @property
    def code_deps(self) -> set[str]:
        return {dep for dep in self.deps if dep.startswith(("src/", "stages/"))}


def _render(value, names: dict[str, str]):
    """``value`` with dvc.yaml's ``${name}`` references (its vars and the foreach item) filled in."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_render(v, names) for v in value]
    if isinstance(value, dict):
        return {_render(k, names): _render(v, names) for k, v in value.items()}
    return value


def _names(entries: list) -> tuple[str, ...]:
    return tuple(e if isinstance(e, str) else next(iter(e)) for e in entries)


def stage_instances(dvc_yaml: dict, tasks: list[str]) -> list[StageInstance]:
    instances = []
    folders = {key: value for entry in dvc_yaml.get("vars", []) for key, value in entry.items()}
    for name, stage in dvc_yaml["stages"].items():
        for item in tasks if "foreach" in stage else [None]:
            names = folders | ({"item": item} if item else {})
            body = _render(stage["do"] if "foreach" in stage else stage, names)
            full = f"{name}@{item}" if item else name
            deps, params = _names(body.get("deps", [])), _names(body.get("params", []))
            instances.append(StageInstance(full, item, body["cmd"], deps, params))
    return instances


def dependency_problems(stage: StageInstance) -> list[str]:
    """What is wrong with ``stage``'s code deps: missing, superfluous or folder entries."""
    closure = import_closure(stage.entry)
    declared = stage.code_deps
    allowed = closure | (import_closure(REPO / TASK_MODULE.format(task=stage.item)) if stage.item else set())
    problems = [f"{stage.name}: missing dep {path}" for path in sorted(closure - declared)]
    problems += [
        f"{stage.name}: dep {path} is not code the stage runs" for path in sorted(declared - allowed)
    ]
    problems += [
        f"{stage.name}: dep {path} is not a file" for path in sorted(declared) if not (REPO / path).is_file()
    ]
    return problems


@pytest.fixture(scope="module")
def stages() -> list[StageInstance]:
    tasks = yaml.safe_load((REPO / "params.yaml").read_text())["tasks"]
    return stage_instances(yaml.safe_load((REPO / "dvc.yaml").read_text()), tasks)


def test_every_stage_names_exactly_the_code_it_imports(stages):
    assert len(stages) == 1 + 9 * 3
    problems = [problem for stage in stages for problem in dependency_problems(stage)]
    assert not problems, "\n".join(problems)


def test_a_planted_omission_is_reported(stages):
    degrade = next(s for s in stages if s.name == "degrade@sr")
    planted = StageInstance(
        degrade.name,
        degrade.item,
        degrade.cmd,
        tuple(d for d in degrade.deps if not d.endswith("config.py")),
        (),
    )
    assert dependency_problems(planted) == ["degrade@sr: missing dep src/progrestore/config.py"]
    extra = StageInstance(
        degrade.name, degrade.item, degrade.cmd, (*degrade.deps, "src/progrestore/tracking.py"), ()
    )
    assert dependency_problems(extra) == [
        "degrade@sr: dep src/progrestore/tracking.py is not code the stage runs"
    ]


def test_the_closure_follows_imports_inside_functions_and_packages():
    closure = import_closure(REPO / "src/progrestore/cli.py")
    assert "src/progrestore/infer/image.py" in closure  # imported inside cmd_restore only
    assert "src/progrestore/data/__init__.py" in closure  # the package of an imported module


def test_every_stage_depends_on_the_parameter_module(stages):
    """A comment added to config.py marks every stage stale (asserted end to end in test_pipeline)."""
    assert all("src/progrestore/config.py" in import_closure(s.entry) for s in stages)
