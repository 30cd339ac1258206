"""``python -m crmlake <job> ...``: the same command line as ``crmlake``."""

import sys

from crmlake.core.cli import main

sys.exit(main())
