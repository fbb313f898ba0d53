"""Figure builders (microlens.reports), explorers (microlens.reports.widgets), summaries: on a tiny
dataset."""

from __future__ import annotations

import types
import warnings

import numpy as np
import plotly.graph_objects as go
import pytest

from microlens import SimulationConfig, generate_dataset, open_dataset
from microlens import reports as viz
from microlens.core.classes import CLASS_LABELS
from microlens.core.paths import write_json_atomic
from microlens.data.summaries import detectability_summary, simulation_metrics
from microlens.evaluation.analysis import EventAttention
from microlens.evaluation.analysis.limits import binned_performance
from microlens.reports.widgets import EventBrowser, MagnificationExplorer
from microlens.simulation.simulate import binary_light_curve, caustics
from microlens.simulation.variables import describe_variable
from microlens.workflow.figures import simulation_figures

N_PER_CLASS = 4


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = SimulationConfig(n_per_class=N_PER_CLASS, n_epochs=150, seed=3, detectability=True)
    path = generate_dataset(cfg, tmp_path_factory.mktemp("viz") / "tiny", workers=1,
                            progress=False)
    return open_dataset(path)


@pytest.fixture(scope="module")
def variable_store(tmp_path_factory):
    """Thesis curves whose no-event class is half variable stars."""
    cfg = SimulationConfig(n_per_class=8, n_epochs=120, seed=4, detectability=False,
                           variable_fraction=0.5)
    path = generate_dataset(cfg, tmp_path_factory.mktemp("var") / "tiny", workers=1,
                            progress=False)
    return open_dataset(path)


@pytest.fixture(scope="module")
def survey_store(tmp_path_factory):
    """OGLE-like curves: seasons, yearly gaps, thousands of points, a reference epoch."""
    cfg = SimulationConfig(n_per_class=4, survey="ogle", seed=1, detectability=False)
    path = generate_dataset(cfg, tmp_path_factory.mktemp("ogle") / "tiny", workers=1,
                            progress=False)
    return open_dataset(path)


@pytest.fixture(scope="module")
def explorer():
    return MagnificationExplorer(n_points=600)


# --------------------------------------------------------------------------------------------
# MagnificationExplorer
# --------------------------------------------------------------------------------------------


def test_explorer_has_the_six_sliders_and_seven_traces(explorer):
    assert set(explorer.sliders) == {"s", "q", "u_0", "alpha", "rho", "t_E"}
    assert len(explorer.fig.data) == len(MagnificationExplorer.TRACES) == 7
    assert isinstance(explorer.fig, go.FigureWidget)
    assert explorer.fig in explorer.widget.children


def test_explorer_update_q_changes_magnification_and_caustics(explorer):
    explorer.update(s=1.0, q=1e-3, u_0=0.1, alpha=0.6)
    mag_before = np.array(explorer.fig.data[0].y, dtype=float)
    caustic_before = np.array(explorer.fig.data[3].x, dtype=float)
    explorer.update(q=0.5)
    assert explorer.sliders["q"].value == pytest.approx(0.5)
    mag_after = np.array(explorer.fig.data[0].y, dtype=float)
    caustic_after = np.array(explorer.fig.data[3].x, dtype=float)
    assert mag_after.shape == mag_before.shape
    assert not np.allclose(mag_after, mag_before)
    assert caustic_after.shape != caustic_before.shape or not np.allclose(
        caustic_after, caustic_before, equal_nan=True)
    # the drawn magnification is the library's, at the current parameters
    p = explorer.params
    tau = np.asarray(explorer.fig.data[0].x, dtype=float)
    expected = binary_light_curve(tau * p["t_E"], 0.0, p["u_0"], p["t_E"], p["rho"], p["s"],
                                  p["q"], p["alpha"])[0]
    np.testing.assert_allclose(mag_after, expected, rtol=1e-6)


