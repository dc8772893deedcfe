"""DVC stage `restore@<task>`: the LoRA's trajectories of the val clips -> data/restored/<task>/."""

import sys

from progrestore.entry import run_stage
from progrestore.infer.stage import run_restore

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/restore.py TASK")
    sys.exit(run_stage("restore", run_restore, sys.argv[1]))
