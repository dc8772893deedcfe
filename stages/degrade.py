"""DVC stage `degrade@<task>`: prepared images -> the task's dataset folder and contact sheet. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.degrade import DEGRADE

if __name__ == "__main__":
    sys.exit(run_stage(DEGRADE, sys.argv[1:]))