def test_explorer_separation_changes_caustic_topology(explorer):
    explorer.update(s=1.0, q=0.1)
    resonant = viz.split_curves(explorer.fig.data[3].x, explorer.fig.data[3].y)
    explorer.update(s=3.0)
    wide = viz.split_curves(explorer.fig.data[3].x, explorer.fig.data[3].y)
    assert len(resonant) == 1 and len(wide) == 2
    assert len(explorer.caustic_curves) == 2
    # one wide caustic sits near the companion, far from the primary
    centres = sorted(float(np.mean(c[:, 0])) for c in wide)
    assert centres[1] - centres[0] > 2.0
    assert "wide" in explorer.fig.layout.title.text
    for drawn, truth in zip(wide, caustics(3.0, 0.1), strict=True):
        np.testing.assert_allclose(drawn[:-1], truth)  # drawn curves are closed


def test_explorer_slider_change_redraws_and_bad_values_are_rejected(explorer):
    explorer.update(s=1.0, q=0.01)
    before = np.array(explorer.fig.data[0].y, dtype=float)
    explorer.sliders["u_0"].value = 0.4  # what a user's drag does
    assert explorer.params["u_0"] == pytest.approx(0.4)
    assert not np.allclose(np.array(explorer.fig.data[0].y, dtype=float), before)
    with pytest.raises(ValueError, match="outside the slider range"):
        explorer.update(q=5.0)
    with pytest.raises(ValueError, match="unknown parameter"):
        explorer.update(mass=1.0)


def test_explorer_t_e_sets_the_survey_sampling(explorer):
    explorer.update(t_E=10.0)
    short = len(explorer.fig.data[2].x)
    explorer.update(t_E=40.0)
    assert len(explorer.fig.data[2].x) > 3 * short


# --------------------------------------------------------------------------------------------
# EventBrowser
# --------------------------------------------------------------------------------------------


def test_event_browser_select_shows_that_event(store):
    browser = EventBrowser(store)
    binaries = np.flatnonzero(store.labels == 2)
    event = browser.select("binary", 1)
    assert event["index"] == binaries[1]
    truth = store.event(int(binaries[1]))
    np.testing.assert_array_equal(np.asarray(browser.fig.data[0].x, dtype=float), truth["times"])
    np.testing.assert_array_equal(np.asarray(browser.fig.data[0].y, dtype=float), truth["flux"])
    assert len(browser.fig.data) == 2  # data and noise-free model
    html = browser.table.value
    assert f">{truth['index']}<" in html and ">binary lens<" in html
    for key in ("t_E", "u_0", "q", "s", "dchi2_pspl"):
        assert viz.format_value(truth["params"][key]) in html
    assert browser.class_dropdown.value == 2 and browser.slider.value == 1


def test_event_browser_split_and_class_controls(store):
    browser = EventBrowser(store, label="pspl")
    train_pspl = store.indices("train")[store.labels[store.indices("train")] == 1]
    browser.select(1, 0, split="train")
    assert browser.event["index"] == train_pspl[0]
    assert browser.slider.max == len(train_pspl) - 1
    browser.class_dropdown.value = 0  # user switches class: first flat training event
    assert browser.event["label"] == 0 and browser.event["split"] == "train"
    with pytest.raises(IndexError):
        browser.select("no_event", 99)
    with pytest.raises(ValueError, match="unknown class"):
        browser.select("planet", 0)
    empty = [s for s in ("val", "test") if not np.any(store.labels[store.indices(s)] == 0)]
    if empty:  # 4 events per class leave some split without flats: shown as empty, no crash
        browser.split_dropdown.value = empty[0]
        assert browser.event is None and browser.slider.disabled
        assert len(browser.fig.data[0].x) == 0


def _no_events(store):
    """Indices of the constant and of the variable no-event stars."""
    zero = np.flatnonzero(store.labels == 0)
    kinds = store.params["variable_kind"][zero]
    return zero[kinds == 0], zero[kinds != 0]


