"""Every notebook figure, built from what the notebook recorded.

Each numbered notebook draws its figures through one builder here and records in its
``output_dir`` what that builder needs: its JSON record (:data:`NOTEBOOK_RECORDS`, which also
lists the figures and the formats written) and, for ``05_embedding``, the projected coordinates
(:data:`PROJECTIONS_FILE`), for ``07_real_events`` the light curves and probabilities
(:data:`microlens.realdata.real_events.SERIES_FILE`). :func:`rebuild_figures` reads those records
back and writes the same figures again, byte for byte up to plotly's random element ids, without
re-running a notebook, simulating or training:

==================  ==========================  ==============================================
notebook            record                      what the rebuild reads besides the record
==================  ==========================  ==============================================
``01_simulate``     ``simulate_metrics.json``   the dataset (gallery events, detectability)
``02_train``        ``train_metrics.json``      the run's ``history.csv``
``03_evaluate``     ``evaluation_summary.json`` nothing
``04_attention``    ``attention_summary.json``  the run's model and the dataset: one forward
                                                pass over the recorded events (nothing for a
                                                model without attention maps)
``05_embedding``    ``embedding_summary.json``  ``embedding_projections.npz`` and the dataset
                                                (a model with a decoder: also the run's model,
                                                one pass over the reconstructed examples)
``06_u0_analysis``  ``u0_report.json``          nothing (the binary points are in the record)
``07_real_events``  ``real_events.json``        ``real_events_series.npz`` (light curves and
                                                the probabilities after every observation)
==================  ==========================  ==============================================

``08_real_benchmark`` reads nothing besides ``real_benchmark.json``: its per-event rows are in it;
nor does ``09_parameters`` besides ``parameters_report.json``.

From the shell: ``python -m microlens.workflow.figures outputs/quick/base [--formats html png]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from microlens.core.classes import CLASS_NAMES
from microlens.core.cli import TerminalHelpFormatter, add_traceback_option, command_line
from microlens.core.paths import atomic_path, resolve_path
from microlens.reports import (
    attention_event_figure,
    attention_gallery_figure,
    attention_heatmap_figure,
    attention_overview_figure,
    attention_statistics_figure,
    binary_parameter_figure,
    confidence_histogram_figure,
    confusion_figure,
    dchi2_recall_figure,
    decision_figure,
    detectability_figure,
    early_detection_figure,
    embedding_figure,
    gallery_figure,
    peer_comparison_figure,
    physical_limits_figure,
    precision_recall_figure,
    real_event_figure,
    real_events_table_figure,
    reconstruction_figures,
    reliability_figure,
    roc_figure,
    save_figures,
    training_curves_figure,
)
from microlens.reports.parameters import parameter_figures
from microlens.reports.real_benchmark import benchmark_figures as real_benchmark_figures
from microlens.reports.real_benchmark import beside_simulation_figure
from microlens.workflow.notebooks import NOTEBOOKS, load_record

NOTEBOOK_RECORDS: dict[str, str] = {name: nb.record for name, nb in NOTEBOOKS.items()}
"""Notebook name -> the JSON record it writes into its ``output_dir`` (from the registry,
:data:`microlens.workflow.notebooks.NOTEBOOKS`)."""

PROJECTIONS_FILE = "embedding_projections.npz"
"""What ``05_embedding`` writes beside its record: see :func:`save_projections`."""

ATTENTION_STATISTICS_KEYS = ("n_events", "n_queries", "window", "regions",
                             "uniform_distance_obs", "layers")
"""The keys of :func:`microlens.evaluation.analysis.attention_statistics` inside
``attention_summary.json``."""

BINARY_POINT_TYPES = {"index": np.int64, "s": np.float64, "q": np.float64, "u_0": np.float64,
                      "dchi2_pspl": np.float64, "correct": np.bool_, "predicted": np.str_}
"""Columns of :func:`microlens.evaluation.analysis.binary_points` and the type each is drawn
with."""


# --------------------------------------------------------------------------------------------
# One builder per notebook: {figure name: figure}
# --------------------------------------------------------------------------------------------


def simulation_figures(store, per_class: int = 3, seed: int = 0) -> dict[str, go.Figure]:
    """The figures of ``01_simulate``.

    Parameters
    ----------
    store : LightCurveStore
        The generated dataset.
    per_class : int
        Light curves per class in the gallery.
    seed : int
        Seed of the gallery's choice of events (same seed, same events).

    Returns
    -------
    dict
        ``gallery`` (light curves by class with their noise-free models) and ``detectability``
        (histograms of the Δχ² of each lensing class; absent when the dataset has no
        detectability, rather than an empty figure).
    """
    figures = {"gallery": gallery_figure(store, per_class=per_class, seed=seed),
               "detectability": detectability_figure(store)}
    return {name: fig for name, fig in figures.items() if fig is not None}


def training_figures(history: Sequence[dict]) -> dict[str, go.Figure]:
    """The figures of ``02_train``.

    Parameters
    ----------
    history : sequence of dict
        One row per epoch, as :func:`microlens.models.runs.read_history` returns them.

    Returns
    -------
    dict
        ``training_curves`` (loss and accuracy of both splits per epoch).
    """
    return {"training_curves": training_curves_figure(history)}


def evaluation_figures(summary: dict) -> dict[str, go.Figure]:
    """The figures of ``03_evaluate``, from its summary alone.

    Parameters
    ----------
    summary : dict
        :func:`microlens.evaluation.evaluate.evaluate_run`'s summary (``evaluation_summary.json``).

    Returns
    -------
    dict
        ``confusion``, ``roc``, ``precision_recall``, ``reliability``, ``confidence``,
        ``early_detection`` (with the classical peer when it ran), ``decision_time``,
        ``peer_comparison`` and, when the data set has detectability, ``dchi2_recall`` (binary
        recall by binarity Δχ²).
    """
    final = summary["final"]
    figures = {
        "confusion": confusion_figure(final["classification"]),
        "roc": roc_figure(final["roc"]),
        "precision_recall": precision_recall_figure(final["precision_recall"]),
        "reliability": reliability_figure(final["calibration"]),
        "confidence": confidence_histogram_figure(final["confidence_histogram"]),
        "early_detection": early_detection_figure(summary["early_detection"],
                                                  summary.get("classical_peer"),
                                                  summary.get("model_kind")),
        "decision_time": decision_figure(summary["decision"]),
        "peer_comparison": peer_comparison_figure(summary),
        "dchi2_recall": dchi2_recall_figure(summary),
    }
    return {name: fig for name, fig in figures.items() if fig is not None}


def attention_focus(maps: Sequence):
    """The event ``04_attention`` draws in detail: the first binary, else the first event.

    Parameters
    ----------
    maps : sequence of EventAttention
        :func:`microlens.evaluation.analysis.attention_maps` of the events shown (at least one).

    Returns
    -------
    EventAttention
    """
    if not maps:
        raise ValueError("no attention maps given")
    return next((m for m in maps if m.label == CLASS_NAMES.index("binary")), maps[0])


def attention_figures(maps: Sequence, statistics: dict) -> dict[str, go.Figure]:
    """The figures of ``04_attention``.

    Parameters
    ----------
    maps : sequence of EventAttention
        :func:`microlens.evaluation.analysis.attention_maps` of the events shown, in order.
    statistics : dict
        :func:`microlens.evaluation.analysis.attention_statistics` of the same maps.

    Returns
    -------
    dict
        Empty when there are no maps (a model without attention:
        :func:`microlens.evaluation.analysis.no_attention_reason`). Otherwise
        ``attention_gallery`` (every event coloured by the attention it receives), for the
        :func:`attention_focus` event ``attention_event`` (last layer, head mean),
        ``attention_layers`` (every layer and head) and ``attention_band`` (first layer's
        query-by-key matrix), and ``attention_statistics`` (per layer and head).
    """
    if not maps:  # a model without attention maps (04_attention records why)
        return {}
    focus = attention_focus(maps)
    return {
        "attention_gallery": attention_gallery_figure(maps),
        "attention_event": attention_event_figure(focus, layer=focus.n_layers - 1, head=None),
        "attention_layers": attention_overview_figure(focus),
        "attention_band": attention_heatmap_figure(focus, layer=0, head=None),
        "attention_statistics": attention_statistics_figure(statistics),
    }


def embedding_figures(projections: Sequence, table) -> dict[str, go.Figure]:
    """The figures of ``05_embedding``: one map per projection method.

    Parameters
    ----------
    projections : sequence of Projection
        :func:`microlens.evaluation.analysis.project_embeddings` results (or
        :func:`load_projections`).
    table : DataFrame
        :func:`microlens.evaluation.analysis.embedding_table` of the same events in the same order,
        with the ``predicted`` and ``confidence`` columns for the hover text (without them, e.g.
        for a pretrained encoder that makes no predictions, the hover text has none).

    Returns
    -------
    dict
        ``embedding_<method>`` (``embedding_pca``, ``embedding_tsne``) per projection.
    """
    return {f"embedding_{p.method}": embedding_figure(p, table) for p in projections}


def limits_figures(report: dict, points: dict) -> dict[str, go.Figure]:
    """The figures of ``06_u0_analysis``.

    Parameters
    ----------
    report : dict
        :func:`microlens.evaluation.analysis.physical_limits` (``u0_report.json``); its
        ``threshold`` is the detectability cut of the binary points.
    points : dict
        :func:`microlens.evaluation.analysis.binary_points` as arrays or as JSON lists
        (:func:`points_record`); drawn with the types of :data:`BINARY_POINT_TYPES`, so both
        give the same figure.

    Returns
    -------
    dict
        ``physical_limits`` (performance in bins beside the ceiling) and ``binary_parameters``
        (every binary test event in the (s, q) plane).
    """
    typed = {}
    for key, kind in BINARY_POINT_TYPES.items():
        values = points[key]
        if kind is np.float64:  # JSON lists carry None for NaN
            values = [math.nan if v is None else v for v in values]
        typed[key] = np.asarray(values, dtype=kind)
    return {"physical_limits": physical_limits_figure(report),
            "binary_parameters": binary_parameter_figure(typed, report["threshold"])}


def real_events_figures(record: dict, series: dict, time_axis: str = "peak"
                        ) -> dict[str, go.Figure]:
    """The figures of ``07_real_events``.

    Parameters
    ----------
    record : dict
        :func:`microlens.realdata.real_events.classify_events`' record (``real_events.json``).
    series : dict
        Its arrays per event name (:func:`microlens.realdata.real_events.load_series` of
        ``real_events_series.npz``).
    time_axis : {'peak', 'hjd'}
        Days from each event's peak, or HJD − 2450000.

    Returns
    -------
    dict
        ``real_events_table`` (the summary), ``real_event_<slug>`` per event (its light curve over
        its class probabilities after every observation) and, when the record holds real benchmark
        shares beside the simulated ones (``beside_simulation``), ``sky_beside_simulation``.
    """
    figures = {"real_events_table": real_events_table_figure(record["summary"])}
    if record.get("beside_simulation"):
        figures["sky_beside_simulation"] = beside_simulation_figure(record["beside_simulation"])
    for event in record["events"]:
        figures[f"real_event_{event['slug']}"] = real_event_figure(
            event, series[event["name"]], time_axis=time_axis)
    return figures


# --------------------------------------------------------------------------------------------
# What the notebooks record beyond their metrics
# --------------------------------------------------------------------------------------------


def points_record(points: dict) -> dict[str, list]:
    """JSON-ready lists of :func:`microlens.evaluation.analysis.binary_points` (NaN written as
    None), for
    ``u0_report.json``'s ``binary_points``."""
    def plain(value):
        value = value.item() if hasattr(value, "item") else value
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {key: [plain(v) for v in np.asarray(points[key])] for key in BINARY_POINT_TYPES}


