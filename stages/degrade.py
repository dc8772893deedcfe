"""DVC stage `degrade@<task>`: data/images -> data/datasets/<task>/{train,val}/ (params `degrade.<task>`)."""

import sys

from progrestore.data.dataset import run_degrade
from progrestore.entry import run_stage

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/degrade.py TASK")
    sys.exit(run_stage("degrade", run_degrade, sys.argv[1]))
