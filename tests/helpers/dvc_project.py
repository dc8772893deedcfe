"""A scratch DVC project of this repository at a tiny clip size, built once per test session.

Several test files use the built pipeline (the checks of its records, the experiments on copies of it).
Under ``make test``'s pytest-xdist workers each file may run on another worker, so the first worker to ask
builds it in the session's shared temporary folder under a file lock and the others wait for it: the 37
stages run once, not once per file or per worker. The built project is only read afterwards; a test that
commits, edits or reruns works on a copy (``copy_project``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock

from progrestore.entry import AUDIT_ENV
from progrestore.evaluate.plots_page import TEMPLATE as PAGE
from progrestore.tasks import names as task_names

REPO = Path(__file__).resolve().parents[2]
BUILT, FAILED = "built", "failed"  # the markers beside the project: it is complete; its build failed


def dvc_env(cwd: Path, path_first: Path | None = None, **extra_env: str) -> dict[str, str]:
    """The environment of a dvc command in ``cwd``: this interpreter's ``python`` first on PATH, after
    ``path_first`` when given (a folder whose ``python`` wraps it, as the stage-timing benchmark's)."""
    searched = [
        *([str(path_first)] if path_first else []),
        str(Path(sys.executable).parent),
        os.environ["PATH"],
    ]
    return (
        os.environ
        | {"MLFLOW_TRACKING_URI": f"sqlite:///{cwd / 'mlflow.db'}"}  # extra_env may set it empty: the default
        | extra_env
        | {
            "PATH": os.pathsep.join(searched),
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        }
    )


def run(
    args: list[str], cwd: Path, check: bool = True, path_first: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        args, cwd=cwd, env=dvc_env(cwd, path_first, **extra_env), capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(
    *args: str, cwd: Path, check: bool = True, path_first: Path | None = None, **extra_env: str
) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check, path_first, **extra_env)


def edit_params(repo: Path, **changes) -> None:
    """Set params.yaml keys, nested keys joined by ``__`` (``clip__width=160``)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = params
        for key in parents:
            node = node[key]
        node[leaf] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def copy_project(project: Path, copy: Path) -> Path:
    """A copy to edit, commit or rerun in. Left out: the MLflow store (its experiments' artifact locations
    point into ``project``) and DVC's temporary folder (locks and a state database that another worker's
    ``dvc status`` in ``project`` may be writing; the copy's DVC hashes its files afresh)."""
    shutil.copytree(
        project, copy, ignore=_ignore_in(project, "mlflow.db", "mlartifacts", ".dvc/tmp"), symlinks=True
    )
    return copy


def _ignore_in(root: Path, *relative: str):
    left_out = {root / path for path in relative}

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if Path(folder) / name in left_out}

    return ignore


@dataclass(frozen=True)
class BuiltPipeline:
    repo: Path  # the project after `dvc repro`: read it, copy it to change it
    audit: Path  # where that repro's stages recorded the params keys they read and the modules they loaded


def built_pipeline(shared: Path) -> BuiltPipeline:
    """The project under ``shared`` (a folder every worker of the session sees), built by whichever caller
    comes first; a failed build is reported to every later caller without running it again."""
    built = BuiltPipeline(shared / "pipeline", shared / "audit")
    with FileLock(shared / "pipeline.lock"):
        if (shared / FAILED).exists():
            raise AssertionError(
                f"the pipeline's build failed earlier in this session:\n{(shared / FAILED).read_text()}"
            )
        if not (shared / BUILT).exists():
            for folder in (built.repo, built.audit):
                shutil.rmtree(folder, ignore_errors=True)  # a worker killed while building
            try:
                build(built)
            except BaseException as error:
                (shared / FAILED).write_text(str(error))
                raise
            (shared / BUILT).touch()
    return built


def build(built: BuiltPipeline, path_first: Path | None = None) -> None:
    """The scratch project at ``built.repo``, its stages run by ``dvc repro`` (with ``path_first`` first
    on their PATH, see :func:`dvc_env`)."""
    root = built.repo
    root.mkdir(parents=True)
    built.audit.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    for folder in ("stages", "src"):
        shutil.copytree(
            REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    run(["git", "init", "-q"], root)
    dvc("init", "-q", cwd=root)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")  # the committed cache link types
    shutil.copy(REPO / PAGE, root / PAGE)  # and the offline plots page it names (made by make setup)
    edit_params(
        root,
        clip__width=160,
        clip__height=96,
        data__sample__train=["astronaut", "coffee"],
        data__sample__val=["chelsea"],
        tasks=list(task_names()),  # the paper's three and mixed, beyond the paper
    )
    dvc("repro", cwd=root, path_first=path_first, **{AUDIT_ENV: str(built.audit)})
