"""Real data: trained models on real survey photometry.

Classifying one real event's files (:mod:`~microlens.realdata.real_events`) and the real
benchmark on OGLE EWS events and baselines, cross-fitted by star
(:mod:`~microlens.realdata.benchmark`).
"""

from microlens.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Classified": "real_events",
    "ERROR_SPREAD_LIMIT": "real_events",
    "PEAK_WINDOW": "real_events",
    "SERIES_FIELDS": "real_events",
    "SERIES_FILE": "real_events",
    "TrainingRangeWarning": "real_events",
    "classify_event": "real_events",
    "classify_events": "real_events",
    "load_series": "real_events",
    "model_inputs": "real_events",
    "peak_index": "real_events",
    "save_series": "real_events",
    "training_range_problems": "real_events",
    "tune_peer": "real_events",
})
