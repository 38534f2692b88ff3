"""``python -m cohortflow.cli``: the same program as ``cohortflow``."""

import sys

from cohortflow.cli.commands import main

sys.exit(main())