def save_projections(path, rows, projections: Sequence, predicted, confidence) -> Path:
    """Write what the embedding maps are drawn from, atomically, as plain arrays (no pickle).

    Parameters
    ----------
    path : path
        Target ``.npz`` file (normally ``output_dir /`` :data:`PROJECTIONS_FILE`).
    rows : sequence of int
        The store rows of the embedded test events, in order.
    projections : sequence of Projection
        One per method: its ``coords`` go in as ``coords_<method>``, its ``info`` as the JSON
        string ``info_<method>`` and its ``seed`` as ``seed_<method>``; ``methods`` lists them.
    predicted : array ``(E,)`` of int, or None
        The model's final predicted label of each event; None for a model without predictions
        (a pretrained encoder): then neither it nor ``confidence`` is written.
    confidence : array ``(E,)``, or None
        The model's final probability of that label (None exactly when ``predicted`` is).

    Returns
    -------
    Path
    """
    if (predicted is None) != (confidence is None):
        raise ValueError("predicted and confidence go together: give both (a model's final "
                         "predictions) or neither (a model without predictions), got "
                         f"predicted={'None' if predicted is None else 'an array'} and "
                         f"confidence={'None' if confidence is None else 'an array'}")
    arrays = {"rows": np.asarray(rows, dtype=np.int64),
              "methods": np.asarray([p.method for p in projections], dtype=np.str_)}
    if predicted is not None:
        arrays.update({"predicted": np.asarray(predicted, dtype=np.int64),
                       "confidence": np.asarray(confidence)})
    for p in projections:
        arrays[f"coords_{p.method}"] = np.asarray(p.coords)
        arrays[f"info_{p.method}"] = np.asarray(json.dumps(p.info))
        arrays[f"seed_{p.method}"] = np.asarray(p.seed, dtype=np.int64)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a name would gain ".npz"
        np.savez(handle, **arrays)
    return path