def test_event_browser_says_which_star_a_no_event_curve_is(variable_store):
    constant, variable = _no_events(variable_store)
    assert constant.size and variable.size
    browser = EventBrowser(variable_store, label="no event")  # display names work too
    assert browser.class_dropdown.value == 0
    assert [name for name, _ in browser.class_dropdown.options] == list(CLASS_LABELS)
    zero = list(browser.selection)
    event = browser.select("no_event", zero.index(int(variable[0])))
    kind = describe_variable(event["params"])
    assert kind != "constant star"
    assert f"no event: {kind}" in browser.fig.layout.title.text
    assert f"no event: {kind}" in browser.info.value and f"no event: {kind}" in browser.table.value
    model = np.asarray(browser.fig.data[1].y, dtype=float)
    assert np.nanstd(model) > 0  # the variable star's own light curve, not a constant line
    browser.select(0, zero.index(int(constant[0])))
    assert "no event: constant star" in browser.fig.layout.title.text


def test_event_browser_on_long_survey_curves(survey_store):
    browser = EventBrowser(survey_store, label="pspl")
    assert survey_store.reference_epoch > 2.4e6
    epoch = f"days since JD {survey_store.reference_epoch:.1f}"
    for position, row in enumerate(browser.selection):  # long and short curves, in turn
        event = browser.select("pspl", position)
        assert event["index"] == row and len(browser.fig.data) == 2
        n = len(event["times"])
        expected = go.Scattergl if n > viz.WEBGL_POINTS else go.Scatter
        assert isinstance(browser.fig.data[0], expected), n
        np.testing.assert_array_equal(np.asarray(browser.fig.data[0].x, dtype=float),
                                      event["times"])
        assert browser.fig.data[0].mode == "markers"
        assert epoch in browser.fig.layout.xaxis.title.text
        assert f"{n} observations" in browser.info.value


# --------------------------------------------------------------------------------------------
# Figure builders
# --------------------------------------------------------------------------------------------


def test_gallery_shows_constant_and_variable_no_event_stars(variable_store):
    constant, variable = _no_events(variable_store)
    picked = viz.pick_events(variable_store, per_class=3, seed=0)
    zero = picked[0]
    assert np.isin(zero, constant).sum() >= 1 and np.isin(zero, variable).sum() >= 1
    fig = viz.gallery_figure(variable_store, per_class=3, seed=0)
    titles = [a.text.replace("<br>", " ") for a in fig.layout.annotations]
    assert any("no event: constant star" in t for t in titles)
    for i in zero[np.isin(zero, variable)]:
        kind = describe_variable(variable_store.event(int(i))["params"])
        assert any(f"#{i} no event: {kind}" in t for t in titles), (kind, titles)
    axes = [fig.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in (1, 4, 7)]
    assert [t.split("<br>")[0] for t in axes] == list(CLASS_LABELS)
    # a single event per class is a variable star; with no variables nothing changes
    assert np.isin(viz.pick_events(variable_store, per_class=1, seed=0)[0], variable).all()


def test_survey_gallery_and_model_lines_break_at_gaps(survey_store):
    fig = viz.gallery_figure(survey_store, per_class=2, seed=0)
    assert fig.layout.xaxis5.title.text == (
        f"time [days since JD {survey_store.reference_epoch:.1f}]")
    for trace in fig.data[::2]:
        assert trace.mode == "markers"
        assert isinstance(trace, go.Scattergl) == (len(trace.x) > viz.WEBGL_POINTS)
    longest = int(np.argmax(survey_store.lengths))
    event = survey_store.event(longest)
    seasons = viz.season_bounds(event["times"])
    assert len(seasons) >= 2  # yearly gaps
    t, flux = viz.model_curve(event)
    assert np.isnan(t).sum() == len(seasons) - 1  # one break per gap, no line across it
    finite = np.isfinite(t)
    for a, b in zip(t[finite][:-1], t[finite][1:], strict=True):
        assert b - a <= viz.GAP_DAYS or any(
            np.isclose(a, s1) and np.isclose(b, s0)
            for (_, s1), (s0, _) in zip(seasons[:-1], seasons[1:], strict=True))
    assert viz.time_title(0.0) == "time [days]"




