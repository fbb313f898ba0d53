"""The notebooks' registry: what each numbered notebook takes, records, draws and makes.

One :class:`Notebook` entry per notebook in :data:`NOTEBOOKS`:

* ``parameters``: name, default (its type is the default's) and a one-line description, in the
  order of the notebook's ``parameters`` cell (``tests/test_notebook_registry.py`` checks that
  the cell says exactly this, line by line); a parameter that sets a config field
  (:func:`mirrored`) takes the field's default and help text (its trailing comment), the
  others are the notebook's own (:func:`own`);
* ``record``: the JSON file the notebook writes into its ``output_dir`` and ``record_type``, a
  :class:`~typing.TypedDict` of the keys that readers rely on, checked by :func:`save_outputs`
  and :func:`load_record` (more keys may follow);
* ``figures``: the builder in :mod:`microlens.workflow.figures` that draws the notebook's figures
(used
  by the notebook and by :func:`microlens.workflow.figures.rebuild_figures`);
* ``produces`` / ``consumes``: the artefacts (a dataset, a run directory) it makes, and the
  parameters by which it reads those of earlier notebooks (the study runner chains cells
  through them);
* ``config``: a function that builds the notebook's config dataclasses from its parameters, so
  the study runner checks values with the same code as the run.

Adding a notebook or a parameter: see ``docs/adding_a_notebook.md``.
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

REPOSITORY = Path(__file__).resolve().parents[3]
NOTEBOOK_DIR = REPOSITORY / "notebooks"


# --------------------------------------------------------------------------------------------
# Parameters and artefacts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """One line of a notebook's ``parameters`` cell: ``name = default  # description``.

    A parameter that sets a field of a config dataclass (``field``, e.g.
    ``"SimulationConfig.n_per_class"``) takes that field's help text as its description and,
    unless the notebook says otherwise, its default (:func:`mirrored`); one of the notebook's
    own has its own (:func:`own`).
    """

    name: str
    default: Any
    description: str
    field: str = ""    # "Config.field" the value goes to; "" for a parameter of the notebook's own
    unset: Any = None  # the literal that stands for the field's None (papermill has no None)

    @property
    def type(self) -> type:
        """The type a value must have (the default's; an int is accepted for a float)."""
        return type(self.default)

    def config_value(self, value):
        """``value`` as its config field takes it: the ``unset`` literal becomes None."""
        if self.unset is not None and value == self.unset and not isinstance(value, bool):
            return None
        return value


CONFIG_MODULES = {"SimulationConfig": "microlens.simulation.simulate",
                  "ModelConfig": "microlens.models.config",
                  "TrainConfig": "microlens.training.train",
                  "PretrainConfig": "microlens.training.pretrain"}
"""Config dataclasses whose fields notebooks' parameters set, and where each is declared."""

NOTEBOOK_CONFIGS = {"01_simulate": ("SimulationConfig",),
                    "02_train": ("TrainConfig", "ModelConfig")}
"""Notebook -> the configs it builds: a parameter named like one of their fields sets it."""

RENAMED = {"02_train": {
    "dataset_dir": "TrainConfig.dataset",
    "model_kind": "ModelConfig.kind",
    "pretrain_epochs": "PretrainConfig.epochs",
    "pretrain_mask_fraction": "PretrainConfig.mask_fraction",
    "pretrain_batch_size": "PretrainConfig.batch_size",
    "pretrain_learning_rate": "PretrainConfig.learning_rate",
}}
"""Notebook -> parameters that set a config field of another name (the only hand mapping)."""


@functools.cache
def config_fields(config: str) -> dict:
    """The fields of one of :data:`CONFIG_MODULES`' configs as declared in its source
    (:func:`microlens.core.settings.declared_fields`: default and help text, no import)."""
    from microlens.core.settings import declared_fields

    if config not in CONFIG_MODULES:
        raise KeyError(f"unknown config {config!r}; valid: {', '.join(CONFIG_MODULES)}")
    return declared_fields(CONFIG_MODULES[config], config)


def mirrored_field(notebook: str, name: str) -> str:
    """``"Config.field"`` that ``notebook``'s parameter ``name`` sets (:data:`RENAMED`, else
    the field of that name of one of :data:`NOTEBOOK_CONFIGS`), or "" for none."""
    if name in RENAMED.get(notebook, {}):
        return RENAMED[notebook][name]
    owners = [c for c in NOTEBOOK_CONFIGS.get(notebook, ()) if name in config_fields(c)]
    if len(owners) > 1:
        raise ValueError(f"{notebook}'s parameter {name} is a field of {' and '.join(owners)}; "
                         "name the one it sets in RENAMED")
    return f"{owners[0]}.{name}" if owners else ""


_FIELD_DEFAULT = object()


def mirrored(notebook: str, name: str, *, default=_FIELD_DEFAULT, unset=None) -> Parameter:
    """The parameter ``name`` of ``notebook`` that sets a config field: the field's help text,
    and its default unless ``default`` is given (a notebook's own choice, e.g. a smaller data
    set); ``unset`` is the literal that stands for a field default of None."""
    target = mirrored_field(notebook, name)
    if not target:
        raise ValueError(f"{notebook}'s parameter {name} sets no field of "
                         f"{', '.join(NOTEBOOK_CONFIGS.get(notebook, ())) or 'any config'}")
    config, _, field_name = target.partition(".")
    declared = config_fields(config)[field_name]
    if default is _FIELD_DEFAULT:
        default = unset if declared.default is None else declared.default
    description = declared.help + (f"; {json.dumps(unset)} here means None"
                                   if unset is not None else "")
    return Parameter(name, default, description, field=target, unset=unset)


def own(name: str, default, description: str) -> Parameter:
    """A parameter of the notebook's own (it sets no config field)."""
    return Parameter(name, default, description)


def config_arguments(notebook: str, config: str, parameters: dict) -> dict:
    """``{field: value}`` for ``config`` from ``notebook``'s parameters that set its fields
    (a parameter missing from ``parameters`` takes the notebook's default)."""
    out = {}
    for p in get_notebook(notebook).parameters:
        owner, _, field_name = p.field.partition(".")
        if owner == config:
            out[field_name] = p.config_value(parameters.get(p.name, p.default))
    return out


@dataclass(frozen=True)
class Artifact:
    """Something a notebook makes that later notebooks of a study cell read (a dataset, a run).

    Cells whose producer parameters agree (apart from ``ignored`` ones, which change how it
    is made or shown, not what it is) share one artefact, made once.
    """

    kind: str                 # "dataset" or "run": the folder it lives in
    producer: str             # notebook that makes it
    record: str               # JSON file the producer writes into its output_dir ...
    record_key: str           # ... with the artefact's path under this key
    consumer_parameter: str   # parameter by which later notebooks receive the path
    managed: tuple[str, ...]  # producer parameters the runner sets
    ignored: frozenset[str]   # producer parameters that do not change the artefact
    progress: tuple[str, str] | None = None  # (file in the artefact with one CSV row per
    #   finished step and its seconds, producer parameter with the number of steps): the
    #   runner's progress display reads them while the producer runs


DATASET = Artifact(
    kind="dataset", producer="01_simulate", record="simulate_metrics.json",
    record_key="dataset_dir", consumer_parameter="dataset_dir",
    managed=("dataset_dir", "overwrite"),
    ignored=frozenset({"workers", "gallery_per_class", "show_widgets", "figure_formats"}),
)
RUN = Artifact(
    kind="run", producer="02_train", record="train_metrics.json", record_key="run_dir",
    consumer_parameter="run_dir", managed=("run_name", "runs_dir", "overwrite", "resume"),
    ignored=frozenset({"processes", "show_live", "figure_formats"}),
    progress=("history.csv", "epochs"),
)


# --------------------------------------------------------------------------------------------
# Records: the keys readers rely on (the studies' summary, the figure rebuild, the tests)
# --------------------------------------------------------------------------------------------


class _Figures(TypedDict):
    figure_formats: list   # formats the figures were written in (html always)
    figures: list          # names of the figures written beside the record


class SimulationRecord(_Figures):
    """``simulate_metrics.json`` (:func:`microlens.data.summaries.simulation_metrics` + gallery)."""

    dataset_dir: str
    n_events: int
    class_counts: dict
    split_counts: dict
    events_per_second: float | None
    detectability: dict | None
    config: dict
    gallery: dict          # per_class and seed of the gallery's events


class TrainingRecord(_Figures):
    """``train_metrics.json``: the run's ``metrics.json`` plus where the run is and how."""

    run_dir: str
    model_kind: str        # ModelConfig.kind (microlens.models.registry.KINDS)
    n_parameters: int | None  # learned weights of a neural kind; None for ``features``
    processes: int
    config: dict
    val_accuracy: float
    epochs_run: int
    train_events_per_second: float


class EvaluationRecord(_Figures):
    """``evaluation_summary.json``: :func:`microlens.evaluation.evaluate.evaluate_run`'s summary."""

    run_dir: str
    model_kind: str
    dataset: str
    n_events: int
    class_counts: dict
    final: dict
    early_detection: dict
    decision: dict
    headline: dict


class AttentionRecord(_Figures):
    """``attention_summary.json``: events, selection and attention statistics.

    A model without attention maps (``attention`` False: every kind but ``transformer`` and
    ``masked``, :data:`microlens.models.registry.KINDS`) has ``reason`` saying why, and nothing
    measured: no events, no layers, ``focus_event``, ``window`` and ``uniform_distance_obs``
    None (:func:`microlens.evaluation.analysis.no_attention_record`).
    """

    run_dir: str
    dataset_dir: str
    model_kind: str
    attention: bool        # False: the model has no attention maps (nothing below is measured)
    reason: str | None     # why not, when attention is False
    selection: dict
    events: list
    focus_event: int | None
    n_events: int
    n_queries: int
    window: int | None
    regions: dict
    uniform_distance_obs: float | None
    layers: list


class EmbeddingRecord(_Figures):
    """``embedding_summary.json``: :func:`microlens.evaluation.analysis.embedding_summary` and
    settings.

    ``run_dir`` is a training run or a masked pretraining run; ``embedding`` says what was
    embedded (:data:`microlens.evaluation.analysis.EMBEDDING_SOURCES`): ``"pretrained_encoder"`` for
    a pretraining run, whose encoder never saw a label and makes no predictions, so its
    ``model_accuracy`` is None."""

    run_dir: str
    dataset_dir: str
    model_kind: str
    embedding: str         # "pooled", "features", "latent" or "pretrained_encoder"
    method: str
    class_counts: dict
    projections: dict


class LimitsRecord(_Figures):
    """``u0_report.json``: :func:`microlens.evaluation.analysis.physical_limits` and the binary
    points."""

    threshold: float
    n_events: int
    binary: dict
    bins: dict
    binary_points: dict


class RealEventsRecord(_Figures):
    """``real_events.json``: :func:`microlens.realdata.real_events.classify_events`' record (the
    arrays
    behind its figures are in ``series_file`` beside it)."""

    run_dir: str
    dataset_dir: str
    confidence: float
    class_names: list
    peer: dict | None
    series_file: str
    n_events: int
    n_correct: int
    events: list
    summary: list
    beside_simulation: dict | None


class RealBenchmarkRecord(_Figures):
    """``real_benchmark.json``: :func:`microlens.realdata.benchmark.run_benchmark`'s full record
    (per-event rows included, so its figures and merged folds are rebuilt from it alone)."""

    folder: str
    run_dir: str | None
    model_kind: str | None
    rules: dict
    counts: dict
    metrics: dict
    bins: dict
    timing: dict
    threshold_curve: dict
    events: list


class ParametersRecord(_Figures):
    """``parameters_report.json``: :func:`microlens.evaluation.parameters.evaluate_parameters`'
    record (the parameter heads beside the online fit; its figures are rebuilt from it alone)."""

    run: str
    dataset: str
    n_test_events: int
    n_lensing: int
    errors: dict
    coverage: dict
    coverage_by_share: dict
    alerts: dict


# --------------------------------------------------------------------------------------------
# Configs built from parameters (the same dataclasses, so the same checks, as the notebooks)
# --------------------------------------------------------------------------------------------


VARIABLE_FRACTION_DEFAULT = -1.0
"""``01_simulate``'s ``variable_fraction`` meaning "the survey's default" (papermill parameters
are plain literals, so no None): :data:`microlens.simulation.simulate.SURVEY_VARIABLE_FRACTION` on a
real
survey, 0 on ``thesis``."""


def simulation_config(parameters: dict):
    """The :class:`~microlens.simulation.simulate.SimulationConfig` ``01_simulate`` builds from its
    parameters (its ``__post_init__`` checks the values, as in the notebook).

    The notebook's literals map onto the config's "unset" values: ``cadence = ""`` and
    ``error = ""`` are None (the ``thesis`` survey's ``cadence_15`` and ``error_005``; nothing
    on another survey, which sets its own), ``variable_fraction = -1.0``
    (:data:`VARIABLE_FRACTION_DEFAULT`) is None (the survey's default share of variable stars).
    ``n_epochs`` shapes the ``thesis`` survey only; another survey with an ``n_epochs`` other
    than the default is refused rather than silently ignored.

    Raises
    ------
    ValueError
        For a value the simulation would refuse, naming it (a real survey with a cadence or error
        preset: :class:`~microlens.simulation.simulate.SimulationConfig`'s message names both).
    """
    from microlens.simulation.simulate import SimulationConfig

    p = parameters
    if not isinstance(p["workers"], int) or p["workers"] < 0:
        raise ValueError(f"workers must be >= 0 (0 means all cores), got {p['workers']!r}")
    fraction = p.get("variable_fraction", VARIABLE_FRACTION_DEFAULT)
    if (fraction != VARIABLE_FRACTION_DEFAULT or isinstance(fraction, bool)) and (
            not isinstance(fraction, (int, float)) or isinstance(fraction, bool)
            or not 0 <= fraction <= 1):
        raise ValueError(f"variable_fraction must be in [0, 1] (share of the no-event class "
                         f"that is a variable star), or -1 for the survey's default; got "
                         f"{fraction!r}")
    arguments = config_arguments("01_simulate", "SimulationConfig", p)
    default_epochs = SimulationConfig.__dataclass_fields__["n_epochs"].default
    if arguments["survey"] != "thesis" and arguments["n_epochs"] != default_epochs:
        raise ValueError(f"n_epochs shapes the thesis survey only; survey "
                         f"{arguments['survey']!r} sets its own epochs, so leave n_epochs at "
                         f"{default_epochs} (got {arguments['n_epochs']!r})")
    return SimulationConfig(**arguments)


def train_config(parameters: dict):
    """The :class:`~microlens.training.train.TrainConfig` (with its model config) ``02_train``
    builds from its parameters; both dataclasses check their values on construction.

    Raises
    ------
    ValueError
        For a value training would refuse, naming it.
    """
    from microlens.models.config import ModelConfig
    from microlens.training.train import TrainConfig

    p = parameters
    if not isinstance(p["processes"], int) or p["processes"] < 1:
        raise ValueError(f"processes must be at least 1, got {p['processes']!r}")
    if p["overwrite"] and p["resume"]:
        raise ValueError("overwrite and resume are both True; resume needs overwrite False")
    from microlens.models.registry import model_kind

    if p["processes"] > 1 and not model_kind(p["model_kind"]).neural:
        raise ValueError(f"model_kind {p['model_kind']!r} is fitted by scikit-learn in one "
                         f"process; set processes = 1 (got {p['processes']})")
    model = ModelConfig(**config_arguments("02_train", "ModelConfig", p))
    config = TrainConfig(**config_arguments("02_train", "TrainConfig", p), model=model)
    if p["model_kind"] == "masked" and not p["pretrained_run"]:  # check the pretraining too
        from microlens.training.pretrain import pretrain_config_for

        pretrain_config_for(config, **config_arguments("02_train", "PretrainConfig", p))
    return config


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notebook:
    """What one numbered notebook takes, records, draws and makes (see the module docstring)."""

    name: str
    parameters: tuple[Parameter, ...]
    record: str
    record_type: type
    figures: str
    produces: tuple[Artifact, ...] = ()
    consumes: tuple[str, ...] = ()
    config: Callable[[dict], Any] | None = field(default=None, compare=False)

    @property
    def path(self) -> Path:
        """The ``.ipynb`` file."""
        return NOTEBOOK_DIR / f"{self.name}.ipynb"

    def defaults(self) -> dict:
        """``{name: default}`` in the order of the parameters cell (fresh copies)."""
        return {p.name: json.loads(json.dumps(p.default)) for p in self.parameters}

    def types(self) -> dict[str, type]:
        """``{name: type}`` of every parameter."""
        return {p.name: p.type for p in self.parameters}

    def values(self, namespace: dict) -> dict:
        """``{name: value}`` of every parameter, read from ``namespace`` (a notebook's
        ``globals()`` after its parameters cell and papermill's injected one), in the order of
        the parameters cell.

        Raises
        ------
        KeyError
            Naming the parameters ``namespace`` lacks.
        TypeError
            Naming a parameter whose value is not of its type (an int is accepted for a float),
            e.g. one an import has overwritten.
        """
        missing = [p.name for p in self.parameters if p.name not in namespace]
        if missing:
            raise KeyError(f"{self.name}'s parameters {', '.join(missing)} are not defined: run "
                           "the parameters cell first")
        for p in self.parameters:
            if not _accepts(p.type, namespace[p.name]):
                raise TypeError(f"{self.name}'s parameter {p.name} = {namespace[p.name]!r:.80} "
                                f"is a {type(namespace[p.name]).__name__}, expected "
                                f"{p.type.__name__}")
        return {p.name: namespace[p.name] for p in self.parameters}


_FORMATS = own("figure_formats", ["html", "png", "pdf"],
              "files written per figure (static ones need Chromium)")
_DEVICE = own("device", "auto", "auto (the GPU when there is one), cpu or cuda")

_simulate = functools.partial(mirrored, "01_simulate")
_train = functools.partial(mirrored, "02_train")

NOTEBOOKS: dict[str, Notebook] = {nb.name: nb for nb in (
    Notebook("01_simulate", (
        _simulate("topology"),
        _simulate("survey"),
        _simulate("noise"),
        _simulate("single_lens"),
        _simulate("contaminants"),
        _simulate("noise_model", unset=""),
        _simulate("baselines", unset=""),
        _simulate("injected_variables"),
        _simulate("cadence", unset=""),
        _simulate("error", unset=""),
        _simulate("variable_fraction", unset=VARIABLE_FRACTION_DEFAULT),
        _simulate("n_per_class", default=200),  # a data set that makes and trains in minutes
        _simulate("n_epochs"),
        _simulate("seed", default=42),
        _simulate("detectability"),
        own("dataset_dir", "data/quick",
            "where the data set goes (relative paths: from the project root)"),
        own("overwrite", False, "replace an existing data set that was made with another config"),
        _FORMATS,
        own("output_dir", "outputs/lab",
            "figures and simulate_metrics.json (relative: from the project root)"),
        own("workers", 0, "simulation worker processes (0 means all cores)"),
        own("gallery_per_class", 3, "light curves per class in the gallery"),
        own("show_widgets", True, "display the interactive explorers at the end"),
    ), record="simulate_metrics.json", record_type=SimulationRecord,
       figures="simulation_figures", produces=(DATASET,), config=simulation_config),
    Notebook("02_train", (
        _train("dataset_dir"),
        _train("run_name"),
        _train("runs_dir"),
        _train("model_kind"),
        *(_train(name) for name in (
            "d_model", "n_layers", "n_heads", "d_ff", "window", "dropout", "time_encoding",
            "conv_stem_kernel", "conv_stem_layers", "pool_norm", "kernel_size", "latent_dim",
            "reconstruction_weight", "kl_weight", "parameter_heads", "parameter_origin",
            "parameter_weight")),
        own("pretrained_run", "",
            "masked only: a pretraining run directory; empty pretrains one on dataset_dir's "
            "training split with the pretrain_ settings, or reuses it if it exists"),
        *(_train(name) for name in ("pretrain_epochs", "pretrain_mask_fraction",
                                    "pretrain_batch_size", "pretrain_learning_rate")),
        *(_train(name) for name in ("epochs", "batch_size", "learning_rate", "patience")),
        own("processes", 1,
            "1 trains in this kernel; more launches torchrun with that many processes"),
        *(_train(name) for name in (
            "precision", "device", "seed", "max_train_events", "max_val_events", "label_policy",
            "baseline_method", "temperature_fit")),
        own("overwrite", True, "delete an existing run directory of this name and start again"),
        own("resume", False, "continue the run from its last.pt (needs overwrite False)"),
        _FORMATS,
        own("output_dir", "outputs/lab",
            "figures and train_metrics.json (relative: from the project root)"),
        own("show_live", True, "draw the training curves live, updated after every epoch"),
    ), record="train_metrics.json", record_type=TrainingRecord, figures="training_figures",
       produces=(RUN,), consumes=("dataset_dir",), config=train_config),
    Notebook("03_evaluate", (
        own("run_dir", "outputs/runs/quick",
            "run directory written by 02_train (relative: from the project root)"),
        own("dataset_dir", "",
            "data set whose test split is evaluated; empty means the run's own data set"),
        own("n_events", 0,
            "evaluate a random subset of this many test events (0 means the whole test split)"),
        own("batch_size", 64,
            "events per inference pass (memory only; results do not depend on it)"),
        own("n_bootstrap", 1000, "bootstrap resamples for the 95 % intervals"),
        own("seed", 0, "seed of the subset and of the bootstrap"),
        own("classical_peer", True, "also fit and evaluate the classical PSPL-fit peer"),
        own("peer_workers", 2, "processes for the classical peer's fits"),
        _DEVICE,
        _FORMATS,
        own("output_dir", "outputs/lab",
            "figures, evaluation_summary.json and test_predictions.npz"),
    ), record="evaluation_summary.json", record_type=EvaluationRecord,
       figures="evaluation_figures", consumes=("run_dir", "dataset_dir")),
    Notebook("04_attention", (
        own("run_dir", "outputs/runs/quick",
            "trained run directory (relative: from the project root)"),
        own("dataset_dir", "",
            "dataset whose test split is read; empty means the run's own dataset"),
        own("event_indices", [],
            "test events to show (store indices); empty picks per_class of each class"),
        own("per_class", 2, "events per class when event_indices is empty"),
        own("seed", 0, "seed of the random choice of events"),
        _DEVICE,
        _FORMATS,
        own("output_dir", "outputs/lab",
            "figures and attention_summary.json (relative: from the project root)"),
        own("show_widgets", True, "show the interactive attention browser at the end"),
    ), record="attention_summary.json", record_type=AttentionRecord,
       figures="attention_figures", consumes=("run_dir", "dataset_dir")),
    Notebook("05_embedding", (
        own("run_dir", "outputs/runs/quick",
            "trained run directory (relative: from the project root)"),
        own("dataset_dir", "",
            "dataset whose test split is read; empty means the run's own dataset"),
        own("n_events", 1000,
            "test events to embed, drawn at random (0 means the whole test split)"),
        own("method", "both", "projection: pca, tsne or both"),
        own("seed", 0, "seed of the event draw, the projections and the k-NN folds"),
        own("batch_size", 64, "events per forward pass (memory, not results, depends on it)"),
        _DEVICE,
        _FORMATS,
        own("output_dir", "outputs/lab",
            "figures and embedding_summary.json (relative: from the project root)"),
    ), record="embedding_summary.json", record_type=EmbeddingRecord,
       figures="embedding_figures", consumes=("run_dir", "dataset_dir")),
    Notebook("06_u0_analysis", (
        own("run_dir", "outputs/runs/quick",
            "run directory written by 02_train (relative: from the project root)"),
        own("dataset_dir", "",
            "data set whose test split is analysed; empty means the run's own data set"),
        own("n_bins", 8,
            "bins per parameter (linear in u_0; logarithmic in q, s and the detectability)"),
        own("detectability_threshold", 100.0,
            "a binary counts as detectable above this chi-squared difference"),
        own("batch_size", 64, "events per inference pass"),
        _DEVICE,
        _FORMATS,
        own("output_dir", "outputs/lab", "figures and u0_report.json"),
    ), record="u0_report.json", record_type=LimitsRecord, figures="limits_figures",
       consumes=("run_dir", "dataset_dir")),
    Notebook("07_real_events", (
        own("run_dir", "outputs/runs/quick",
            "run directory written by 02_train (relative: from the project root)"),
        own("shipped", True, "classify the real events MulensModel ships (those named in events)"),
        own("events", [], "shipped events to classify by name (e.g. OB05086); empty means all six"),
        own("photometry_files", [],
            "your own events: each a file or a folder of one event's files (one per observatory)"),
        own("confidence", 0.9, "probability at which a class counts as reached"),
        own("classical_peer", True,
            "also classify with the classical peer, tuned on the run's data set"),
        own("peer_workers", 2, "processes for tuning the classical peer"),
        own("time_axis", "peak", "time axis of the figures: peak (days from the peak) or hjd"),
        own("benchmark_events", 40, "real OGLE events of the shipped subset scored beside the "
            "run's simulated test split (0 skips)"),
        _DEVICE,
        _FORMATS,
        own("output_dir", "outputs/lab",
            "figures, real_events.json and real_events_series.npz"),
    ), record="real_events.json", record_type=RealEventsRecord,
       figures="real_events_figures", consumes=("run_dir",)),
    Notebook("08_real_benchmark", (
        own("run_dir", "outputs/runs/quick",
            "run directory written by 02_train, any model kind (relative: from the project root)"),
        own("folder", "", "a folder of real events in the OGLE EWS layout; empty means the "
            "shipped subset"),
        own("n_events", 0, "score only the first n events of the folder by name (0 means all)"),
        own("stars_file", "", "a file of star identities to score (one a line); empty means all"),
        own("peer", "tune", "classical peer: tune (on the run's data set), none, or a peer JSON "
            "file"),
        own("threshold", 0.0, "a threshold on the final P(lensing) chosen elsewhere (0 means "
            "none)"),
        own("window_days", 0.0, "classify the last N days of each segment (e.g. the span the "
            "model was trained on: 605.25 for the ogle preset); 0 means the whole segment"),
        own("gate", "none", "physics gate on the model's final answers "
                            "(microlens.evaluation.gate): none, "
            "binary (binary only with an anomaly the peer's fit cannot explain) or "
            "binary+event (and lensing only where a point lens beats a constant)"),
        own("alert_threshold", 0.9, "P(lensing) at which the stream raises an alert"),
        own("workers", 2, "processes for the classical peer's fits and the features kind"),
        _DEVICE,
        _FORMATS,
        own("output_dir", "outputs/lab", "figures and real_benchmark.json"),
    ), record="real_benchmark.json", record_type=RealBenchmarkRecord,
       figures="real_benchmark_figures", consumes=("run_dir",)),
    Notebook("09_parameters", (
        own("run_dir", "outputs/runs/quick",
            "run trained with parameter heads (relative: from the project root)"),
        own("dataset", "", "data set whose test split is scored; empty means the run's own "
            "data set"),
        own("max_events", 0,
            "score a random subset of this many test events (0 means the whole test split)"),
        own("workers", 2, "processes for the online point-lens fit (results do not depend on it)"),
        _FORMATS,
        own("output_dir", "outputs/lab", "figures and parameters_report.json"),
        own("show_widgets", True, "replay one test event with the heads' point lens at every "
            "observation"),
    ), record="parameters_report.json", record_type=ParametersRecord,
       figures="parameter_figures", consumes=("run_dir",)),
)}  # fmt: skip
"""Every numbered notebook, in running order."""

ARTIFACTS: tuple[Artifact, ...] = tuple(a for nb in NOTEBOOKS.values() for a in nb.produces)
"""Every artefact a notebook makes, in the order of their producers."""


def get_notebook(name: str) -> Notebook:
    """The registry entry of ``name``; :class:`KeyError` naming the valid ones otherwise."""
    try:
        return NOTEBOOKS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown notebook {name!r}; valid: {', '.join(NOTEBOOKS)}") from None


# --------------------------------------------------------------------------------------------
# Records on disk
# --------------------------------------------------------------------------------------------


class RecordError(KeyError):
    """A notebook record lacks a key its readers rely on, or holds a value of the wrong type."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _accepts(kind, value) -> bool:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typing.get_origin(kind) or kind)


def check_record(notebook: str, record: dict, source: str | Path | None = None) -> dict:
    """Check a record against its notebook's ``record_type`` and return it.

    Parameters
    ----------
    notebook : str
        A key of :data:`NOTEBOOKS`.
    record : dict
        The record (more keys than the type lists are allowed).
    source : path, optional
        Where it was read from, for the message.

    Raises
    ------
    RecordError
        Naming the missing key or the key with a value of the wrong type, and the notebook.
    """
    entry = get_notebook(notebook)
    where = f"{source}" if source is not None else f"the record of {notebook}"
    if not isinstance(record, dict):
        raise RecordError(f"{where} is not a JSON object")
    hints = typing.get_type_hints(entry.record_type)
    missing = [key for key in hints if key not in record]
    if missing:
        raise RecordError(f"{where} has no {', '.join(map(repr, missing))}: it was written by "
                          f"an older or unfinished {notebook}; run the notebook again")
    for key, kind in hints.items():
        if not _accepts(kind, record[key]):
            raise RecordError(f"{where}: {key} = {record[key]!r:.80} is a "
                              f"{type(record[key]).__name__}, expected "
                              f"{kind.__name__ if isinstance(kind, type) else kind}")
    return record


def save_outputs(notebook: str, output_dir, figures: dict, figure_formats: Sequence[str],
                 record: dict) -> list[Path]:
    """A notebook's save step: its figures, then its record (with the figures' names and
    formats added), checked against the registry and written atomically.

    Parameters
    ----------
    notebook : str
        A key of :data:`NOTEBOOKS` (it names the record file).
    output_dir : path
        The notebook's ``output_dir`` (relative paths: from the project root).
    figures : dict
        ``{name: figure}`` from the notebook's figure builder (None values are skipped).
    figure_formats : sequence of str
        Formats to write (:func:`microlens.reports.save_figures`; HTML always).
    record : dict
        What the notebook records; ``figure_formats`` and ``figures`` are added.

    Returns
    -------
    list of Path
        The figure files, then the record.

    Raises
    ------
    RecordError
        When the record lacks a key of the notebook's ``record_type`` (nothing is written).
    """
    from microlens.core.paths import resolve_path, write_json_atomic
    from microlens.reports import save_figures

    entry = get_notebook(notebook)
    drawn = {name: fig for name, fig in figures.items() if fig is not None}
    full = {**record, "figure_formats": list(figure_formats), "figures": sorted(drawn)}
    check_record(notebook, json.loads(json.dumps(full)))  # as it will be read back
    directory = resolve_path(output_dir)
    written = list(save_figures(drawn, directory, list(figure_formats)))
    written.append(write_json_atomic(directory / entry.record, full))
    return written


def load_record(notebook: str, output_dir) -> tuple[dict, Path]:
    """Read and check the record a notebook wrote into ``output_dir``.

    Returns
    -------
    record : dict
    source : Path
        The record file.

    Raises
    ------
    KeyError
        For an unknown notebook (naming the valid ones); :class:`RecordError` (a KeyError) for
        a record that lacks what readers rely on.
    FileNotFoundError
        When the notebook has not written its record there.
    """
    from microlens.core.paths import resolve_path

    entry = get_notebook(notebook)
    source = resolve_path(output_dir) / entry.record
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: {notebook} has not written its record "
                                "there")
    record = json.loads(source.read_text(encoding="utf-8"))
    return check_record(notebook, record, source), source


CONFIG_CHECKS = {name: nb.config for name, nb in NOTEBOOKS.items() if nb.config is not None}
"""Notebook -> the function that builds (and so checks) its configs from its parameters."""


__all__ = [
    "ARTIFACTS", "CONFIG_CHECKS", "DATASET", "NOTEBOOKS", "NOTEBOOK_DIR", "RUN", "Artifact",
    "AttentionRecord", "EmbeddingRecord", "EvaluationRecord", "LimitsRecord", "Notebook",
    "Parameter", "ParametersRecord", "RealBenchmarkRecord", "RealEventsRecord", "RecordError",
    "SimulationRecord", "TrainingRecord",
    "CONFIG_MODULES", "NOTEBOOK_CONFIGS", "RENAMED", "check_record", "config_arguments",
    "config_fields", "get_notebook", "load_record", "mirrored", "mirrored_field", "own",
    "save_outputs", "simulation_config", "train_config",
]  # fmt: skip
