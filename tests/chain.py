"""The notebook chain 01-08, run once per test session with tiny parameters (HTML figures only).

The notebook tests (``test_notebook_0*.py``) and the figure rebuild tests (``test_figures.py``)
assert on what this one run recorded, instead of each running the notebooks again. 01 makes
its own tiny data set; 02 trains a tiny run on the session's ``eval_store``; 03-08 read the
session's ``eval_run`` (a run on ``eval_store``), so their records can be checked against it
(08 scores a few events of the shipped real subset).

Layout under the chain's root: ``data/`` (01's data set), ``runs/smoke/`` (02's run),
``out/`` (every record and figure, as one study cell), ``<notebook>.executed.ipynb``.
"""

from __future__ import annotations

import json
from pathlib import Path

from notebook_form import NOTEBOOKS, execute_without_errors

from microlens.models.registry import KINDS

CHAIN_NOTEBOOKS = ("01_simulate", "02_train", "03_evaluate", "04_attention", "05_embedding",
                   "06_u0_analysis", "07_real_events", "08_real_benchmark")

# The tiny parameters of each notebook (beyond run_dir / dataset_dir / output_dir).
SIMULATE = {"n_per_class": 6, "n_epochs": 200, "workers": 1, "seed": 5, "gallery_per_class": 2,
            "show_widgets": True}
TRAIN = {"run_name": "smoke", "d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32,
         "window": 16, "epochs": 2, "batch_size": 16, "max_train_events": 48, "processes": 1,
         "show_live": False}
EVALUATE = {"n_bootstrap": 30, "peer_workers": 1}
ATTENTION = {"per_class": 2, "seed": 4, "show_widgets": True}
EMBEDDING = {"n_events": 30, "method": "both", "seed": 2, "batch_size": 8}
LIMITS = {"n_bins": 4, "detectability_threshold": 50.0}
REAL_EVENTS = {"peer_workers": 1, "benchmark_events": 8}
REAL_BENCHMARK = {"n_events": 8, "peer": "tune", "workers": 1, "gate": "binary+event",
                  "window_days": 605.25}


class Chain:
    """The session's chain: each notebook runs the first time a test asks for it, then never
    again (a test of one notebook runs only that one)."""

    def __init__(self, root: Path, eval_store_path: Path, eval_run: Path):
        self.root = root
        self.parameters = chain_parameters(root, eval_store_path, eval_run)
        self._done: set[str] = set()

    @property
    def out(self) -> Path:
        """Every notebook's record and figures."""
        return self.root / "out"

    @property
    def data(self) -> Path:
        """01_simulate's data set."""
        return self.root / "data"

    @property
    def runs(self) -> Path:
        """02_train's ``runs_dir``."""
        return self.root / "runs"

    def executed(self, notebook: str) -> Path:
        """The executed copy of ``notebook``."""
        return self.root / f"{notebook}.executed.ipynb"

    def ran(self, *notebooks: str) -> Chain:
        """Execute each of ``notebooks`` (default: all of 01-07) unless it ran already, each
        asserted to finish without a cell error; returns the chain."""
        for notebook in notebooks or CHAIN_NOTEBOOKS:
            if notebook not in self._done:
                execute_without_errors(NOTEBOOKS / f"{notebook}.ipynb", self.executed(notebook),
                                       self.parameters[notebook])
                self._done.add(notebook)
        return self


def chain_parameters(root: Path, eval_store_path: Path, eval_run: Path) -> dict[str, dict]:
    """Each notebook's papermill parameters in a chain rooted at ``root``."""
    common = {"output_dir": str(root / "out"), "figure_formats": ["html"]}
    on_run = {**common, "run_dir": str(eval_run)}
    return {
        "01_simulate": {**common, **SIMULATE, "dataset_dir": str(root / "data")},
        "02_train": {**common, **TRAIN, "dataset_dir": str(eval_store_path),
                     "runs_dir": str(root / "runs")},
        "03_evaluate": {**on_run, **EVALUATE},
        "04_attention": {**on_run, **ATTENTION},
        "05_embedding": {**on_run, **EMBEDDING},
        "06_u0_analysis": {**on_run, **LIMITS},
        "07_real_events": {**on_run, **REAL_EVENTS},
        "08_real_benchmark": {**on_run, **REAL_BENCHMARK},
    }


# --------------------------------------------------------------------------------------------
# One runner for every model kind of the registry (test_notebook_kinds.py)
# --------------------------------------------------------------------------------------------