def test_light_curve_figure_traces_and_title(store):
    event = store.event(int(np.flatnonzero(store.labels == 2)[0]))
    assert len(viz.light_curve_figure(event).data) == 1
    fig = viz.light_curve_figure(event, model=True)
    assert len(fig.data) == 2
    assert "binary" in fig.layout.title.text and "q=" in fig.layout.title.text
    assert np.all(np.asarray(fig.data[0].error_y.array) > 0)
    flat = store.event(int(np.flatnonzero(store.labels == 0)[0]))
    model = viz.light_curve_figure(flat, model=np.ones_like(flat["times"])).data[1]
    np.testing.assert_array_equal(model.y, 1.0)
    with pytest.raises(ValueError, match="shape"):
        viz.light_curve_figure(flat, model=np.ones(3))


def test_gallery_figure_is_reproducible_grid(store):
    fig = viz.gallery_figure(store, per_class=2, seed=7)
    assert len(fig.data) == 3 * 2 * 2  # 3 classes x 2 events x (data + model)
    assert len(viz.gallery_figure(store, per_class=3, seed=7, model=False).data) == 9
    picked = viz.pick_events(store, per_class=2, seed=7)
    assert {k: list(v) for k, v in picked.items()} == {
        k: list(v) for k, v in viz.pick_events(store, per_class=2, seed=7).items()}
    for label, idx in picked.items():
        assert np.all(store.labels[idx] == label)
    # more requested than available: every event of each class, once
    assert len(viz.gallery_figure(store, per_class=10, model=False).data) == 3 * N_PER_CLASS


def test_detectability_figure(store):
    fig = viz.detectability_figure(store, threshold=100.0)
    assert len(fig.data) == 2
    assert all(isinstance(t, go.Histogram) for t in fig.data)
    binary = store.params["dchi2_pspl"][store.labels == 2]
    np.testing.assert_allclose(fig.data[0].x, np.log10(np.maximum(binary, 1.0)))
    assert fig.layout.shapes[0].x0 == pytest.approx(2.0)  # threshold line at log10(100)
    frac = np.mean(binary > 100.0)
    assert f"{100 * frac:.0f}%" in fig.data[0].name


def test_detectability_figure_without_detectability_is_none():
    params = _table([0, 1, 2, 2], [np.nan] * 4, [np.nan] * 4)
    assert viz.detectability_figure(types.SimpleNamespace(params=params)) is None
    # one lensing class with values is something to draw
    some = _table([0, 1, 2, 2], [np.nan, 500.0, np.nan, np.nan], [np.nan] * 4)
    assert viz.detectability_figure(types.SimpleNamespace(params=some)) is not None


def test_simulation_figures_skip_detectability_when_off(tmp_path):
    cfg = SimulationConfig(n_per_class=2, n_epochs=60, seed=1, detectability=False)
    store = open_dataset(generate_dataset(cfg, tmp_path / "off", workers=1, progress=False))
    assert set(simulation_figures(store, per_class=1)) == {"gallery"}


def test_flux_axes_say_relative_to_baseline(store):
    fig = viz.gallery_figure(store, per_class=1)
    titles = [fig.layout[f"yaxis{'' if i == 1 else i}"].title.text for i in (1, 2, 3)]
    assert all(t.endswith("flux / baseline flux") for t in titles), titles
    event = store.event(0)
    assert viz.light_curve_figure(event).layout.yaxis.title.text == viz.FLUX_TITLE
    # what the title claims: a flat event's noise-free flux is exactly 1
    flat = store.event(int(np.flatnonzero(store.labels == 0)[0]))
    np.testing.assert_allclose(viz.model_curve(flat, n_points=5)[1], 1.0)


