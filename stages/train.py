"""DVC stage `train@<task>`: encoded clips -> models/<task>/pytorch_lora_weights.safetensors."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/train.py TASK")
    sys.exit(main(["train", sys.argv[1]]))
