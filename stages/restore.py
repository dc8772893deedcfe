"""DVC stage `restore@<task>`: the LoRA's trajectories of the val clips. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.infer.stage import RESTORE

if __name__ == "__main__":
    sys.exit(run_stage(RESTORE, sys.argv[1:]))