def test_caustic_figure_traces():
    assert len(viz.caustic_figure(1.0, 0.1).data) == 2  # caustics, lenses
    t = np.linspace(-2, 2, 200)
    _, y1, y2 = binary_light_curve(t, 0.0, 0.1, 1.0, 1e-3, 0.6, 0.1, 0.5)
    fig = viz.caustic_figure(0.6, 0.1, trajectory=(y1, y2), rho=1e-3)
    assert len(fig.data) == 4  # + trajectory, source disc
    assert len(viz.split_curves(fig.data[0].x, fig.data[0].y)) == 3  # close topology
    np.testing.assert_allclose(viz.lens_positions(1.0, 1.0)[:, 0], [-0.5, 0.5])


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_save_figure_writes_html_and_png(tmp_path):
    fig = viz.caustic_figure(1.0, 0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = viz.save_figure(fig, tmp_path / "sub" / "caustic")
    html = tmp_path / "sub" / "caustic.html"
    assert html in written and "<html>" in html.read_text()[:200].lower()
    assert not list((tmp_path / "sub").glob("*.tmp*"))
    static = [w for w in caught if issubclass(w.category, viz.StaticExportWarning)]
    if viz.find_browser() is None:
        assert static  # the warning path is checked; the PNG itself cannot be
        pytest.skip("no Chromium on this machine: PNG export untested (./run_all.sh installs it)")
    png = tmp_path / "sub" / "caustic.png"
    assert png in written and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_figure_without_browser_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.export, "find_browser", lambda: None)
    monkeypatch.setattr(viz.export, "_warned_no_browser", False)
    fig = viz.caustic_figure(1.0, 0.1)
    with pytest.warns(viz.StaticExportWarning, match="no Chromium"):
        first = viz.save_figure(fig, tmp_path / "a.html", formats=("png", "pdf"))
    assert first == [tmp_path / "a.html"]  # html always, suffix dropped and re-added
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        assert viz.save_figure(fig, tmp_path / "b") == [tmp_path / "b.html"]
    with pytest.raises(ValueError, match="unknown figure format"):
        viz.save_figure(fig, tmp_path / "c", formats=("gif",))


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


def _table(labels, dchi2_flat, dchi2_pspl):
    dtype = [("label", "i1"), ("dchi2_flat", "f8"), ("dchi2_pspl", "f8")]
    return np.array(list(zip(labels, dchi2_flat, dchi2_pspl, strict=True)), dtype=dtype)


def test_detectability_summary_on_hand_made_table():
    params = _table(labels=[0, 1, 1, 1, 2, 2, 2, 2],
                    dchi2_flat=[0.5, 50.0, 150.0, 1e4, 1e3, 1e3, 1e3, 1e3],
                    dchi2_pspl=[np.nan, -1.0, 0.0, 2.0, -3.0, 20.0, 500.0, np.nan])
    summary = detectability_summary(types.SimpleNamespace(params=params), threshold=100.0)
    assert summary["n_binary"] == 3  # NaN rows are not counted
    assert summary["binary_detectable_fraction"] == pytest.approx(1 / 3)
    assert summary["binary_median_dchi2_pspl"] == pytest.approx(20.0)
    assert summary["n_pspl"] == 3
    assert summary["pspl_detectable_fraction"] == pytest.approx(2 / 3)
    off = detectability_summary(_table([1, 2], [np.nan] * 2, [np.nan] * 2))
    assert off["binary_detectable_fraction"] is None and off["n_binary"] == 0


def test_detectability_summary_matches_numpy_on_dataset(store, tmp_path):
    summary = detectability_summary(store, threshold=50.0)
    binary = store.params["dchi2_pspl"][store.labels == 2]
    pspl = store.params["dchi2_flat"][store.labels == 1]
    assert 0.0 <= summary["binary_detectable_fraction"] <= 1.0
    assert 0.0 <= summary["pspl_detectable_fraction"] <= 1.0
    assert summary["binary_detectable_fraction"] == pytest.approx(np.mean(binary > 50.0))
    assert summary["pspl_detectable_fraction"] == pytest.approx(np.mean(pspl > 50.0))
    assert summary["binary_median_dchi2_pspl"] == pytest.approx(np.median(binary))
    metrics = simulation_metrics(store)
    assert metrics["n_events"] == 3 * N_PER_CLASS
    assert metrics["class_counts"] == {"no_event": 4, "pspl": 4, "binary": 4}
    assert metrics["detectability"] == detectability_summary(store)
    path = write_json_atomic(tmp_path / "m" / "metrics.json", metrics)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))


