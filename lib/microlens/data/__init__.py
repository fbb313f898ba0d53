"""Data sets: simulated light curves on disk, their labels and summaries.

:func:`~microlens.data.store.generate_dataset` writes a data set (memory-mapped arrays, a
manifest with its config, resumable, worker-count independent);
:func:`~microlens.data.store.open_dataset` reads it. Label policies and detectability
summaries live beside them.
"""

from microlens.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "DETECTABILITY_THRESHOLD": "summaries",
    "DatasetError": "store",
    "INVALID_DTYPE": "store",
    "LABEL_POLICIES": "labels",
    "LightCurveDataset": "store",
    "LightCurveStore": "store",
    "SCHEMA_VERSION": "store",
    "check_label_policy": "labels",
    "check_threshold": "labels",
    "collate_light_curves": "store",
    "dchi2_values": "summaries",
    "detectability_summary": "summaries",
    "generate_dataset": "store",
    "has_detectability": "labels",
    "observable_labels": "labels",
    "open_dataset": "store",
    "pad_events": "store",
    "resimulate": "store",
    "scan_invalid": "store",
    "simulation_metrics": "summaries",
    "split_code": "store",
    "stratified_split": "store",
    "training_labels": "labels",
})
