"""Real data: trained models on real survey photometry.

Classifying one real event's files (:mod:`~microlens.realdata.real_events`) and the real
benchmark on OGLE EWS events and baselines, cross-fitted by star
(:mod:`~microlens.realdata.benchmark`), and the lens parameters estimated on real events
against OGLE's own fits (:mod:`~microlens.realdata.parameters`).
"""

from microlens.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "Classified": "real_events",
    "DEFAULT_FOLDER": "parameters",
    "ERROR_SPREAD_LIMIT": "real_events",
    "ESTIMATED": "parameters",
    "METRICS": "parameters",
    "METRIC_LABELS": "parameters",
    "MIN_STAGE_POINTS": "parameters",
    "N_BOOTSTRAP": "parameters",
    "PEAK_WINDOW": "real_events",
    "SEED": "parameters",
    "SERIES_FIELDS": "real_events",
    "SERIES_FILE": "real_events",
    "SPLITS": "parameters",
    "STAGES": "parameters",
    "TAU_RANGE": "parameters",
    "TrainingRangeWarning": "real_events",
    "WINDOW_DAYS": "parameters",
    "bootstrap_median": "parameters",
    "classify_event": "real_events",
    "classify_events": "real_events",
    "load_series": "real_events",
    "main": "parameters",
    "markdown_table": "parameters",
    "model_inputs": "real_events",
    "model_medians": "parameters",
    "ogle_fit_problem": "parameters",
    "online_fits": "parameters",
    "parameter_errors": "parameters",
    "peak_index": "real_events",
    "real_parameter_comparison": "parameters",
    "save_series": "real_events",
    "split_of": "parameters",
    "stage_ends": "parameters",
    "training_range_problems": "real_events",
    "tune_peer": "real_events",
})
