"""Attention and embedding analysis (microlens.evaluation.analysis), their figures, the attention
browser."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microlens.evaluation.analysis import (
    PROJECTION_METHODS,
    SIGNAL_REGIONS,
    attention_distance,
    attention_entropy,
    attention_maps,
    attention_on_region,
    attention_received,
    attention_statistics,
    binary_neighbourhood,
    dense_attention,
    embedding_metrics,
    embedding_probabilities,
    embedding_summary,
    embedding_table,
    event_embeddings,
    event_records,
    key_positions,
    knn_accuracy,
    project_embeddings,
    projection_methods,
    run_dataset,
    signal_region,
    tsne_perplexity,
    uniform_distance,
    uniform_window_weights,
)
from microlens.models.holdout import SplitError, select_test_events
from microlens.models.registry import load_model
from microlens.reports.attention import (
    EVENT_TRACES,
    attention_event_figure,
    attention_gallery_figure,
    attention_heatmap_figure,
    attention_overview_figure,
    attention_statistics_figure,
)
from microlens.reports.embedding import COLOR_OPTIONS, embedding_figure
from microlens.reports.widgets import AttentionBrowser

# --------------------------------------------------------------------------------------------
# Hand-made window weights
# --------------------------------------------------------------------------------------------


def random_window_weights(n: int, window: int, lead=(), seed: int = 0) -> np.ndarray:
    """Valid window weights: positive on visible keys, 0 before the first observation, rows
    summing to 1."""
    rng = np.random.default_rng(seed)
    w = rng.random((*lead, n, window)) + 0.05
    w = np.where(key_positions(n, window) >= 0, w, 0.0)
    return w / w.sum(axis=-1, keepdims=True)


def test_key_positions_name_the_window():
    keys = key_positions(4, 3)
    assert keys.tolist() == [[-2, -1, 0], [-1, 0, 1], [0, 1, 2], [1, 2, 3]]


def test_dense_attention_is_banded_lower_triangular_with_unit_rows():
    n, window = 9, 4
    w = random_window_weights(n, window, lead=(2, 3))
    dense = dense_attention(w)
    assert dense.shape == (2, 3, n, n)
    query, key = np.indices((n, n))
    outside = (key > query) | (key <= query - window)
    assert np.all(dense[..., outside] == 0)  # causal and at most window - 1 back
    np.testing.assert_allclose(dense.sum(axis=-1), 1.0, rtol=1e-12)
    for k in range(n):
        for j in range(window):
            i = k - window + 1 + j
            if i >= 0:
                assert dense[1, 2, k, i] == w[1, 2, k, j]


def test_dense_attention_accepts_torch_tensors():
    w = random_window_weights(5, 2)
    np.testing.assert_array_equal(dense_attention(torch.from_numpy(w)), dense_attention(w))


def test_attention_received_known_answer():
    # window 2, four observations, uniform over what each query sees:
    # q0 -> {0: 1}, q1 -> {0: .5, 1: .5}, q2 -> {1: .5, 2: .5}, q3 -> {2: .5, 3: .5}
    w = uniform_window_weights(4, 2)
    np.testing.assert_allclose(w, [[0, 1], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(attention_received(w), [1.5, 1.0, 1.0, 0.5])
    # each observation is seen by min(window, N - i) queries: 2, 2, 2, 1
    np.testing.assert_allclose(attention_received(w, normalize="per_query"),
                               [0.75, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(attention_received(w, normalize="uniform"), 1.0)


def test_attention_received_is_the_column_sum_of_the_dense_matrix():
    w = random_window_weights(11, 4, lead=(3,), seed=2)
    received = attention_received(w)
    np.testing.assert_allclose(received, dense_attention(w).sum(axis=-2), rtol=1e-12)
    np.testing.assert_allclose(received.sum(axis=-1), 11.0)


def test_attention_received_rejects_unknown_normalisation():
    with pytest.raises(ValueError, match="per_query.*uniform"):
        attention_received(uniform_window_weights(3, 2), normalize="max")


def test_distance_entropy_and_region_known_answers():
    n, window = 5, 3
    uniform = uniform_window_weights(n, window)
    np.testing.assert_allclose(attention_distance(uniform), uniform_distance(n, window))
    np.testing.assert_allclose(uniform_distance(n, window), [0, 0.5, 1, 1, 1])
    times = np.array([0.0, 1.0, 3.0, 6.0, 10.0])
    # query 4 sees observations 2, 3, 4 equally: (7 + 4 + 0) / 3 days back
    assert attention_distance(uniform, times)[4] == pytest.approx(11 / 3)
    entropy = attention_entropy(uniform, normalized=True)
    assert np.isnan(entropy[0]) and np.allclose(entropy[1:], 1.0)
    own = np.zeros((n, window))
    own[:, -1] = 1.0  # every query looks only at itself
    np.testing.assert_allclose(attention_entropy(own), 0.0)
    np.testing.assert_allclose(attention_distance(own), 0.0)
    region = np.array([False, False, True, False, False])
    attended, share, in_view = attention_on_region(uniform, region)
    np.testing.assert_allclose(attended, [0, 0, 1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(share, attended)  # uniform attention gets exactly the share
    assert in_view.tolist() == [False, False, True, True, True]


def test_signal_region_marks_the_half_maximum_of_a_pspl_peak():
    times = np.linspace(-30.0, 30.0, 601)
    event = {"label": 1, "times": times,
             "params": {"label": 1, "t_0": 0.0, "u_0": 0.1, "t_E": 10.0, "f_s": 1.0}}
    peak = signal_region(event, 0.5)
    assert peak[300] and not peak[0] and not peak[-1]
    inside = times[peak]
    assert inside.min() == pytest.approx(-inside.max(), abs=0.11)  # symmetric about t_0
    wings = signal_region(event, 0.05, 0.5)
    assert not (wings & peak).any() and wings.any()
    flat = {"label": 0, "times": times, "params": {"label": 0}}
    assert not signal_region(flat).any()
    with pytest.raises(ValueError):
        signal_region(event, 0.6, 0.5)


# --------------------------------------------------------------------------------------------
# A tiny trained model on the evaluation set
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(eval_run):
    return load_model(eval_run)


@pytest.fixture(scope="module")
def rows(eval_store):
    return select_test_events(eval_store, per_class=2, seed=3)


@pytest.fixture(scope="module")
def maps(model, eval_store, rows):
    return attention_maps(model, eval_store, rows, batch_size=4)


def test_run_dataset_is_the_run_s_own(eval_run, eval_store):
    assert run_dataset(eval_run).path == eval_store.path
    assert run_dataset(eval_run, str(eval_store.path)).path == eval_store.path


def test_attention_maps_equal_the_forward_pass(model, eval_store, rows, maps):
    batch = eval_store.batch(rows)
    with torch.no_grad():
        out = model(batch["times"], batch["flux"], batch["flux_err"], batch["mask"],
                    return_attention=True)
    proba = model.predict_proba(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    cfg = model.config
    assert [m.row for m in maps] == rows.tolist()
    for i, m in enumerate(maps):
        n = int(batch["lengths"][i])
        assert m.weights.shape == (cfg.n_layers, cfg.n_heads, n, cfg.window)
        assert m.label == int(eval_store.labels[m.row])
        np.testing.assert_array_equal(m.times, eval_store.event(m.row)["times"])
        for layer in range(cfg.n_layers):
            np.testing.assert_allclose(m.weights[layer], out["attention"][layer][i, :, :n],
                                       rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(m.probabilities, proba[i, :n], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.weights.sum(axis=-1), 1.0, atol=1e-5)
        before_start = key_positions(n, cfg.window) < 0
        assert np.all(m.weights[..., before_start] == 0)


def test_attention_maps_do_not_depend_on_the_batch(model, eval_store, rows, maps):
    alone = attention_maps(model, eval_store, rows[-1:])[0]
    np.testing.assert_allclose(alone.weights, maps[-1].weights, rtol=1e-5, atol=1e-6)


def test_attention_statistics_are_consistent(maps, model):
    stats = attention_statistics(maps)
    cfg = model.config
    assert stats["n_events"] == len(maps)
    assert stats["n_queries"] == sum(m.n_obs for m in maps)
    assert stats["window"] == cfg.window and set(stats["regions"]) == set(SIGNAL_REGIONS)
    assert 0 < stats["uniform_distance_obs"] < cfg.window
    assert len(stats["layers"]) == cfg.n_layers
    for layer in stats["layers"]:
        assert len(layer["heads"]) == cfg.n_heads
        for entry in (layer, *layer["heads"]):
            assert 0 <= entry["distance_obs"] <= cfg.window - 1
            assert entry["distance_days"] >= 0
            assert 0 <= entry["entropy_normalized"] <= 1 + 1e-9
            assert 0 <= entry["self_weight"] <= 1
            peak = entry["regions"]["peak"]
            assert 0 < peak["uniform"] <= 1 and 0 <= peak["weight"] <= 1
            assert peak["enrichment"] == pytest.approx(peak["weight"] / peak["uniform"])
        # the head mean of a layer is the mean of its heads (each query counts once in both)
        heads = np.mean([h["distance_obs"] for h in layer["heads"]])
        assert layer["distance_obs"] == pytest.approx(heads, rel=1e-9)
    records = event_records(maps)
    assert [r["row"] for r in records] == [m.row for m in maps]
    assert all(abs(sum(r["final_probabilities"]) - 1) < 1e-5 for r in records)


def test_analysis_refuses_rows_outside_the_test_split(model, eval_store):
    train_row = int(eval_store.indices("train")[0])
    for call in (lambda: attention_maps(model, eval_store, [train_row]),
                 lambda: event_embeddings(model, eval_store, [train_row]),
                 lambda: embedding_table(eval_store, [train_row]),
                 lambda: AttentionBrowser(model, eval_store, [train_row])):
        with pytest.raises(SplitError, match="test split"):
            call()


def test_attention_figures(maps):
    binary = next(m for m in maps if m.label == 2)
    fig = attention_event_figure(binary, layer=1, head=0, query=30)
    assert [t.name for t in fig.data][:3] == ["data", "window weights", "query"]
    assert len(fig.data) == len(EVENT_TRACES)
    np.testing.assert_array_equal(fig.data[0].y, binary.event["flux"])
    assert len(fig.data[1].x) == binary.window  # query 30 sees a full window
    weights = binary.weights[1, 0, 30]  # drawn relative to uniform: weight x window
    custom = np.asarray(fig.data[1].customdata, dtype=float)
    np.testing.assert_allclose(custom[:, 1], weights, rtol=1e-6)
    np.testing.assert_allclose(custom[:, 2], weights * binary.window, rtol=1e-6)
    heat = attention_heatmap_figure(binary, layer=0, head=None, span=(10, 60))
    z = np.asarray(heat.data[0].z, dtype=float)
    assert z.shape == (50, 50)
    query, key = np.indices(z.shape)
    band = (key <= query) & (query - key < binary.window)
    assert np.isnan(z[~band]).all() and np.isfinite(z[band]).all()
    with pytest.raises(IndexError, match="valid"):
        attention_event_figure(binary, layer=5)
    assert len(attention_overview_figure(binary).data) == 1 + binary.n_layers * (
        binary.n_heads + 1)
    assert len(attention_gallery_figure(maps).data) == len(maps)
    assert len(attention_statistics_figure(attention_statistics(maps)).data) > 0


# --------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------


def test_event_embeddings_equal_the_unpadded_single_event_embedding(model, eval_store):
    rows = select_test_events(eval_store, n=7, seed=1)
    emb = event_embeddings(model, eval_store, rows, batch_size=3)
    assert emb.shape == (7, 2 * model.config.d_model)
    for i, row in enumerate(rows):
        event = eval_store.event(int(row))
        tensors = [torch.as_tensor(event[k], dtype=torch.float32)[None]
                   for k in ("times", "flux", "flux_err")]
        with torch.no_grad():
            pooled = model(*tensors, return_embedding=True)["embedding"][0, -1]
        np.testing.assert_allclose(emb[i], pooled.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(event_embeddings(model, eval_store, rows, batch_size=64), emb,
                               rtol=1e-5, atol=1e-6)
    # the head on the final embedding is the model's final calibrated prediction, with the
    # model's own calibration: a temperature curve over observations seen (needs the lengths),
    # or one temperature
    batch = eval_store.batch(rows)
    fitted = (model.temperature_counts.clone(), model.temperature_curve.clone())
    try:
        for knots, temperatures in (([1.0, 50.0, 1000.0], [3.0, 1.5, 0.7]), ([], [])):
            model.set_temperature_curve(knots, temperatures)
            proba = model.predict_proba(batch["times"], batch["flux"], batch["flux_err"],
                                        batch["mask"])
            final = proba[np.arange(7), batch["lengths"] - 1].numpy()
            np.testing.assert_allclose(embedding_probabilities(model, emb, batch["lengths"]),
                                       final, rtol=1e-4, atol=1e-5)
            if knots:
                with pytest.raises(ValueError, match="pass counts"):
                    embedding_probabilities(model, emb)
            else:
                np.testing.assert_allclose(embedding_probabilities(model, emb), final,
                                           rtol=1e-4, atol=1e-5)
    finally:
        model.set_temperature_curve(*fitted)


def test_project_embeddings_shapes_determinism_and_errors():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(20, 6))
    pca = project_embeddings(emb, "pca", seed=0)
    assert pca.coords.shape == (20, 2) and pca.method == "pca"
    ratio = pca.info["explained_variance_ratio"]
    assert len(ratio) == 2 and ratio[0] >= ratio[1] > 0 and sum(ratio) <= 1
    tsne = project_embeddings(emb, "tsne", seed=4)
    again = project_embeddings(emb, "tsne", seed=4)
    assert tsne.coords.shape == (20, 2)
    np.testing.assert_array_equal(tsne.coords, again.coords)
    assert tsne.info["perplexity"] == pytest.approx(19 / 3)  # clipped for 20 events
    assert tsne_perplexity(1000) == 30.0 and tsne_perplexity(4) == 1.0
    with pytest.raises(ValueError, match="valid: pca, tsne"):
        project_embeddings(emb, "umap")
    with pytest.raises(ValueError, match="at least 3"):
        project_embeddings(emb[:2], "pca")
    assert set(PROJECTION_METHODS) == {"pca", "tsne"}
    assert projection_methods("both") == ("pca", "tsne") and projection_methods("pca") == ("pca",)
    with pytest.raises(ValueError, match="valid: pca, tsne, both"):
        projection_methods("all")


def test_embedding_metrics_on_separated_and_mixed_clusters():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 15)
    separated = rng.normal(size=(45, 4)) * 0.1 + labels[:, None] * 5.0
    metrics = embedding_metrics(separated, labels, k=3, folds=3, seed=0)
    assert metrics["silhouette"] > 0.8
    assert metrics["knn"]["accuracy"] == 1.0 and metrics["knn"]["chance"] == pytest.approx(1 / 3)
    assert metrics["n_events"] == 45 and metrics["dimension"] == 4
    assert 1 <= metrics["pca_components_90"] <= 4
    mixed = rng.normal(size=(45, 4))
    assert embedding_metrics(mixed, labels)["silhouette"] < 0.2
    small = knn_accuracy(separated[[0, 1, 15, 16]], np.array([0, 0, 1, 1]), k=5, folds=5)
    assert small["folds"] == 2 and small["k"] == 1 and small["accuracy"] == 1.0
    assert knn_accuracy(separated[:3], np.array([0, 0, 1]))["accuracy"] is None


def test_binary_neighbourhood_counts_pspl_neighbours():
    # two binaries inside the PSPL cluster (undetectable), two beside the flat ones (detectable)
    points = np.array([[0, 0], [0, 0.1], [0.1, 0], [0.05, 0.05], [0.02, 0.02],
                       [10, 10], [10, 10.1], [10.1, 10], [10.05, 10.05], [10.02, 10.02]])
    labels = np.array([1, 1, 1, 2, 2, 0, 0, 0, 2, 2])
    dchi2 = np.array([np.nan] * 3 + [10.0, 20.0] + [np.nan] * 3 + [500.0, 900.0])
    out = binary_neighbourhood(points, labels, dchi2, k=3)
    assert out["undetectable"]["n"] == 2 and out["detectable"]["n"] == 2
    # each in-cluster binary has the other binary and two PSPL events as its 3 neighbours
    assert out["undetectable"]["pspl_neighbour_fraction"] == pytest.approx(2 / 3)
    assert out["detectable"]["pspl_neighbour_fraction"] == pytest.approx(0.0)


def test_embedding_table_summary_and_figure(model, eval_store):
    rows = select_test_events(eval_store, n=30, seed=2)
    emb = event_embeddings(model, eval_store, rows)
    table = embedding_table(eval_store, rows)
    assert table.index.tolist() == rows.tolist()
    labels = table["label"].to_numpy()
    assert table["abs_u_0"][labels == 0].isna().all()
    assert table["abs_u_0"][labels > 0].notna().all()
    assert table["log10_q"][labels != 2].isna().all()
    assert table["log10_dchi2_pspl"][labels == 2].notna().all()  # the set has detectability
    projections = [project_embeddings(emb, m, seed=0) for m in PROJECTION_METHODS]
    summary = embedding_summary(emb, table, projections, seed=0)
    assert summary["n_events"] == 30 and sum(summary["class_counts"].values()) == 30
    assert summary["split"] == "test" and set(summary["projections"]) == {"pca", "tsne"}
    assert -1 <= summary["silhouette"] <= 1
    assert 0 <= summary["knn"]["accuracy"] <= 1
    fig = embedding_figure(projections[0], table)
    # class: three traces; each continuous colouring: with and without a value
    assert len(fig.data) == 3 + 2 * (len(COLOR_OPTIONS) - 1)
    assert [t.visible for t in fig.data] == [True] * 3 + [False] * (len(fig.data) - 3)
    shown = sorted(int(e) for t in fig.data[:3] for e in t.customdata)
    assert shown == sorted(rows.tolist())
    with pytest.raises(ValueError, match="valid: class, u_0, q, detectability"):
        embedding_figure(projections[0], table, color_by=["mass"])


# --------------------------------------------------------------------------------------------
# The attention browser
# --------------------------------------------------------------------------------------------


@pytest.mark.slow  # seconds long: the whole suite runs it, the fast tier (under 45 s) not
def test_attention_browser_shows_the_selected_event(model, eval_store, rows):
    browser = AttentionBrowser(model, eval_store, rows)
    assert browser.fig in browser.widget.children and browser.heatmap in browser.widget.children
    row = int(rows[0])
    att = browser.select(row)
    event = eval_store.event(row)
    assert att.row == row and browser.class_dropdown.value == event["label"]
    np.testing.assert_array_equal(browser.fig.data[0].x, event["times"])
    np.testing.assert_array_equal(browser.fig.data[0].y, event["flux"])
    tensors = [torch.as_tensor(event[k], dtype=torch.float32)[None]
               for k in ("times", "flux", "flux_err")]
    proba = model.predict_proba(*tensors)[0].numpy()  # calibrated, this event alone
    for label in range(3):
        trace = browser.fig.data[3 + label]
        assert trace.name == f"P({['no event', 'single lens (PSPL)', 'binary lens'][label]})"
        np.testing.assert_allclose(trace.y, proba[:, label], rtol=1e-5, atol=1e-6)
    z = browser.heatmap.data[0].z  # strict JSON for the widget: blanks are None, not NaN
    assert any(v is None for line in z for v in line)
    assert all(v is None or np.isfinite(v) for line in z for v in line)
    # another class: the figure follows
    other = browser.select(label="binary", position=1)
    assert other.label == 2 and other.row != row
    np.testing.assert_array_equal(browser.fig.data[0].y, eval_store.event(other.row)["flux"])
    # layer, head and query
    browser.set_view(layer=1, head=2, query=20)
    np.testing.assert_allclose(np.asarray(browser.fig.data[1].customdata, dtype=float)[:, 1],
                               other.weights[1, 2, 20], rtol=1e-6)
    assert "layer 1, head 2" in browser.fig.layout.title.text
    browser.set_view(head=None)
    assert "mean of heads" in browser.fig.layout.title.text
    with pytest.raises(ValueError, match="valid"):
        browser.set_view(layer=7)
    not_browsed = int(np.setdiff1d(eval_store.indices("test"), rows)[0])
    with pytest.raises(ValueError, match="not among"):
        browser.select(not_browsed)


# --------------------------------------------------------------------------------------------
# Model kinds: attention only where there is some, embeddings of every kind
# --------------------------------------------------------------------------------------------


def test_only_the_transformer_has_attention_maps(model, eval_store, rows):
    from microlens.evaluation.analysis import no_attention_reason, no_attention_record
    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model
    from microlens.workflow.notebooks import check_record

    assert no_attention_reason(model) is None
    gru = build_model(ModelConfig(kind="gru", d_model=8, n_layers=1, d_ff=16))
    reason = no_attention_reason(gru)
    assert reason.startswith("a 'gru' model (causal recurrent network") and "no attention" in reason
    with pytest.raises(ValueError, match="'gru' model .* has no attention maps"):
        attention_maps(gru, eval_store, rows)
    with pytest.raises(ValueError, match="AttentionBrowser: a 'gru' model"):
        AttentionBrowser(gru, eval_store, rows)
    # the record of 04_attention for such a model passes the registry's checks
    record = {"run_dir": "r", "dataset_dir": "d", "model_kind": "gru", "selection": {},
              "figure_formats": ["html"], "figures": [], **no_attention_record(reason)}
    assert check_record("04_attention", record)["attention"] is False


def test_embeddings_of_a_neural_kind_other_than_the_transformer(eval_store):
    from microlens.models.config import ModelConfig
    from microlens.models.registry import build_model

    cnn = build_model(ModelConfig(kind="cnn", d_model=8, n_layers=2, d_ff=16, kernel_size=3))
    rows = select_test_events(eval_store, n=5, seed=2)
    emb = event_embeddings(cnn, eval_store, rows, batch_size=2)
    assert emb.shape == (5, 16) and np.isfinite(emb).all()
    proba = embedding_probabilities(cnn.eval(), emb)
    batch = eval_store.batch(rows)
    final = cnn.predict_proba(batch["times"], batch["flux"], batch["flux_err"], batch["mask"])
    np.testing.assert_allclose(proba, final[np.arange(5), batch["lengths"] - 1].numpy(),
                               rtol=1e-4, atol=1e-5)


def test_embed_run_of_a_transformer_run(eval_run, eval_store, model):
    from microlens.evaluation.analysis import embed_run, run_model_kind
    from microlens.evaluation.predictions import run_predictions

    assert run_model_kind(eval_run) == "transformer"
    rows = select_test_events(eval_store, n=6, seed=5)
    embedded = embed_run(eval_run, eval_store, rows, batch_size=4)
    assert (embedded.model_kind, embedded.source) == ("transformer", "pooled")
    np.testing.assert_allclose(embedded.values, event_embeddings(model, eval_store, rows),
                               rtol=1e-5, atol=1e-6)
    final = run_predictions(eval_run, rows=rows, cache=False)[0].final()
    np.testing.assert_allclose(embedded.probabilities, final, rtol=1e-4, atol=1e-5)
    with pytest.raises(SplitError):
        embed_run(eval_run, eval_store, eval_store.indices("train")[:2])


def test_run_model_kind_of_runs_saved_before_kinds(tmp_path):
    import json

    from microlens.evaluation.analysis import run_model_kind

    (tmp_path / "config.json").write_text(json.dumps({"model": {"d_model": 8}}))
    assert run_model_kind(tmp_path) == "transformer"
    (tmp_path / "config.json").write_text(json.dumps({"model": {"kind": "cnn"}}))
    assert run_model_kind(tmp_path) == "cnn"
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        run_model_kind(tmp_path / "nothing")


def test_feature_embeddings_are_standardised_with_undefined_values_at_the_mean(
        eval_store, monkeypatch):
    import microlens.models.curve_features as curve_features
    from microlens.evaluation.analysis import feature_embeddings

    rows = select_test_events(eval_store, n=4, seed=0)
    raw = np.array([[1.0, np.nan, 5.0, np.nan], [3.0, 2.0, 5.0, np.nan],
                    [5.0, np.inf, 5.0, np.nan], [7.0, 4.0, 5.0, np.nan]])
    seen = {}

    def fake(store, chosen, fractions, *, workers=1, progress=False):
        seen.update(rows=list(chosen), fractions=tuple(fractions), workers=workers)
        return raw[:, None, :]

    monkeypatch.setattr(curve_features, "prefix_features", fake)
    emb = feature_embeddings(eval_store, rows, workers=2)
    assert seen == {"rows": rows.tolist(), "fractions": (1.0,), "workers": 2}
    expected_first = (raw[:, 0] - 4.0) / np.std(raw[:, 0])
    np.testing.assert_allclose(emb[:, 0], expected_first)
    np.testing.assert_allclose(emb[:, 1], [0.0, -1.0, 0.0, 1.0])  # NaN and inf: the mean, 0
    np.testing.assert_allclose(emb[:, 2:], 0.0)  # constant, and undefined for every event
    with pytest.raises(SplitError):
        feature_embeddings(eval_store, eval_store.indices("val")[:2])
