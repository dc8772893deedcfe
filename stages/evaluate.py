"""DVC stage `evaluate@<task>`: val clips -> metrics/<task>.json, metrics/<task>/, reports/evaluate/<task>*.png."""

import sys

from progrestore.entry import run_stage
from progrestore.evaluate.stage import run_evaluate

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/evaluate.py TASK")
    sys.exit(run_stage("evaluate", run_evaluate, sys.argv[1]))