# --------------------------------------------------------------------------------------------
# Figures a thesis can use: decision time, peer comparison, q ticks, attention colours
# --------------------------------------------------------------------------------------------

THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]


def _decision(x, accuracy, observation=None):
    n = len(THRESHOLDS)
    out = {"threshold": THRESHOLDS, "decided_fraction": [1.0] * n, "accuracy": accuracy,
           "median_fraction_seen": x, "median_tau_lensing": [-3.0] * n,
           "decided_before_peak_lensing": [1.0] * n}
    if observation is not None:
        out["median_observation"] = observation
    return out


def _label_trace(fig):
    (trace,) = [t for t in fig.data if t.mode == "text"]
    return trace


def test_decision_figure_degenerate_sweep_has_one_label_and_says_first_observation():
    n = len(THRESHOLDS)
    fig = viz.decision_figure(_decision([1 / 150] * n, [1 / 3] * n, [1.0] * n))
    labels = _label_trace(fig)
    assert list(labels.text) == ["0.5–0.99"]  # seven coinciding points, one label
    notes = [a.text for a in fig.layout.annotations]
    assert len(notes) == 1 and "0.5–0.99" in notes[0] and "first observation" in notes[0]
    first = [t for t in fig.data if t.name and "first observation" in t.name]
    assert len(first) == 1 and len(first[0].x) == n
    # an old summary without median_observation: labels still merged, no claim made
    old = viz.decision_figure(_decision([1 / 150] * n, [1 / 3] * n))
    assert list(_label_trace(old).text) == ["0.5–0.99"] and not old.layout.annotations


def test_decision_figure_labels_never_share_positions():
    x = [0.0067, 0.02, 0.05, 0.3, 0.32, 0.5, 0.71]
    y = [0.62, 0.66, 0.7, 0.76, 0.84, 0.9, 0.97]
    fig = viz.decision_figure(_decision(x, y, [1, 3, 8, 45, 48, 75, 107]))
    labels = _label_trace(fig)
    points = np.c_[labels.x, labels.y]
    gaps = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    assert gaps[np.triu_indices(len(points), 1)].min() >= viz.LABEL_SPACING
    # every threshold is named once; the two nearest points (0.5, 0.6) share a label
    named = [v for text in labels.text for v in text.replace("–", ", ").split(", ")]
    assert sorted(map(float, named)) == THRESHOLDS and "0.5, 0.6" in labels.text
    notes = [a.text for a in fig.layout.annotations]
    assert len(notes) == 1 and notes[0].startswith("threshold 0.5:")
    # thresholds never decided (accuracy None) are left out, not drawn at zero
    y[-1] = None
    assert 0.99 not in viz.decision_figure(_decision(x, y)).data[0].customdata[-1]


def test_threshold_labels_join_runs_and_lists():
    labels = viz.threshold_labels([0.0, 0.01, 0.5, 0.02], [0.5, 0.5, 0.5, 0.5], [1, 2, 3, 4])
    assert [t for *_, t in labels] == ["1, 2, 4", "3"]
    labels = viz.threshold_labels([0.0] * 3, [0.0] * 3, [0.5, 0.6, 0.7])
    assert labels == [(0.0, 0.0, "0.5–0.7")]


def _peer_summary(transformer_s=3.17e-3, peer_s=7.05e-3):
    head = {"accuracy": 0.81, "binary_recall": 0.55, "macro_f1": 0.8,
            "transformer_seconds_per_event": transformer_s}
    peer = {"accuracy": 0.93, "binary_recall": 0.8, "macro_f1": 0.92,
            "seconds_per_event": peer_s}
    return {"headline": head, "classical_peer": peer}


