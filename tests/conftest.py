"""Shared fixtures: small datasets generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest worker per core (./run_all.sh test): each computes on one thread, and so do the
    # notebook kernels and processes it starts, or two workers would fight over every core.
    for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_variable, "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from microlens import SimulationConfig, generate_dataset, open_dataset

# Property-based tests (hypothesis): the whole suite (plain `pytest`, ./run_all.sh test, CI)
# searches with the "thorough" profile, a selection such as the fast tier (-m "not slow") with
# "fast": both derandomized (the same examples on every clone), 100 and 25 examples a test.
# HYPOTHESIS_PROFILE=explore draws fresh random examples for a bug hunt by hand.
_PROFILE_OPTIONS = {"deadline": None, "print_blob": True,
                    "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("fast", max_examples=25, derandomize=True, **_PROFILE_OPTIONS)
settings.register_profile("thorough", max_examples=100, derandomize=True, **_PROFILE_OPTIONS)
settings.register_profile("explore", max_examples=1000, **_PROFILE_OPTIONS)


def pytest_configure(config):
    """Load the hypothesis profile before any test module is imported (see above)."""
    chosen = "fast" if config.getoption("markexpr", "") else "thorough"
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or chosen)


# Tests that share a costly session fixture run on one pytest worker, so it is built once: the
# notebook chain and the tests of the tiny trained run it starts from, and the kinds' chains.
SHARED_FIXTURES = {"notebook_chain": "eval_run", "eval_run": "eval_run",
                   "kind_chains": "kind_chains",
                   "tiny": "studies",  # test_studies.py's two-cell study, run once a module
                   "package_graph": "package_graph"}  # the package parsed once, one worker

# Tests that start from a model trained (or a data set injected) by a session or module fixture
# belong to the slow tier, whatever their own cost: the fast tier (./run_all.sh test fast) never
# pays for a training. Each fixture's module also has fast tests of the same code on
# hand-made inputs.
TRAINED_FIXTURES = ("eval_run", "notebook_chain", "kind_chains", "tiny", "features_run",
                    "pretrained", "pretrained_run", "generated")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Mark every hypothesis test ``property`` (what the thorough run selects) and every test
    on a trained fixture ``slow``, and put the tests that share a costly session fixture in
    one ``xdist_group``."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.property)
        if any(name in TRAINED_FIXTURES for name in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
        group = next((group for name, group in SHARED_FIXTURES.items()
                      if name in getattr(item, "fixturenames", ())), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            if config.getoption("loadgroup", False):  # False without pytest-xdist
                _name_group(item, group)


def _name_group(item, group: str) -> None:
    """Put ``@group`` at the end of the test's id, where pytest-xdist's loadgroup scheduler
    reads it. pytest-xdist 3.8 writes it to ``item._nodeid``, which pytest 9.2 no longer reads
    (its id is ``item._id``): without this every group would be scattered over the workers."""
    if "@" in item.nodeid.rsplit("]", 1)[-1] or not hasattr(item, "_id"):
        return  # already named, or a pytest whose id pytest-xdist sets itself
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")


def params_equal(a: np.ndarray, b: np.ndarray) -> bool:
    """Structured parameter tables equal column by column (NaN equals NaN)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return all(np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f")
               for name in a.dtype.names)


def pytest_report_header(config):
    """Say up front whether static figure export (PNG, PDF) is tested on this machine."""
    from microlens.reports import find_browser

    browser = find_browser()
    if browser is None:
        return ("static figure export: NO Chromium found, PNG/PDF checks are skipped "
                "(./run_all.sh installs chromium when run as root)")
    return f"static figure export: Chromium at {browser}"


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Give every test the process's torch thread count back: some measure on one thread in
    process (bench workers), and the count changes the order of sums in the last bits."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread (restored by ``_restore_torch_threads``)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_config() -> SimulationConfig:
    return SimulationConfig(**SHARED_SETS["small"][0])