NEURAL_TRAINING = {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "patience": 0}
KIND_TRAINING = {
    "cnn": {"d_model": 16, "n_layers": 2, "d_ff": 32, "kernel_size": 3},
    "gru": {"d_model": 16, "n_layers": 1, "d_ff": 32},
    # gradient boosting, no epochs or sizes; every training row is a point-lens fit (five per
    # event), so it trains on fewer events than the neural kinds
    "features": {"max_train_events": 30, "max_val_events": 12},
    "rnn_vae": {"d_model": 16, "n_layers": 1},
    "deepsets": {"d_model": 16, "n_layers": 1, "n_heads": 4, "d_ff": 32, "window": 8,
                 "dropout": 0.0},
    "set_transformer": {"d_model": 16, "n_layers": 1, "n_heads": 4, "d_ff": 32, "window": 8,
                        "dropout": 0.0},
    "masked": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "window": 16,
               "pretrain_epochs": 1, "pretrain_batch_size": 16, "pretrain_mask_fraction": 0.25,
               "pretrain_learning_rate": 3e-3},
}
"""02_train's tiny sizes per kind (the transformer runs in the notebook chain above)."""

KIND_TEST_EVENTS = 24
KIND_NOTEBOOKS = {
    "03_evaluate": {"n_events": KIND_TEST_EVENTS, "n_bootstrap": 20, "classical_peer": False},
    "04_attention": {"per_class": 1, "show_widgets": True},
    "05_embedding": {"n_events": 24, "method": "pca", "seed": 1, "batch_size": 8},
    "06_u0_analysis": {"n_bins": 3},
}
"""The notebooks after 02_train and their tiny parameters (every kind runs 03; a kind's own
tests ask for the others)."""


class KindChains:
    """02_train for each model kind on ``store``, then the notebooks its tests ask for on its
    run, each at most once per session, in ``root/<kind>/`` (one output directory ``out``, as
    a study cell; 02's ``runs_dir`` is ``runs``).

    The kernels run torch on one thread (``OMP_NUM_THREADS=1``): these models are too small to
    gain from two, and on a busy two-core machine the GRU's CPU kernel with two OpenMP threads
    took ~100x longer (3.3 s against 0.03 s per forward pass of 16 events of 200 observations).
    """

    def __init__(self, root: Path, store):
        self.root, self.store = root, store
        self._done: set[tuple[str, str]] = set()

    def directory(self, kind: str) -> Path:
        return self.root / kind

    def out(self, kind: str) -> Path:
        return self.directory(kind) / "out"

    def executed(self, kind: str, notebook: str) -> Path:
        return self.directory(kind) / f"{notebook}.ipynb"

    def record(self, kind: str) -> dict:
        """02_train's ``train_metrics.json`` for ``kind``."""
        return json.loads((self.out(kind) / "train_metrics.json").read_text())

    def ran(self, kind: str, *notebooks: str) -> KindChains:
        """Train ``kind`` (once), then run each of ``notebooks`` (default: 03_evaluate) on its
        run (once each); returns the runner."""
        import pytest

        tmp = self.directory(kind)
        tmp.mkdir(parents=True, exist_ok=True)
        common = {"output_dir": str(tmp / "out"), "figure_formats": ["html"], "device": "cpu"}
        training = {**(NEURAL_TRAINING if KINDS[kind].neural else {}), **KIND_TRAINING[kind]}
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OMP_NUM_THREADS", "1")
            if (kind, "02_train") not in self._done:
                execute_without_errors(NOTEBOOKS / "02_train.ipynb",
                                       self.executed(kind, "02_train"), {
                    "dataset_dir": str(self.store.path), "runs_dir": str(tmp / "runs"),
                    "run_name": kind, "model_kind": kind, "show_live": False,
                    "max_train_events": 48, "max_val_events": 24, **common, **training})
                self._done.add((kind, "02_train"))
            run = {"run_dir": self.record(kind)["run_dir"], **common}
            for notebook in notebooks or ("03_evaluate",):
                if (kind, notebook) not in self._done:
                    parameters = dict(KIND_NOTEBOOKS[notebook])
                    if kind == "features" and notebook == "03_evaluate":
                        parameters["batch_size"] = 8  # each update is a PSPL fit: 8 timed
                    execute_without_errors(NOTEBOOKS / f"{notebook}.ipynb",
                                           self.executed(kind, notebook), {**run, **parameters})
                    self._done.add((kind, notebook))
        return self