def test_peer_comparison_time_axis_is_linear_from_zero_with_ratio():
    fig = viz.peer_comparison_figure(_peer_summary())
    axis = fig.layout.yaxis2
    assert axis.type == "linear" and axis.range[0] == 0 and axis.range[1] > 7.05
    times = fig.data[-1]
    np.testing.assert_allclose(times.y, [3.17, 7.05])
    assert times.texttemplate == "%{y:.2f} ms"
    titles = " ".join(a.text for a in fig.layout.annotations)
    assert f"classical peer: {7.05 / 3.17:.2f}× the transformer's time" in titles
    faster_peer = viz.peer_comparison_figure(_peer_summary(9e-3, 3e-3))
    assert "transformer: 3.00× the classical peer's time" in " ".join(
        a.text for a in faster_peer.layout.annotations)
    alone = viz.peer_comparison_figure({"headline": _peer_summary()["headline"]})
    assert list(alone.data[-1].x) == ["transformer"]
    assert "×" not in " ".join(a.text for a in alone.layout.annotations)


def test_evaluation_figures_name_the_model_kind():
    summary = _peer_summary()
    assert viz.model_label() == viz.model_label("transformer") == "transformer"
    assert viz.model_label("gru") == "GRU" and viz.model_label("new_kind") == "new_kind"
    fig = viz.peer_comparison_figure({**summary, "model_kind": "gru"})
    assert fig.data[0].name == "GRU" and list(fig.data[-1].x) == ["GRU", "classical peer"]
    assert "GRU vs the classical peer" in fig.layout.title.text
    assert "classical peer: 2.22× the GRU's time" in " ".join(
        a.text for a in fig.layout.annotations)
    # the kind-neutral key of the evaluation headline first
    head = {**summary["headline"], "model_seconds_per_event": 1e-3}
    fig = viz.peer_comparison_figure({"headline": head, "model_kind": "features"})
    assert list(fig.data[-1].x) == ["feature model"] and list(fig.data[-1].y) == [1.0]
    # a model that was not timed gets no time bar
    untimed = {k: v for k, v in head.items() if not k.endswith("seconds_per_event")}
    fig = viz.peer_comparison_figure({**summary, "headline": untimed, "model_kind": "cnn"})
    assert list(fig.data[-1].x) == ["classical peer"]
    curve = {"fraction": [0.5, 1.0], "accuracy": [0.5, 0.8],
             "recall": {name: [0.5, 0.8] for name in ("no_event", "pspl", "binary")}}
    early = {"by_fraction": curve, "by_tau": {**curve, "tau": [0.0, 1.0],
                                              "coverage": [0.5, 1.0]}}
    assert viz.early_detection_figure(early, None, "cnn").data[0].name == "CNN accuracy"
    assert viz.early_detection_figure(early).data[0].name == "transformer accuracy"


def test_q_axes_use_power_tick_labels():
    q = np.array([1e-5, 3e-4, 2e-2, 0.9])
    s = np.array([0.4, 0.8, 1.5, 3.0])
    points = {"index": np.arange(4), "s": s, "q": q, "u_0": np.full(4, 0.1),
              "dchi2_pspl": np.array([10.0, 200.0, 50.0, 1e4]),
              "correct": np.array([True, False, True, False]),
              "predicted": np.array(["binary", "pspl", "binary", "no_event"])}
    fig = viz.binary_parameter_figure(points, 100.0)
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.exponentformat == "power"
    assert fig.layout.yaxis.dtick == 1  # one tick per decade: 10⁻⁵ .. 1
    # s spans less than two decades: plain numbers at 1-2-5 steps, no '4 5 6 7 8 9' labels
    assert list(fig.layout.xaxis.ticktext) == ["0.2", "0.5", "1", "2", "5"]
    np.testing.assert_allclose(fig.layout.xaxis.tickvals, [0.2, 0.5, 1, 2, 5])
    labels = np.array([2, 2, 2, 2])
    edges = np.geomspace(1e-5, 1.0, 4)
    table = {**binned_performance(q, labels, labels, points["dchi2_pspl"], edges,
                                  scale="log"),
             "scale": "log", "label": "mass ratio q", "classes": ["binary"]}
    limits = viz.physical_limits_figure({"threshold": 100.0, "bins": {"q": table},
                                         "binary": {"binary_recall": 1.0,
                                                    "detectable_fraction": 0.5}})
    assert limits.layout.xaxis.exponentformat == "power" and limits.layout.xaxis.type == "log"


