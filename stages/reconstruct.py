"""DVC stage `reconstruct@<task>`: the model's VAE reconstructions of the val clips. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.reconstruct import RECONSTRUCT

if __name__ == "__main__":
    sys.exit(run_stage(RECONSTRUCT, sys.argv[1:]))
