"""DVC stage `degrade@<task>`: data/images -> data/datasets/<task>/{train,val}/ (params `degrade.<task>`)."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/degrade.py TASK")
    sys.exit(main(["degrade", sys.argv[1]]))
