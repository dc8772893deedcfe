"""``python -m progrestore``: the ``progrestore`` command."""

import sys

from progrestore.cli import main

sys.exit(main())
