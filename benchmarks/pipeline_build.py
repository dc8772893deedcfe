"""Where the test suite's longest fixture spends its time: the pipeline tests' scratch project (every task at
160x96, tests/helpers/dvc_project.py) built by ``dvc repro`` as ``make test`` builds it, each stage process
timed by a ``python`` wrapper put first on the stages' PATH.

Prints each stage's wall seconds (mean, min and max over its tasks, and their sum), then the stages' total
against the whole build: the rest is DVC's own work (hashing, the lock, the run cache), git and copying the
sources. With ``--imports`` each stage also prints how long its imports took (the top-level sum of ``python
-X importtime``, which itself slows the imports a little): the share of a stage that is start-up, not work.

    OMP_NUM_THREADS=1 python benchmarks/pipeline_build.py [--imports] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.helpers, as pytest's rootdir import

from tests.helpers.dvc_project import BuiltPipeline, build

# the wrapper: the stage's start and end (bash's microsecond clock), the file of its import times or "-", and
# its arguments, one line per stage; the stage's other stderr goes on to DVC
WRAPPER = """#!/usr/bin/env bash
start=$EPOCHREALTIME
imports=-
if [ -n "{imports}" ]; then
    imports=$(mktemp -p "{folder}" imports.XXXXXX)
    "{python}" -X importtime "$@" 2> "$imports"
    status=$?
    grep -v '^import time:' "$imports" >&2
else
    "{python}" "$@"
    status=$?
fi
printf '%s %s %s %s\\n' "$start" "$EPOCHREALTIME" "$imports" "$*" >> "{folder}/stages.log"
exit $status
"""
TOP_LEVEL_IMPORT = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (?! )")  # the name unindented


def stage_name(arguments: str) -> str:
    """``stages/train.py sr --datasets ...`` -> ``train``."""
    return Path(arguments.split()[0]).stem


def import_seconds(path: Path) -> float:
    """The sum of a process's top-level imports' cumulative times, from its ``-X importtime`` lines."""
    found = (TOP_LEVEL_IMPORT.match(line) for line in path.read_text().splitlines())
    return sum(int(match.group(1)) for match in found if match) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", action="store_true", help="also time each stage's imports")
    parser.add_argument("--keep", type=Path, help="build here (a new folder) and keep it")
    args = parser.parse_args()
    if args.keep and args.keep.exists():
        parser.error(f"--keep {args.keep} exists: name a new folder")
    root = args.keep or Path(tempfile.mkdtemp(prefix="pipeline-build-"))
    folder = root / "wrapper"
    folder.mkdir(parents=True)
    wrapper = folder / "python"
    wrapper.write_text(
        WRAPPER.format(imports="yes" if args.imports else "", python=sys.executable, folder=folder)
    )
    wrapper.chmod(0o755)
    try:
        started = time.perf_counter()
        build(BuiltPipeline(root / "pipeline", root / "audit"), path_first=folder)
        total = time.perf_counter() - started
        seconds, imported = defaultdict(list), defaultdict(list)
        for line in (folder / "stages.log").read_text().splitlines():
            start, end, imports, arguments = line.split(" ", 3)
            seconds[stage_name(arguments)].append(float(end) - float(start))
            if imports != "-":
                imported[stage_name(arguments)].append(import_seconds(Path(imports)))
        print(f"{'stage':<16}{'runs':>5}{'mean s':>9}{'min':>7}{'max':>7}{'sum s':>8}", end="")
        print(f"{'imports s':>11}" if args.imports else "")
        for name, values in seconds.items():
            print(
                f"{name:<16}{len(values):>5}{statistics.mean(values):>9.2f}{min(values):>7.2f}"
                f"{max(values):>7.2f}{sum(values):>8.1f}",
                end="",
            )
            print(f"{statistics.mean(imported[name]):>11.2f}" if args.imports else "")
        in_stages, runs = sum(map(sum, seconds.values())), sum(map(len, seconds.values()))
        print(
            f"{runs} stage processes: {in_stages:.1f} s of the build's {total:.1f} s (the rest: DVC, git, copying)"
        )
        if args.imports:
            print(f"imports: {sum(map(sum, imported.values())):.1f} s of the stages' {in_stages:.1f} s")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
