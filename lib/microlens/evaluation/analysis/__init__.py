"""Analyses of a trained classifier on the test split: what it attends to, how it arranges
events, and how its performance compares with the physical limits.

Every function here reads **test-split** events only (rows are checked with
:func:`microlens.models.holdout.require_test_split`) and returns plain numpy arrays or
JSON-ready dicts, so the notebooks, the figures (:mod:`microlens.reports`) and the explorers
(:mod:`microlens.reports.widgets`) share one computation that the tests can reach. One module per
subject, all re-exported here:

* :mod:`.attention` (``04_attention``): the per-layer, per-head sliding-window weights of chosen
  events (:func:`attention_maps`); the dense query-by-key matrix (:func:`dense_attention`); the
  attention each observation receives (:func:`attention_received`); per-query look-back distance,
  entropy and weight on the peak and the wings of the signal (:func:`attention_statistics`).
* :mod:`.embedding` (``05_embedding``): the pooled embedding behind each event's final prediction
  (:func:`event_embeddings`), 2-D projections (:func:`project_embeddings`, PCA or t-SNE) and
  separability numbers (:func:`embedding_metrics`, :func:`embedding_summary`); a masked
  pretraining run's encoder, which never saw a label, embeds the same way without predictions
  (:func:`embed_pretrained`, :func:`embedding_dataset`).
* :mod:`.reconstruction` (``05_embedding``, latent kinds): the ``rnn_vae`` decoder's
  reconstruction error by class and as an anomaly score (:func:`reconstruction_summary`), the
  reconstructions of a few events per class (:func:`reconstruction_examples`), the latent
  means used as the embedding (:func:`event_latents`), and why another kind has none
  (:func:`no_decoder_reason`).
* :mod:`.limits` (``06_u0_analysis``): accuracy and binary recall in bins of u_0, q, s and the
  detectability, beside the fraction of binaries that are detectable at all
  (:func:`physical_limits`).
* :func:`run_dataset` (from :mod:`microlens.evaluation.predictions`): the dataset a run was trained
on;
  :func:`run_model_kind`: the model kind a run holds.

Every model kind (:data:`microlens.models.registry.KINDS`) is read: attention only where the model
has it (:func:`no_attention_reason` says why not), embeddings of the neural kinds from their
pooled states and of the ``features`` kind from its standardised curve features
(:func:`embed_run`).

torch is imported inside the functions that run a model, so the figure modules built on the array
functions here import quickly.
"""

from __future__ import annotations

from microlens.evaluation.analysis.attention import (  # noqa: F401
    RECEIVED_NORMALIZATIONS,
    SIGNAL_REGIONS,
    EventAttention,
    attention_distance,
    attention_entropy,
    attention_maps,
    attention_on_region,
    attention_received,
    attention_statistics,
    dense_attention,
    event_records,
    key_positions,
    no_attention_reason,
    no_attention_record,
    signal_region,
    uniform_distance,
    uniform_window_weights,
    visible_keys,
)
from microlens.evaluation.analysis.common import run_model_kind  # noqa: F401
from microlens.evaluation.analysis.embedding import (  # noqa: F401
    EMBEDDING_SOURCES,
    NO_LABELS_REASON,
    PROJECTION_METHODS,
    Projection,
    RunEmbeddings,
    binary_neighbourhood,
    embed_pretrained,
    embed_run,
    embedding_dataset,
    embedding_metrics,
    embedding_probabilities,
    embedding_summary,
    embedding_table,
    event_embeddings,
    feature_embeddings,
    is_pretraining_run,
    knn_accuracy,
    load_pretrained_encoder,
    project_embeddings,
    projection_methods,
    silhouette,
    standardize,
    tsne_perplexity,
)
from microlens.evaluation.analysis.limits import (  # noqa: F401
    BIN_COLUMNS,
    bin_edges,
    binary_points,
    binned_performance,
    physical_limits,
)
from microlens.evaluation.analysis.reconstruction import (  # noqa: F401
    AUC_PAIRS,
    ERROR_DESCRIPTION,
    anomaly_auc,
    event_latents,
    event_reconstruction_errors,
    example_rows,
    no_decoder_reason,
    reconstruction_examples,
    reconstruction_report,
    reconstruction_summary,
)
from microlens.evaluation.predictions import run_dataset  # noqa: F401
