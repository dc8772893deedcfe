"""DVC stage `prepare`: source images (params `data`, `clip`) -> data/images/{train,val}/*.png."""

import sys

from progrestore.data.prepare import run_prepare
from progrestore.entry import run_stage

if __name__ == "__main__":
    if len(sys.argv) != 1:
        sys.exit("usage: python stages/prepare.py")
    sys.exit(run_stage("prepare", run_prepare))
