"""``python -m microlens.bench ...``: see :mod:`microlens.bench.cli`."""

from microlens.bench.cli import main

raise SystemExit(main())