def load_projections(path) -> tuple[np.ndarray, list, np.ndarray | None, np.ndarray | None]:
    """Read :func:`save_projections`'s file (``allow_pickle=False``).

    Returns
    -------
    rows : ndarray of int64
    projections : list of Projection
    predicted : ndarray of int64, or None
        None when the embedded model made no predictions (a pretrained encoder).
    confidence : ndarray, or None
    """
    from microlens.evaluation.analysis import Projection

    with np.load(path, allow_pickle=False) as data:
        projections = [Projection(data[f"coords_{m}"], str(m), int(data[f"seed_{m}"]),
                                  json.loads(str(data[f"info_{m}"])))
                       for m in data["methods"]]
        if "predicted" not in data:
            return data["rows"], projections, None, None
        return data["rows"], projections, data["predicted"], data["confidence"]


# --------------------------------------------------------------------------------------------
# Rebuilding
# --------------------------------------------------------------------------------------------


def _field(record: dict, key: str, source: Path):
    if key not in record:
        raise KeyError(f"{source} has no {key!r}: it was written before figures could be "
                       "rebuilt; run its notebook again")
    return record[key]


def _existing(path, what: str, source: Path) -> Path:
    path = resolve_path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {source} records it as {what} (deleted or "
                                "moved?); its figures cannot be rebuilt without it")
    return path


