"""DVC stage `restore@<task>`: the LoRA's trajectories of the val clips -> data/restored/<task>/."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/restore.py TASK")
    sys.exit(main(["restore-clips", sys.argv[1]]))
