"""DVC stage `prepare`: source images (params `data`, `clip`) -> the prepared images' folder. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.prepare import PREPARE

if __name__ == "__main__":
    sys.exit(run_stage(PREPARE, sys.argv[1:]))
