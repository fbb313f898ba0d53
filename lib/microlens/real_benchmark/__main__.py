"""``python -m microlens.real_benchmark``: see :mod:`microlens.real_benchmark.cli`."""

import sys

from microlens.real_benchmark.cli import main

sys.exit(main())
