"""DVC stages `encode_video@<task>` / `encode_text@<task>`: data/encoded/<task>/{video,text}.safetensors."""

import sys

from progrestore.entry import run_stage
from progrestore.train.encode import run_encode_text, run_encode_video

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("video", "text"):
        sys.exit("usage: python stages/encode.py video|text TASK")
    body = run_encode_video if sys.argv[1] == "video" else run_encode_text
    sys.exit(run_stage("encode", body, sys.argv[2]))
