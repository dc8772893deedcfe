"""DVC stage `score_baselines@<task>`: the scores of the methods that do not depend on the model. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.score_baselines import SCORE_BASELINES

if __name__ == "__main__":
    sys.exit(run_stage(SCORE_BASELINES, sys.argv[1:]))
