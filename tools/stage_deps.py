"""Generate the code deps of dvc.yaml: each stage's ``src/`` deps are the import closure of its script.

``python tools/stage_deps.py`` rewrites, in place, only the ``- src/...`` lines of each stage's ``deps:``
list (every comment, blank line, other dep and the layout stay as they are); ``--check`` changes nothing,
prints a unified diff and exits 1 when dvc.yaml is not current. ``make deps`` runs the rewrite.

The closure is every ``progrestore`` import reachable from the script, at module level or inside
functions, and the package ``__init__`` of each. The imports the source cannot show are those made by
name: the backbone registry is followed for every family and the metric registry for every metric (see
:func:`registry_imports`), and a stage whose code calls ``tasks.get(...)`` loads its own task module,
written ``src/progrestore/tasks/${item}.py`` in a foreach stage, with what every task module imports.
This tool lives outside the library, so it is no stage's dependency itself.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
TASK_MODULE = "src/progrestore/tasks/{task}.py"
TEMPLATED_TASK_MODULE = TASK_MODULE.format(task="${item}")


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
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
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
    backbone and metric registries)."""
    found = set(registry_imports().get(path, ()))
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level != 0:
                raise ValueError(f"{path}: relative import; use absolute progrestore imports")
            found.add(node.module or "")
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "progrestore" and module_file(name)}


def _closure_files(entry: Path) -> set[Path]:
    files, todo = {entry}, [entry]
    while todo:
        for name in imported_modules(todo.pop()):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__ too
                path = module_file(".".join(parts[:depth]))
                if path not in files:
                    files.add(path)
                    todo.append(path)
    return files


def import_closure(entry: Path) -> set[str]:
    """Repository-relative files run when ``entry`` runs: it, the modules it reaches, their packages."""
    return {path.relative_to(REPO).as_posix() for path in _closure_files(entry)}


def calls_task_registry(path: Path) -> bool:
    """Whether ``path`` loads a task module by name: a ``tasks.get(...)`` call."""
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "tasks"
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
    )


def stage_script(cmd: str) -> Path:
    scripts = [word for word in cmd.split() if word.endswith(".py")]
    if len(scripts) != 1:
        raise ValueError(f"expected one stage script in {cmd!r}")
    return REPO / scripts[0]


def src_deps(cmd: str, tasks: list[str] | None) -> list[str]:
    """The sorted ``src/`` deps of a stage running ``cmd``; ``tasks`` for a foreach stage (over tasks):
    then a stage that loads its task module names it as ``src/progrestore/tasks/${item}.py``, with the
    files every task module's closure shares."""
    entry = stage_script(cmd)
    deps = {p for p in import_closure(entry) if p.startswith("src/")}
    if tasks and any(calls_task_registry(path) for path in _closure_files(entry)):
        shared = set.intersection(
            *(import_closure(REPO / TASK_MODULE.format(task=t)) - {TASK_MODULE.format(task=t)} for t in tasks)
        )
        deps |= shared | {TEMPLATED_TASK_MODULE}
    return sorted(deps)


_STAGE = re.compile(r"^  ([\w-]+):\s*(#.*)?$")
_DEPS = re.compile(r"^(\s+)deps:\s*(#.*)?$")
_ITEM = re.compile(r"^(\s+)- (\S.*?)\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def rewrite(text: str, tasks: list[str], deps_of=src_deps) -> str:
    """``text`` (a dvc.yaml) with each stage's ``src/`` deps lines replaced by ``deps_of(cmd, tasks or
    None)``, at the place of the first one (else after the last ``stages/`` dep, else at the list's end);
    every other line stays byte for byte."""
    stages = yaml.safe_load(text)["stages"]
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i, in_stages, stage = 0, False, None
    while i < len(lines):
        line = lines[i]
        if line.rstrip() == "stages:":
            in_stages = True
        elif in_stages and _indent(line) == 0 and line.strip() and not line.startswith("#"):
            in_stages = False
        match = _STAGE.match(line) if in_stages else None
        if match:
            stage = match.group(1)
        deps_match = _DEPS.match(line) if in_stages and stage else None
        if not deps_match:
            out.append(line)
            i += 1
            continue
        out.append(line)
        i += 1
        level = len(deps_match.group(1))
        block: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or lines[i].lstrip().startswith("#") or _indent(lines[i]) > level
        ):
            block.append(lines[i])
            i += 1
        while block and not block[-1].strip():  # a blank line after the list belongs to what follows
            i -= 1
            block.pop()
        body = stages[stage]
        foreach = "foreach" in body
        wanted = deps_of((body["do"] if foreach else body)["cmd"], tasks if foreach else None)
        items = [(n, _ITEM.match(b)) for n, b in enumerate(block)]
        items = [(n, m) for n, m in items if m]
        if not items:
            raise ValueError(f"{stage}: its deps list has no items")
        prefix = items[0][1].group(1)
        src = [n for n, m in items if m.group(2).startswith("src/")]
        if src:
            at = src[0]
        else:
            scripts = [n for n, m in items if m.group(2).startswith("stages/")]
            at = (scripts[-1] if scripts else items[-1][0]) + 1
        newline = "\r\n" if line.endswith("\r\n") else "\n"
        kept = [b for n, b in enumerate(block) if n not in src]
        at -= sum(1 for n in src if n < at)
        kept[at:at] = [f"{prefix}- {dep}{newline}" for dep in wanted]
        out.extend(kept)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if stale")
    parser.add_argument("--dvc-yaml", type=Path, default=REPO / "dvc.yaml")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = parser.parse_args(argv)
    text = args.dvc_yaml.read_text()
    new = rewrite(text, yaml.safe_load(args.params.read_text())["tasks"])
    if new == text:
        return 0
    if args.check:
        sys.stdout.writelines(
            difflib.unified_diff(
                text.splitlines(keepends=True),
                new.splitlines(keepends=True),
                "dvc.yaml",
                "dvc.yaml (generated)",
            )
        )
        print(f"{args.dvc_yaml}: code deps are not current; run `make deps`", file=sys.stderr)
        return 1
    args.dvc_yaml.write_text(new)
    print(f"{args.dvc_yaml}: code deps rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
