"""``python -m microlens.realdata.benchmark``: see :mod:`microlens.realdata.benchmark.cli`."""

import sys

from microlens.realdata.benchmark.cli import main

sys.exit(main())
