"""DVC stage `evaluate@<task>`: val clips and trajectories -> metrics, plot data, sheets. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.evaluate import EVALUATE

if __name__ == "__main__":
    sys.exit(run_stage(EVALUATE, sys.argv[1:]))
