"""DVC stage `prompts@<task>`: prompt_uniform.txt, prompt_scene.txt, prompt.txt, prompts.jsonl per split."""

import sys

from progrestore.entry import run_stage
from progrestore.prompts.build import run_prompts

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/prompts.py TASK")
    sys.exit(run_stage("prompts", run_prompts, sys.argv[1]))