def _open_dataset(record: dict, key: str, source: Path):
    from microlens.data.store import open_dataset

    return open_dataset(_existing(_field(record, key, source), "the dataset", source))


def _simulation(record: dict, source: Path) -> dict[str, go.Figure]:
    gallery = _field(record, "gallery", source)
    return simulation_figures(_open_dataset(record, "dataset_dir", source), **gallery)


def _training(record: dict, source: Path) -> dict[str, go.Figure]:
    from microlens.models.runs import read_history

    run_dir = _existing(_field(record, "run_dir", source), "the run directory", source)
    _existing(run_dir / "history.csv", "the run's history", source)
    return training_figures(read_history(run_dir))


def _evaluation(record: dict, source: Path) -> dict[str, go.Figure]:
    return evaluation_figures(record)


def _attention(record: dict, source: Path) -> dict[str, go.Figure]:
    from microlens.evaluation.analysis import attention_maps
    from microlens.models.registry import load_model

    if not _field(record, "attention", source):  # a model without attention maps: no figures
        return {}
    run_dir = _existing(_field(record, "run_dir", source), "the run directory", source)
    store = _open_dataset(record, "dataset_dir", source)
    rows = [event["row"] for event in _field(record, "events", source)]
    maps = attention_maps(load_model(run_dir), store, rows)
    statistics = {key: _field(record, key, source) for key in ATTENTION_STATISTICS_KEYS}
    return attention_figures(maps, statistics)


