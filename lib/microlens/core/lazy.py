"""Lazy re-exports for the package's ``__init__`` modules.

A subpackage names its public objects once, with the module each lives in; nothing is imported
until a name is used, so importing ``microlens.simulation`` costs no torch import and no module
imports another's package before its own modules are ready.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, names: Mapping[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``, whose public ``names`` map to the
    submodule (relative to ``package``) that defines each.

    Examples
    --------
    >>> __getattr__, __dir__, __all__ = lazy_exports(__name__, {"SimulationConfig": "simulate"})
    """
    exported = dict(names)

    def __getattr__(name: str) -> object:
        if name not in exported:
            raise AttributeError(f"module {package!r} has no attribute {name!r}; it exports "
                                 f"{', '.join(sorted(exported))}")
        module = importlib.import_module(f"{package}.{exported[name]}")
        return getattr(module, name)

    def __dir__() -> list[str]:
        return sorted(exported)

    return __getattr__, __dir__, sorted(exported)
