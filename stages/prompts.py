"""DVC stage `prompts@<task>`: prompt_uniform.txt, prompt_scene.txt, prompt.txt, prompts.jsonl per split. Arguments: ``-h``."""

import sys

from progrestore.entry import run_stage
from progrestore.stages.prompts import PROMPTS

if __name__ == "__main__":
    sys.exit(run_stage(PROMPTS, sys.argv[1:]))
