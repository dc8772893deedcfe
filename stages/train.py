"""DVC stage `train@<task>`: encoded clips -> the LoRA (pytorch_lora_weights.safetensors, train.json). Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.train import TRAIN

if __name__ == "__main__":
    sys.exit(run_stage(TRAIN, sys.argv[1:]))
