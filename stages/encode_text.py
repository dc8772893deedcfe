"""DVC stage `encode_text@<task>`: the prompts' embeddings (text.safetensors). Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.encode import ENCODE_TEXT

if __name__ == "__main__":
    sys.exit(run_stage(ENCODE_TEXT, sys.argv[1:]))
