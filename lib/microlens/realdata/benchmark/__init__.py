"""The real-data benchmark: real OGLE events and real baselines through a model and the peer.

A model trained on simulations meets the sky here. Every event of a folder in the OGLE Early Warning
System layout (:mod:`microlens.photometry.ews`; the shipped subset of the 2025 season by default) is
real microlensing, and the years of photometry before it are a real star without an event. For each
usable event the benchmark classifies two segments, each renormalised to its own baseline
(:func:`microlens.photometry.ews.segment`: what a stream had at that time):

* the **event segment**: every observation up to ``Tmax + 2 tau`` (OGLE's own PSPL fit);
* the **baseline segment**: the observations before OGLE's fit predicts a cumulative S/N of 2
  (:func:`microlens.photometry.ews.baseline_end`), so by construction it never holds the predicted
  event signal (a fixed ``Tmax - 3 tau`` would: the magnification is still ~1.017 there).

The model (any kind of :data:`microlens.models.registry.KINDS`) gives its probabilities after every
observation of a segment (the neural kinds are causal, so that one pass is the stream replay;
the ``features`` kind answers at its update fractions, each answer held); the classical peer
(:class:`microlens.models.peer.ClassicalPeer`, tuned on the run's data set) answers once, at the
end of each segment.

Metrics (each a count, a share and its 95 % Wilson interval)
    * **events called lensing**: the top class after the event segment's last observation is
      PSPL or binary (every EWS event is lensing: this is the recall);
    * **events called binary**: the top class is binary (a few per cent of bulge events are
      binary lenses: a large share is answering the noise, not the lens);
    * **baselines called lensing**: the top class after the baseline segment's last
      observation is PSPL or binary (a false alarm);
    * **stream false alerts**: baselines where P(lensing) = P(PSPL) + P(binary) reached 0.9
      at any observation. The peer has no stream: this entry is marked not applicable for it,
      never zero;
    * the same per bin of baseline magnitude (OGLE's ``I_bl``: < 17, 17-18, 18-19, 19-20,
      >= 20), cadence (median interval between observations of the whole curve: < 0.25 d,
      0.25-1.5 d, >= 1.5 d) and ``tau`` (< 10, 10-30, 30-60, >= 60 d);
    * **timing**: for events with at least 5 observations in ``[Tmax - tau, Tmax]`` and a
      usable fit, the first observation with P(lensing) >= 0.9 at or after the point where
      OGLE's fit starts to predict a signal (cumulative S/N >= 2); the lead ``Tmax - t`` in
      days and in units of ``tau`` (median and quartiles over the alerted events) and the
      share alerted before ``Tmax`` (over every timed event). An alert already raised in the
      event-free part is a false alert, counted apart (``n_alert_in_event_free_part``), not a
      lead time of years. The ``features`` kind is not timed (it answers only at fixed
      fractions of a curve);
    * **threshold curve**: the share of events found against the share of baselines called
      lensing as a threshold on the final P(lensing) moves, so one can read "events found at
      3 % baseline false alarms". A threshold can be given (chosen elsewhere, on validation
      stars); none is ever fitted on the scored events.

Rules (each exclusion is counted in the record's ``counts`` and listed in ``excluded``)
    * events without a params file: no segment (no peak time, no predicted signal);
    * degenerate fits (``umin = 0``, ``Amax = 99999``): event segment kept (``Tmax`` and
      ``tau`` end it), no baseline segment and not timed (the fit predicts no usable signal); *
      duplicate stars (one star in two overlapping fields): only the first event by name counts;
    * segments shorter than 20 observations are skipped;
    * ``stars=`` restricts scoring to some stars (:attr:`microlens.photometry.ews.EwsEvent.star`),
    so a
      cross-fitted report scores each fold of stars with the model that never saw them;
      :func:`combine_reports` merges the folds (counts add, intervals recomputed).

Cite Udalski et al. 2015, AcA 65, 1 (OGLE-IV) and Udalski 2003, AcA 53, 291 (the EWS) with
results on OGLE EWS data. More: ``docs/benchmark.md``.

Usage::

    from microlens.realdata.benchmark import run_benchmark
    record = run_benchmark(None, "outputs/runs/quick", workers=2)   # the shipped subset
    record["metrics"]["model"]["baselines_lensing"]   # {count, of, share, interval}

    python -m microlens.realdata.benchmark ../shared/real/ogle_ews_2025 --run outputs/runs/quick \\
        --workers 2 --out outputs/real_data/benchmark.json
"""

from __future__ import annotations

from microlens.realdata.benchmark.answers import (
    BATCH_OBSERVATIONS,
    Segment,
    model_answers,
    peer_answers,
)
from microlens.realdata.benchmark.beside import (
    beside_simulation,
    run_simulated_shares,
    simulated_shares,
)
from microlens.realdata.benchmark.run import (
    ALERT_THRESHOLD,
    EXCLUSIONS,
    MIN_SEGMENT_POINTS,
    TIMING_MIN_POINTS,
    plan_events,
    run_benchmark,
    summary_view,
)
from microlens.realdata.benchmark.summary import (
    BIN_EDGES,
    HEADLINE,
    HEADLINE_LABELS,
    combine_reports,
    headline_rows,
    share,
    summarise,
    threshold_curve,
)

__all__ = [
    "ALERT_THRESHOLD", "BATCH_OBSERVATIONS", "BIN_EDGES", "EXCLUSIONS", "HEADLINE",
    "HEADLINE_LABELS", "MIN_SEGMENT_POINTS", "Segment", "TIMING_MIN_POINTS", "beside_simulation",
    "combine_reports", "headline_rows", "model_answers", "peer_answers", "plan_events",
    "run_benchmark", "share", "run_simulated_shares", "simulated_shares", "summarise",
    "summary_view", "threshold_curve"
]  # fmt: skip