def _embedding(record: dict, source: Path) -> dict[str, go.Figure]:
    from microlens.evaluation.analysis import embedding_table

    projections_file = _existing(source.parent / PROJECTIONS_FILE, "the projections", source)
    store = _open_dataset(record, "dataset_dir", source)
    rows, projections, predicted, confidence = load_projections(projections_file)
    figures = embedding_figures(projections, embedding_table(store, rows, predicted, confidence))
    reconstruction = record.get("reconstruction") or {}
    if reconstruction.get("available"):  # a model with a decoder (rnn_vae)
        figures.update(_reconstruction(record, reconstruction, store, source))
    return figures


def _reconstruction(record: dict, summary: dict, store, source: Path) -> dict[str, go.Figure]:
    from microlens.evaluation.analysis import reconstruction_examples
    from microlens.models.registry import load_model

    run_dir = _existing(_field(record, "run_dir", source), "the run directory", source)
    examples = reconstruction_examples(load_model(run_dir), store,
                                       _field(summary, "example_rows", source))
    return reconstruction_figures(examples, summary,
                                  reference_epoch=getattr(store, "reference_epoch", 0.0))


def _limits(record: dict, source: Path) -> dict[str, go.Figure]:
    return limits_figures(record, _field(record, "binary_points", source))


def _real_events(record: dict, source: Path) -> dict[str, go.Figure]:
    from microlens.realdata.real_events import SERIES_FILE, load_series

    name = _field(record, "series_file", source) or SERIES_FILE
    series = load_series(_existing(source.parent / name, "the light curves and probabilities",
                                   source))
    return real_events_figures(record, series, time_axis=record.get("time_axis", "peak"))


_REBUILDERS: dict[str, Callable[[dict, Path], dict[str, go.Figure]]] = {
    "simulation_figures": _simulation, "training_figures": _training,
    "evaluation_figures": _evaluation, "attention_figures": _attention,
    "embedding_figures": _embedding, "limits_figures": _limits,
    "real_events_figures": _real_events,
    "real_benchmark_figures": lambda record, source: real_benchmark_figures(record),
    "parameter_figures": lambda record, source: parameter_figures(record),
}
"""Figure builder (a registry entry's ``figures``) -> the function that calls it with what a
notebook recorded."""


def _rebuild(notebook: str, record: dict, source: Path) -> dict[str, go.Figure]:
    return _REBUILDERS[NOTEBOOKS[notebook].figures](record, source)


def _read_record(directory: Path, notebook: str) -> tuple[dict, Path]:
    if notebook not in NOTEBOOKS:
        raise ValueError(f"unknown notebook {notebook!r}; valid: {', '.join(NOTEBOOKS)}")
    return load_record(notebook, directory)


