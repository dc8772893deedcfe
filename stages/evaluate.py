"""DVC stage `evaluate@<task>`: val clips -> metrics/<task>.json, metrics/plots/<task>/, reports/evaluate/<task>.png."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python stages/evaluate.py TASK")
    sys.exit(main(["evaluate", sys.argv[1]]))
