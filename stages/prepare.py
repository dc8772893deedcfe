"""DVC stage `prepare`: source images (params `data`, `clip`) -> data/images/{train,val}/*.png."""

import sys

from progrestore.cli import main

if __name__ == "__main__":
    sys.exit(main(["prepare"]))
