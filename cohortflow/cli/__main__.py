"""``python -m cohortflow.cli``: the same program as ``cohortflow``."""

import sys

from cohortflow.cli.commands import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    sys.exit(main())
