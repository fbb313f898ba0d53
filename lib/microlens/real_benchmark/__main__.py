"""``python -m microlens.real_benchmark``: see :mod:`microlens.real_benchmark.cli`."""

import sys

from .cli import main

sys.exit(main())
