"""DVC stage `restore@<task>`: the LoRA's trajectories of the val clips. Arguments: ``-h``.

With ``PROGRESTORE_PROCESSES=N`` in the environment it runs under accelerate's launcher on N processes."""

import sys

from progrestore.stages.restore import restore_script

if __name__ == "__main__":
    sys.exit(restore_script(__file__, sys.argv[1:]))