def _attention(event, window=64, ripple=1e-5, seed=0):
    """Two layers x two heads of (nearly) uniform window weights over one stored event."""
    rng = np.random.default_rng(seed)
    n = event["times"].size
    weights = np.zeros((2, 2, n, window), np.float32)
    for q in range(n):
        k = min(q + 1, window)
        w = 1.0 + ripple * rng.standard_normal((2, 2, k))
        weights[:, :, q, window - k:] = w / w.sum(axis=-1, keepdims=True)
    return EventAttention(event=event, weights=weights,
                          probabilities=np.tile([0.2, 0.5, 0.3], (n, 1)))


def test_attention_event_colour_bar_is_relative_to_uniform(store):
    event = store.event(int(np.flatnonzero(store.labels == 1)[0]))
    att = _attention(event)
    assert event["times"].size > 64  # the query below sees a full window
    query = 100
    fig = viz.attention_event_figure(att, layer=1, head=None, query=query)
    marker = fig.data[1].marker
    bar = marker.colorbar
    assert "1 = uniform" in bar.title.text and "over the window" in bar.title.text
    # centred on 1, symmetric in log, and never narrower than 1/2 .. 2
    assert marker.cmid == 0 and marker.cmin == -marker.cmax and marker.cmax >= np.log10(2) - 1e-12
    assert "1" in bar.ticktext and 0.0 in bar.tickvals
    relative = np.asarray(fig.data[1].customdata)[:, 2]
    weights = att.select(1, None)[query]
    np.testing.assert_allclose(relative, weights * 64, rtol=1e-6)
    # 1/64 everywhere (the finding) stays at 1, the centre of the scale: not stretched away
    np.testing.assert_allclose(relative, 1.0, atol=1e-3)
    assert np.all(np.abs(marker.color) < 1e-3 * marker.cmax)
    # small, see-through markers: the light curve under them stays visible
    assert np.max(marker.size) <= 14 and marker.opacity < 1
    # early query: uniform over the keys it sees (4 of them) is 1 as well
    early = viz.attention_event_figure(att, layer=1, head=None, query=3)
    np.testing.assert_allclose(np.asarray(early.data[1].customdata)[:, 2], 1.0, atol=1e-3)


def test_attention_colour_range_grows_to_hold_strong_weights(store):
    event = store.event(int(np.flatnonzero(store.labels == 1)[0]))
    att = _attention(event)
    att.weights[:, :, 80] = 0.0
    att.weights[:, :, 80, -1] = 0.9  # the query looks at itself: 0.9 x 64 = 57.6 x uniform
    att.weights[:, :, 80, :-1] = 0.1 / 63
    fig = viz.attention_event_figure(att, layer=0, head=0, query=80)
    marker = fig.data[1].marker
    assert marker.cmax == pytest.approx(np.log10(0.9 * 64), rel=1e-5)
    assert marker.cmin == -marker.cmax


def test_attention_gallery_and_heatmap_centre_on_uniform(store):
    rows = np.flatnonzero(store.labels >= 1)[:2]
    maps = [_attention(store.event(int(r)), seed=i) for i, r in enumerate(rows)]
    gallery = viz.attention_gallery_figure(maps)
    axis = gallery.layout.coloraxis
    assert axis.cmid == 0 and axis.cmin == -axis.cmax and "1 = uniform" in axis.colorbar.title.text
    heat = viz.attention_heatmap_figure(maps[0], 0, None, span=(0, 80))
    z = np.asarray(heat.data[0].z, dtype=float)
    band = np.isfinite(z)
    assert band.sum() == sum(min(k + 1, 64) for k in range(80))  # the causal band only
    np.testing.assert_allclose(z[band], 0.0, atol=1e-3)  # log10(1): uniform is the centre
    assert heat.data[0].zmid == 0 and "1 = uniform" in heat.data[0].colorbar.title.text
    assert np.isfinite(np.asarray(heat.data[0].customdata, dtype=float)).all()

