"""DVC stage `prompts@<task>`: prompt_uniform.txt, prompt_scene.txt, prompt.txt, prompts.jsonl per split."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/prompts.py TASK")
    sys.exit(main(["prompts", sys.argv[1]]))
