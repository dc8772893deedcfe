"""DVC stage `train@<task>`: encoded clips -> models/<task>/pytorch_lora_weights.safetensors."""

import sys

from progrestore.entry import run_stage
from progrestore.train.stage import run_train_stage

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/train.py TASK")
    sys.exit(run_stage("train", run_train_stage, sys.argv[1]))
