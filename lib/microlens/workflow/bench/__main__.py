"""``python -m microlens.workflow.bench ...``: see :mod:`microlens.workflow.bench.cli`."""

from microlens.workflow.bench.cli import main

raise SystemExit(main())
