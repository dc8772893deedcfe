"""DVC stages `encode_video@<task>` / `encode_text@<task>`: data/encoded/<task>/{video,text}.safetensors."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python stages/encode.py video|text TASK")
    sys.exit(main(["encode", sys.argv[1], sys.argv[2]]))
