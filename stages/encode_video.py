"""DVC stage `encode_video@<task>`: the train clips' latents (video.safetensors). Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.encode import ENCODE_VIDEO

if __name__ == "__main__":
    sys.exit(run_stage(ENCODE_VIDEO, sys.argv[1:]))
