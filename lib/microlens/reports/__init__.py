"""Reports: figures and explorers, built from events, stores, runs, predictions and records.

Plotly figure builders are pure functions; nothing here holds notebook state. The interactive
explorers (:mod:`microlens.reports.widgets`) reuse these builders, and
:mod:`microlens.reports.noise_statistics` measures real and simulated baselines side by side
(``python -m microlens.reports.noise_statistics``). One module per subject, the figure builders
re-exported here (``from microlens.reports import ...``):

* :mod:`.style`: class colours, template, number and event formatting;
* :mod:`.events`: light curves, galleries, detectability, caustics;
* :mod:`.training`: training curves;
* :mod:`.evaluation`: confusion, ROC, precision-recall, calibration, early detection, decision
  time, the classical peer;
* :mod:`.limits`: performance in bins of u_0, q, s and detectability beside the ceiling;
* :mod:`.attention`: attention over light curves, the causal band, per layer and head;
* :mod:`.embedding`: 2-D maps of the final embeddings coloured by class and parameters;
* :mod:`.reconstruction`: a latent model's reconstructed light curves and its reconstruction
  error by class;
* :mod:`.real_events`: real light curves with the class probabilities after every observation;
* :mod:`.parameters`: the lens-parameter heads beside the online fit (errors, coverage and alerts,
  from the record of :func:`microlens.evaluation.parameters.evaluate_parameters`) and one event
  replayed with the heads' point lens after every observation;
* :mod:`.noise`: residual statistics of real baselines beside simulated constant stars;
* :mod:`.study`: a study's metrics against its swept parameters, early detection of all cells;
* :mod:`.export`: :func:`save_figure` (HTML always; PNG/PDF through kaleido and Chromium).
"""

from __future__ import annotations

from types import ModuleType

from microlens.reports.attention import (  # noqa: F401
    attention_event_figure,
    attention_gallery_figure,
    attention_heatmap_figure,
    attention_overview_figure,
    attention_statistics_figure,
)
from microlens.reports.embedding import embedding_figure, embedding_traces  # noqa: F401
from microlens.reports.evaluation import (  # noqa: F401
    LABEL_SPACING,
    confidence_histogram_figure,
    confusion_figure,
    dchi2_recall_figure,
    decision_figure,
    early_detection_figure,
    model_label,
    peer_comparison_figure,
    precision_recall_figure,
    reliability_figure,
    roc_figure,
    threshold_labels,
)
from microlens.reports.events import (  # noqa: F401
    GAP_DAYS,
    MODEL_POINTS,
    WEBGL_POINTS,
    caustic_figure,
    caustic_topology,
    caustic_traces,
    caustic_view,
    circle,
    closest_approach,
    detectability_figure,
    gallery_figure,
    join_curves,
    lens_positions,
    light_curve_figure,
    light_curve_traces,
    model_curve,
    pick_events,
    season_bounds,
    split_curves,
    time_title,
)
from microlens.reports.export import (  # noqa: F401
    BROWSER_NAMES,
    DEFAULT_FORMATS,
    STATIC_FORMATS,
    StaticExportWarning,
    find_browser,
    save_figure,
    save_figures,
)
from microlens.reports.limits import (  # noqa: F401
    add_binned_traces,
    binary_parameter_figure,
    physical_limits_figure,
)
from microlens.reports.parameters import (  # noqa: F401
    alert_figure,
    coverage_by_share_figure,
    parameter_coverage_figure,
    parameter_error_figure,
    parameter_figures,
    parameter_replay_figure,
    parameter_table,
)
from microlens.reports.real_events import real_event_figure, real_events_table_figure  # noqa: F401
from microlens.reports.reconstruction import (  # noqa: F401
    reconstruction_error_figure,
    reconstruction_examples_figure,
    reconstruction_figures,
)
from microlens.reports.study import study_early_detection_figure, study_metrics_figure  # noqa: F401
from microlens.reports.style import (  # noqa: F401
    CLASS_COLORS,
    FLUX_TITLE,
    MODEL_COLOR,
    TEMPLATE,
    class_label,
    class_name,
    event_kind,
    event_table_html,
    event_title,
    format_value,
    log_ticks,
)
from microlens.reports.training import (  # noqa: F401
    CURVE_SERIES,
    TRAIN_COLOR,
    VAL_COLOR,
    add_history_rows,
    training_curves_figure,
)

__all__ = sorted(name for name, value in dict(globals()).items()
                 if not name.startswith("_") and name != "annotations"
                 and name != "ModuleType" and not isinstance(value, ModuleType))
"""Every figure builder and helper imported above (the submodules themselves are not names)."""
