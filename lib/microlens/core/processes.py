"""Process pools for the project's own parallel work, usable from any script.

The classical peer's fits, the ``features`` kind's prefix features and the simulation benchmark
run module-level functions of :mod:`microlens` in a :class:`~concurrent.futures.
ProcessPoolExecutor`. Its children start from a clean state (forkserver, else spawn: no fork of
a parent that may hold torch or OpenMP threads, no VBBinaryLensing state carried over), and
:mod:`multiprocessing` would then re-run the caller's ``__main__`` in every child. That fails for
a script read from standard input (``python - < script.py``: a ``__main__`` of ``<stdin>`` that
no file holds) and re-runs, in every child, a script without an
``if __name__ == "__main__":`` guard. Since the functions these pools run live in
:mod:`microlens` and never need the caller's ``__main__``, :func:`clean_process_pool` hides it
from the children while the pool lives: the same call works from a file, standard input,
``python -c``, a notebook or ``python -m``. (Data-set generation has worker processes of its
own, :mod:`microlens.data.store`, for the same reason.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

_MISSING = object()


def clean_process_context():
    """Process start method whose children carry no VBBinaryLensing state from this process."""
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["microlens.simulation.simulate",
                                    "microlens.simulation.detectability"])
        return ctx
    return mp.get_context("spawn")


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """While the block runs, new :mod:`multiprocessing` children do not import ``__main__``.

    :mod:`multiprocessing` tells a spawned or forkserver child to import the parent's
    ``__main__`` from ``__main__.__spec__`` or ``__main__.__file__``; without both (as in an
    interactive session) the child imports nothing of it. Both are taken off ``__main__`` for
    the block and put back after it, so use it only around pools that run functions of
    importable modules (never functions defined in ``__main__``).
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: main.__dict__.get(name, _MISSING) for name in ("__spec__", "__file__")}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                main.__dict__.pop(name, None)
            else:
                main.__dict__[name] = value


@contextmanager
def clean_process_pool(max_workers: int) -> Iterator[ProcessPoolExecutor]:
    """A :class:`~concurrent.futures.ProcessPoolExecutor` on :func:`clean_process_context` whose
    children never import the caller's ``__main__`` (see the module docstring).

    Parameters
    ----------
    max_workers : int
        Worker processes.

    Yields
    ------
    ProcessPoolExecutor
        Shut down (waiting for its work) when the block ends. Submit module-level functions of
        importable modules only.
    """
    with main_module_hidden(), ProcessPoolExecutor(max_workers=max_workers,
                                                   mp_context=clean_process_context()) as pool:
        yield pool


__all__ = ["clean_process_context", "clean_process_pool", "main_module_hidden"]
