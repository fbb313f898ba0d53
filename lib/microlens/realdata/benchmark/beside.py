"""The sky beside the simulation: the same three questions asked of a run's simulated test split
and of real OGLE events and baselines (notebook ``07_real_events``).

A share measured on the simulator says how well a model learned the simulator; the real
benchmark (:func:`~microlens.realdata.benchmark.run_benchmark`) asks the same of the sky. Each row
pairs a share on the run's own test split (final answers, after the last observation) with its
real counterpart, both with 95 % Wilson intervals:

* **lensing events called lensing**: PSPL and binary test events against OGLE EWS events
  (every one a lensing event);
* **single-lens events called binary**: PSPL test events against all EWS events, of which only
  a few per cent are binary lenses (about 5-7 % in the OGLE-II/III binary searches of
  Jaroszyński et al. 2004, 2006), so a large real share is the model answering the noise;
* **curves without an event called lensing**: class-0 test curves (constant and variable
  stars) against real baseline segments (years of a star before its event).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from microlens.realdata.benchmark.summary import share

PAIRS = (
    ("lensing_called_lensing", "events_lensing", "lensing events called lensing",
     "simulated: PSPL and binary test events; real: EWS events, all lensing"),
    ("single_called_binary", "events_binary", "single-lens events called binary",
     "simulated: PSPL test events; real: all EWS events, a few per cent of them binary lenses"),
    ("no_event_called_lensing", "baselines_lensing", "curves without an event called lensing",
     "simulated: class-0 test curves (constant and variable stars); real: baseline segments"),
)
"""(simulated key, benchmark metric, what is asked, which curves each side counts)."""


def simulated_shares(labels, final_classes) -> dict:
    """The three shares of :data:`PAIRS` from a test split's labels and final answers.

    Parameters
    ----------
    labels : array of int
        True classes (0 no event, 1 PSPL, 2 binary).
    final_classes : array of int
        Each curve's top class after its last observation.

    Returns
    -------
    dict
        ``{key: share}`` for the simulated keys of :data:`PAIRS`
        (:func:`~microlens.realdata.benchmark.summary.share` entries) and ``n_events``.
    """
    labels, final = np.asarray(labels), np.asarray(final_classes)
    if labels.shape != final.shape:
        raise ValueError(f"simulated_shares: {labels.shape[0]} labels but {final.shape[0]} "
                         "answers")
    lensing, single, none = labels > 0, labels == 1, labels == 0
    return {"lensing_called_lensing": share((lensing & (final > 0)).sum(), lensing.sum()),
            "single_called_binary": share((single & (final == 2)).sum(), single.sum()),
            "no_event_called_lensing": share((none & (final > 0)).sum(), none.sum()),
            "n_events": int(labels.size)}


def run_simulated_shares(run_dir, *, device: str = "cpu", batch_size: int = 64,
                         workers: int = 1) -> dict:
    """:func:`simulated_shares` of a run on its own data set's test split (its cached
    predictions, :func:`microlens.evaluation.predictions.run_predictions`)."""
    from microlens.evaluation.predictions import run_predictions

    predictions, _ = run_predictions(run_dir, device=device, batch_size=batch_size,
                                     workers=workers)
    return simulated_shares(predictions.labels, predictions.classes_at(predictions.lengths - 1))


def beside_simulation(simulated: Mapping, benchmark: Mapping) -> dict:
    """The rows of :data:`PAIRS`: each simulated share beside the benchmark's model share.

    Parameters
    ----------
    simulated : mapping
        :func:`simulated_shares` (or :func:`run_simulated_shares`) of the run.
    benchmark : mapping
        A benchmark record of the same run (:func:`~microlens.realdata.benchmark.run_benchmark`
        with a model).

    Returns
    -------
    dict
        ``rows`` (``measure``, ``simulated``, ``real``, ``counted``), ``simulated_events``,
        ``real_events``, ``real_baselines``, ``folder`` and ``citation``: JSON-ready, what
        07's record keeps and its figure is drawn from.
    """
    model = benchmark.get("metrics", {}).get("model")
    if model is None:
        raise ValueError("beside_simulation: the benchmark record has no model answers "
                         "(run_benchmark was given no run)")
    rows = [{"measure": label, "simulated": dict(simulated[key]), "real": dict(model[metric]),
             "counted": counted} for key, metric, label, counted in PAIRS]
    counts = benchmark["counts"]
    return {"rows": rows, "simulated_events": int(simulated["n_events"]),
            "real_events": int(counts["event_segments"]),
            "real_baselines": int(counts["baseline_segments"]),
            "folder": benchmark.get("folder"), "citation": benchmark.get("citation")}