def notebook_figures(output_dir, notebook: str) -> dict[str, go.Figure]:
    """Rebuild one notebook's figures from its record in ``output_dir`` (nothing is written).

    Parameters
    ----------
    output_dir : path
        The notebook's ``output_dir`` (relative paths: from the project root).
    notebook : str
        A key of :data:`NOTEBOOK_RECORDS`, e.g. ``'03_evaluate'``.

    Returns
    -------
    dict
        ``{figure name: figure}``: the names and figures the notebook wrote.

    Raises
    ------
    FileNotFoundError
        When the record, or a run directory, dataset or file it points to, is missing.
    KeyError
        When the record lacks what a rebuild needs (written by an older notebook).
    """
    record, source = _read_record(resolve_path(output_dir), notebook)
    return _rebuild(notebook, record, source)


def rebuild_figures(output_dir, formats: Sequence[str] | None = None,
                    notebooks: Iterable[str] | None = None) -> list[Path]:
    """Write again every figure the notebooks recorded in ``output_dir``.

    For each record of :data:`NOTEBOOK_RECORDS` present in ``output_dir``, the figures are
    rebuilt from what the notebook recorded (as :func:`notebook_figures`) and written with
    :func:`microlens.reports.save_figures` under the names the notebook used. All figures are built
    before the first is written, so a broken record leaves the directory as it was. Records,
    executed notebooks and every other file are left alone.

    Parameters
    ----------
    output_dir : path
        A notebooks' ``output_dir`` (relative paths: from the project root).
    formats : sequence of str, optional
        Formats to write (HTML always); None means the ``figure_formats`` each notebook recorded.
    notebooks : iterable of str, optional
        Only these notebooks (keys of :data:`NOTEBOOK_RECORDS`); their records must exist.
        None means every notebook that left a record.

    Returns
    -------
    list of Path
        The files written, notebook by notebook.

    Raises
    ------
    FileNotFoundError
        When ``output_dir`` holds no record, a requested notebook's record is missing, or a
        record points to a run directory, dataset or file that is gone (the message names it).
    KeyError
        When a record lacks what a rebuild needs (written by an older notebook).
    """
    directory = resolve_path(output_dir)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    if notebooks is None:
        notebooks = [n for n, name in NOTEBOOK_RECORDS.items() if (directory / name).is_file()]
        if not notebooks:
            raise FileNotFoundError(f"{directory} holds no notebook record (looked for "
                                    f"{', '.join(NOTEBOOK_RECORDS.values())})")
    built: dict[tuple, dict] = {}  # formats -> figures; all built before the first write
    for notebook in dict.fromkeys(notebooks):
        record, source = _read_record(directory, notebook)
        used = _field(record, "figure_formats", source) if formats is None else formats
        built.setdefault(tuple(used), {}).update(_rebuild(notebook, record, source))
    # one save (one kaleido start) per set of formats, not one per notebook
    return [path for used, figures in built.items()
            for path in save_figures(figures, directory, used)]


@command_line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m microlens.workflow.figures OUTPUT_DIR [--formats ...] [--notebooks ...]``; an
    input
    error is one line on stderr, exit status 2 (:mod:`microlens.core.cli`)."""
    parser = argparse.ArgumentParser(prog="python -m microlens.workflow.figures",
                                     formatter_class=TerminalHelpFormatter,
                                     description=rebuild_figures.__doc__.splitlines()[0])
    add_traceback_option(parser)
    parser.add_argument("output_dir", help="a notebooks' output_dir")
    parser.add_argument("--formats", nargs="+", help="default: the formats each notebook used")
    parser.add_argument("--notebooks", nargs="+", choices=list(NOTEBOOK_RECORDS),
                        help="default: every notebook that left a record")
    args = parser.parse_args(argv)
    print(*rebuild_figures(args.output_dir, args.formats, args.notebooks), sep="\n")
    return 0


__all__ = [
    "ATTENTION_STATISTICS_KEYS", "BINARY_POINT_TYPES", "NOTEBOOK_RECORDS", "PROJECTIONS_FILE",
    "attention_figures", "attention_focus", "embedding_figures", "evaluation_figures",
    "limits_figures", "load_projections", "notebook_figures", "parameter_figures", "points_record",
    "real_events_figures", "rebuild_figures", "save_projections", "simulation_figures",
    "training_figures"
]  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
