"""The three classes every part of the product speaks of, in label order."""

CLASS_NAMES: tuple[str, ...] = ("no_event", "pspl", "binary")
"""Class keys (in records, metrics and code): 0 no lensing event (a constant star or a variable
star, :mod:`microlens.simulation.variables`), 1 single lens (PSPL), 2 binary lens."""

CLASS_LABELS: tuple[str, ...] = ("no event", "single lens (PSPL)", "binary lens")
"""Display names of the classes, in label order, for legends, axes, tables and widgets."""