SHARED_SETS = {
    "small": (dict(n_per_class=30, n_epochs=300, seed=11, topology="distinct",
                   detectability=True), 16),
    "train": (dict(n_per_class=120, n_epochs=200, topology="stellar", seed=5,
                   detectability=False), 60),
    "eval": (dict(n_per_class=80, n_epochs=200, topology="stellar", seed=7,
                  detectability=True, split_fractions=(0.6, 0.2, 0.2)), 45),
}
"""The session's data sets: settings and chunk size (small_store, train_store, eval_store)."""


def _make_shared(root: Path, name: str) -> Path:
    """Make (or find) the shared data set ``name`` under ``root`` (under a lock)."""
    import fcntl

    settings, chunk_size = SHARED_SETS[name]
    folder = root / "shared-data"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return generate_dataset(SimulationConfig(**settings), folder / name, workers=2,
                                chunk_size=chunk_size, progress=False)  # existing: reused


def shared_dataset(tmp_path_factory, name: str):
    """A session's data set made once for all its pytest workers, in the run's shared
    temporary directory: by the controller while the workers start (a whole-suite run, see
    pytest_sessionstart) or by the first worker that asks. Tests read these sets and never
    write into them (they corrupt copies: copy_dataset)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # basetemp/../ is this run's, shared by workers
        root = root.parent
    return open_dataset(_make_shared(root, name))


@pytest.hookimpl(trylast=True)  # after pytest-xdist has started its workers
def pytest_sessionstart(session):
    """Under pytest-xdist, a run of the whole suite or tier has the controller make the shared
    data sets while its workers import and collect, so no worker waits idle for another."""
    config = session.config
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    tests = Path(__file__).resolve().parent
    if any(Path(arg.split("::")[0]).resolve() != tests for arg in config.args):
        return  # a selection of files: make only what its tests ask for
    root = config._tmp_path_factory.getbasetemp()
    for name in SHARED_SETS:
        _make_shared(root, name)


@pytest.fixture(scope="session")
def small_store(tmp_path_factory, small_config):
    return shared_dataset(tmp_path_factory, "small")


@pytest.fixture(scope="session")
def train_store(tmp_path_factory):
    """A small three-class set (stellar binaries: mostly detectable) for training tests."""
    return shared_dataset(tmp_path_factory, "train")


def copy_dataset(store, destination):
    """A writable copy of a dataset directory (to corrupt on purpose)."""
    import shutil

    shutil.copytree(store.path, destination)
    return destination


@pytest.fixture(scope="session")
def eval_store(tmp_path_factory):
    """A three-class set with detectability, for evaluation and analysis tests."""
    return shared_dataset(tmp_path_factory, "eval")


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory, eval_store):
    """A tiny model trained for a few epochs on ``eval_store`` (a run directory)."""
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig

    config = TrainConfig(dataset=str(eval_store.path), run_name="tiny",
                         runs_dir=str(tmp_path_factory.mktemp("runs")),
                         model=ModelConfig(d_model=32, n_heads=4, n_layers=2, d_ff=64, window=16,
                                           dropout=0.0),
                         epochs=4, batch_size=32, learning_rate=3e-3, patience=0, seed=1)
    return train_on_one_thread(config)


def train_on_one_thread(config):
    """``train(config)`` on one torch thread (the count restored after): tiny models gain
    nothing from two, and two threads on a busy two-core machine cost several times more."""
    import torch

    from microlens.training.train import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(config, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def notebook_chain(tmp_path_factory, eval_store, eval_run):
    """Notebooks 01-07 with tiny parameters, each run once per session when first asked for
    (``chain.ran("03_evaluate")``); see ``tests/chain.py``."""
    from chain import Chain

    return Chain(tmp_path_factory.mktemp("chain"), eval_store.path, eval_run)


@pytest.fixture(scope="session")
def kind_chains(tmp_path_factory, eval_store):
    """02_train and the notebooks after it for each model kind on ``eval_store``, each run
    once per session when first asked for (``kind_chains.ran("gru", "04_attention")``)."""
    from chain import KindChains

    return KindChains(tmp_path_factory.mktemp("kinds"), eval_store)
