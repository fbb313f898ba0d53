"""microlens.reports.parameters and the parameter replay: figures and a table from the record of
microlens.evaluation.parameters alone, and one event replayed with a model's parameter heads.

The record is built by the evaluation's own table functions on synthetic answers (so the figures
read exactly the structure the evaluation writes); the replay runs a tiny untrained model with
heads on a synthetic point-lens curve. The end-to-end run of ``09_parameters`` trains a tiny
model and is in the slow tier.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from microlens.evaluation.parameters import (
    ALERT_PHASES,
    COMPARED,
    COVERAGE_BANDS,
    PHASES,
    SEEN_SHARES,
    alert_table,
    coverage_table,
    error_table,
)
from microlens.reports.parameters import (
    alert_figure,
    coverage_by_share_figure,
    parameter_coverage_figure,
    parameter_error_figure,
    parameter_figures,
    parameter_replay_figure,
    parameter_table,
    point_lens_band,
    point_lens_flux,
)

N_EVENTS = 40
SPREAD = np.array([4.0, 0.15, 0.3, 0.1, 0.5, 0.5])  # per target: the synthetic answers' scatter
STEPS = np.array([-1.96, -1.0, 0.0, 1.0, 1.96])  # the quantiles' offsets in units of SPREAD
FIGURE_NAMES = ["parameter_alerts", "parameter_coverage", "parameter_coverage_by_share",
                "parameter_errors"]


def _answers(rng, values, n_cuts, scale=1.0):
    """Quantiles ``(R, J, P, Q)`` scattered around the truth by ``scale * SPREAD``."""
    center = values[:, None, :] + scale * rng.normal(size=(len(values), n_cuts, 6)) * SPREAD
    return center[..., None] + SPREAD[None, None, :, None] * STEPS


def synthetic_record(seed: int = 0) -> dict:
    """A record as :func:`~microlens.evaluation.parameters.evaluate_parameters` writes it, from
    its own table functions on synthetic answers; one checkpoint without events."""
    rng = np.random.default_rng(seed)
    n = N_EVENTS
    values = np.column_stack([rng.uniform(20, 80, n), rng.uniform(0.5, 1.8, n),
                              rng.uniform(-2.0, 0.0, n), rng.uniform(0.2, 1.0, n),
                              np.zeros(n), np.zeros(n)])
    t_E = 10.0 ** values[:, 1]
    j = len(PHASES)
    fit = {"mean": values[:, None, :4] + 1.5 * rng.normal(size=(n, j, 4)) * SPREAD[:4],
           "sigma": np.broadcast_to(SPREAD[:4], (n, j, 4)).copy(),
           "ok": rng.random((n, j)) > 0.2, "dchi2": rng.uniform(0, 400, (n, j))}
    counts = rng.integers(10, 60, (n, j))
    counts[:, 0] = 0  # nobody reached the first phase: every cell there has no events
    quantiles = _answers(rng, values, j)
    record = {"run": "runs/synthetic", "dataset": "data/synthetic", "n_test_events": n,
              "n_lensing": n, "phases": list(PHASES),
              "errors": error_table(quantiles, fit, values, t_E, counts),
              "coverage": coverage_table(quantiles, fit, values, counts)}
    shares = np.full((n, len(SEEN_SHARES)), 20)
    record["coverage_by_share"] = coverage_table(_answers(rng, values, len(SEEN_SHARES), 0.8),
                                                 None, values, shares, SEEN_SHARES)
    record["shares"] = list(SEEN_SHARES)
    a = len(ALERT_PHASES)
    labels = rng.integers(0, 3, n)
    u_0 = 10.0 ** values[:, 2]
    probs = rng.dirichlet(np.ones(3), (n, a))
    alert_fit = {"mean": np.repeat(fit["mean"][:, :1], a, axis=1),
                 "ok": np.ones((n, a), bool)}
    record["alerts"] = alert_table(_answers(rng, values, a), probs, alert_fit,
                                   rng.uniform(0, 400, (n, a)), np.full((n, a), 20),
                                   values[:, 0], labels, u_0)
    return json.loads(json.dumps(record))  # as read back from the file


@pytest.fixture(scope="module")
def record() -> dict:
    return synthetic_record()


# --------------------------------------------------------------------------------------------
# Figures of the record
# --------------------------------------------------------------------------------------------


def test_error_figure_has_model_and_fit_per_parameter_with_bootstrap_bars(record):
    figure = parameter_error_figure(record)
    assert len(figure.data) == 2 * len(COMPARED)
    assert [a.text for a in figure.layout.annotations] == ["|Δt_0| / t_E", "|Δ log10 t_E|",
                                                          "|Δu_0|", "|Δf_s|"]
    for col, name in enumerate(COMPARED):
        model, fit = figure.data[2 * col], figure.data[2 * col + 1]
        assert (model.name, fit.name) == ("parameter heads", "online point-lens fit")
        entries = [record["errors"][str(p)][name] for p in PHASES]
        assert list(model.y) == [e["model_median"] for e in entries]
        assert list(fit.y) == [e["fit_median"] for e in entries]
        # side by side around each phase, the bars reaching the bootstrap interval
        assert all(m < p < f for m, p, f in zip(model.x, PHASES, fit.x, strict=True))
        for e, y, up, down in zip(entries, model.y, model.error_y.array,
                                  model.error_y.arrayminus, strict=True):
            if y is not None:
                low, high = e["model_interval"]
                assert (y + up, y - down) == pytest.approx((high, low))
        assert "Wilcoxon" in model.hovertemplate
    assert figure.layout.yaxis.type == "log" and figure.layout.yaxis.title.text
    assert figure.layout.xaxis.title.text == "phase (t − t_0) / t_E"


def test_coverage_figure_shades_the_nominal_bands_and_marks_passes(record):
    figure = parameter_coverage_figure(record)
    names = list(record["coverage"]["0.0"])
    assert len(figure.data) == 2 * 2 * len(names)  # level x parameter x (model, fit)
    rects = [s for s in figure.layout.shapes if s.type == "rect"]
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert len(rects) == len(lines) == 2 * len(names)
    assert {(r.y0, r.y1) for r in rects} == set(COVERAGE_BANDS.values())
    assert {line.y0 for line in lines} == set(COVERAGE_BANDS)
    texts = {a.text for a in figure.layout.annotations}
    assert {"68 % interval", "95 % interval", "t_0", "log10 u_0"} <= texts
    for trace in figure.data:
        who = "model" if trace.name == "parameter heads" else "fit"
        level = 68 if trace.yaxis in ("y", "y2", "y3", "y4") else 95
        name = names[(int(trace.yaxis[1:] or 1) - 1) % len(names)]
        cells = [record["coverage"][str(p)][name][f"{who}_{level}"] for p in PHASES]
        assert list(trace.y) == [c["coverage"] for c in cells]
        assert list(trace.marker.symbol) == ["circle" if c["passes"] else "circle-open"
                                             for c in cells]
        assert trace.y[0] is None  # the first phase had no events
    assert figure.layout.xaxis5.title.text == "phase (t − t_0) / t_E"
    assert figure.layout.yaxis.title.text == "coverage"


def test_coverage_by_share_figure_is_the_model_against_the_share_seen(record):
    figure = coverage_by_share_figure(record)
    assert len(figure.data) == 2 * 4 and {t.name for t in figure.data} == {"parameter heads"}
    assert list(figure.data[0].x) == list(SEEN_SHARES)
    assert len([s for s in figure.layout.shapes if s.type == "rect"]) == 2 * 4
    assert figure.layout.xaxis5.title.text == "share of the curve's observations seen"


def test_alert_figure_draws_precision_against_recall_with_the_lead_time(record):
    figure = alert_figure(record)
    curves = {t.name: t for t in figure.data if t.mode == "lines+markers"}
    assert set(curves) == {"parameter heads", "online point-lens fit"}
    for who, name in (("model", "parameter heads"), ("fit", "online point-lens fit")):
        points = [c for c in record["alerts"][who]["curve"] if c["precision"] is not None]
        assert list(curves[name].x) == [c["recall"] for c in points]
        assert list(curves[name].y) == [c["precision"] for c in points]
        assert all("median lead" in text for text in curves[name].text)
    marks = [t.name for t in figure.data if t.mode == "markers"]
    assert "online point-lens fit: u_0 <= 0.1" in marks
    assert figure.layout.xaxis.title.text == "recall"
    assert figure.layout.yaxis.title.text == "precision"
    base = record["alerts"]["n_positive"] / record["alerts"]["n_events"]
    assert [s.y0 for s in figure.layout.shapes] == [pytest.approx(base)]


def test_parameter_table_lists_every_cell_with_its_mark(record):
    table = parameter_table(record)
    cells = [cell for phase in record["coverage"].values() for entry in phase.values()
             for cell in entry.values()]
    cells += [cell for share in record["coverage_by_share"].values()
              for entry in share.values() for cell in entry.values()]
    passed = sum(1 for c in cells if c["n"] and c["passes"])
    failed = sum(1 for c in cells if c["n"] and not c["passes"])
    body = "\n".join(line for line in table.splitlines() if line.startswith("| "))
    assert (body.count("✓"), body.count("✗")) == (passed, failed)
    cell = record["coverage"]["0.0"]["f_s"]["fit_95"]
    low, high = cell["interval"]
    assert (f"{100 * cell['coverage']:.0f} [{100 * low:.0f}, {100 * high:.0f}] n={cell['n']}"
            in table)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    coverage = re.compile(r"\| [^|]+ \| (parameter heads|online point-lens fit) \d+ %")
    coverage_rows = [r for r in rows if coverage.match(r)]
    assert len(coverage_rows) == 4 * 4 + 4 * 2  # (model, fit) x levels, then the model's shares
    assert all(len(r.split("|")) == len(rows[0].split("|")) for r in coverage_rows[:16])
    first = next(r for r in coverage_rows if r.startswith("| t_0 | parameter heads 68 %"))
    assert first.split("|")[3].strip() == "–"  # phase -1: no events
    errors = record["errors"]["1.0"]["u_0"]
    assert f"| u_0 | 1 | {errors['model_median']:.3g} [" in table
    assert "| online point-lens fit | u_0 <= 0.1 |" in table
    assert "best precision at recall >= 0.5" in table


@pytest.mark.slow
def test_parameter_figures_are_saved_and_rebuilt_through_the_registry(record, tmp_path):
    from microlens.workflow.figures import notebook_figures
    from microlens.workflow.notebooks import load_record, save_outputs

    figures = parameter_figures(record)
    assert sorted(figures) == FIGURE_NAMES
    written = save_outputs("09_parameters", tmp_path, figures, ["html"], record)
    assert sorted(p.name for p in written) == sorted([f"{n}.html" for n in FIGURE_NAMES]
                                                     + ["parameters_report.json"])
    saved, _ = load_record("09_parameters", tmp_path)
    assert saved["figures"] == FIGURE_NAMES
    rebuilt = notebook_figures(tmp_path, "09_parameters")
    for name, figure in figures.items():
        assert rebuilt[name].to_plotly_json() == figure.to_plotly_json()


# --------------------------------------------------------------------------------------------
# The point-lens band and the replay
# --------------------------------------------------------------------------------------------


def test_point_lens_band_holds_every_curve_inside_the_box():
    rng = np.random.default_rng(3)
    t = np.linspace(0, 100, 400)
    lower = {"t_0": 45.0, "t_E": 8.0, "u_0": 0.1, "f_s": 0.5}
    upper = {"t_0": 55.0, "t_E": 15.0, "u_0": 0.4, "f_s": 0.9}
    low, high = point_lens_band(t, lower, upper)
    assert np.all(low <= high)
    for _ in range(200):
        inside = {k: rng.uniform(lower[k], upper[k]) for k in lower}
        curve = point_lens_flux(t, **inside)
        assert np.all(curve >= low - 1e-9) and np.all(curve <= high + 1e-9)
    # the envelope is reached: its top is the nearest t_0 with the brightest corner
    assert high[np.argmin(np.abs(t - 50))] == pytest.approx(point_lens_flux(
        t[np.argmin(np.abs(t - 50))], t[np.argmin(np.abs(t - 50))], 15.0, 0.1, 0.9))


def pspl_curve(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    times = np.sort(rng.choice(np.arange(0.0, 120.0, 0.5), n, replace=False))
    flux = point_lens_flux(times, 60.0, 12.0, 0.15, 0.7)
    err = np.full(n, 0.03)
    return times, flux + rng.normal(0, 0.03, n), err


@pytest.fixture(scope="module")
def tiny_model():
    import torch

    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.registry import build_model

    torch.manual_seed(0)
    config = ModelConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, d_ff=32,
                         dropout=0.0, parameter_heads=True)
    return build_model(config, Normalization()).eval()


TRUTH = {"t_0": 60.0, "t_E": 12.0, "u_0": 0.15, "f_s": 0.7}


def test_replay_figure_shows_exactly_the_observations_seen(tiny_model):
    from microlens.reports.widgets import ParameterReplay

    times, flux, err = pspl_curve()
    replay = ParameterReplay(tiny_model, times, flux, err, truth=TRUTH)
    n = times.size
    assert replay.quantiles.shape == (n, 6, 5) and replay.probabilities.shape == (n, 3)
    for k in (1, 7, n):
        figure = replay.figure_at(k)
        traces = {t.name: t for t in figure.data}
        seen = traces[f"seen ({k} of {n})"]
        assert len(seen.x) == k and np.array_equal(seen.x, times[:k])
        assert len(traces["not yet seen"].x) == n - k
        median = np.asarray(traces["heads' median point lens"].y)
        low = np.asarray(traces["band low"].y)
        high = np.asarray(traces["band 68 % (16 %-84 % quantiles)"].y)
        assert np.all(np.isfinite(median)) and np.all(np.isfinite(low))
        assert np.all(low <= median + 1e-9) and np.all(median <= high + 1e-9)
        assert traces["band 68 % (16 %-84 % quantiles)"].fill == "tonexty"
        assert np.allclose(traces["true point lens"].y,
                           point_lens_flux(traces["true point lens"].x, **TRUTH))
        probabilities = [t for t in figure.data if t.name.startswith("P(")]
        assert len(probabilities) == 3 and all(len(t.y) == k for t in probabilities)
        assert np.allclose([t.y[-1] for t in probabilities], replay.probabilities[k - 1])
        assert [s.x0 for s in figure.layout.shapes] == [times[k - 1]] * 2  # both rows
        assert f"After {k} of {n} observations" in figure.layout.title.text
    assert figure.layout.yaxis.title.text == "flux / baseline flux"
    assert figure.layout.yaxis2.title.text == "probability"
    with pytest.raises(ValueError, match=r"k must be in 1\.\.60"):
        replay.figure_at(0)


def test_moving_the_slider_redraws_the_live_figure(tiny_model):
    from microlens.reports.widgets import ParameterReplay, parameter_replay_widget

    times, flux, err = pspl_curve(n=40, seed=1)
    replay = ParameterReplay(tiny_model, times, flux, err, k=5)
    assert (replay.slider.min, replay.slider.max, replay.slider.value) == (1, 40, 5)
    before = replay.fig.to_plotly_json()
    replay.slider.value = 30  # the observer redraws
    after = replay.fig.to_plotly_json()
    assert after != before
    seen = next(t for t in replay.fig.data if t.name.startswith("seen"))
    assert len(seen.x) == 30 and seen.name == "seen (30 of 40)"
    assert replay.fig.layout.title.text == replay.figure_at(30).layout.title.text
    assert replay.fig.layout.shapes[0].x0 == times[29]
    assert "true point lens" not in {t.name for t in replay.fig.data}  # no truth given
    widget = parameter_replay_widget(tiny_model, times, flux, err, truth=TRUTH)
    assert widget.children[0].max == 40


def test_replay_figure_keeps_the_data_in_view_when_the_curve_runs_off():
    times, flux, err = pspl_curve(n=30, seed=2)
    quantiles = np.zeros((30, 6, 5))
    quantiles[:, 0] = 60.0 + 2.0 * STEPS  # t_0
    quantiles[:, 1] = 1.0 + 0.1 * STEPS  # log10 t_E
    quantiles[:, 2] = -4.0 + 0.5 * STEPS  # log10 u_0: a peak of thousands
    quantiles[:, 3] = 0.8
    probabilities = np.full((30, 3), 1 / 3)
    figure = parameter_replay_figure(times, flux, err, quantiles, probabilities, 12)
    top = figure.layout.yaxis.range[1]
    assert flux.max() < top < 10 * flux.max()


def test_replay_row_picks_the_highest_single_lens_peak_inside_its_curve():
    from microlens.reports.widgets import replay_row

    class Store:  # the few attributes replay_row reads
        labels = np.array([0, 1, 1, 2, 1])
        params = np.array([(50.0, 0.01), (50.0, 0.3), (500.0, 0.001), (50.0, 0.05),
                           (40.0, -0.1)], dtype=[("t_0", "f8"), ("u_0", "f8")])
        offsets = np.array([0, 10, 20, 30, 40, 50])
        lengths = np.diff(offsets)
        observations = {"times": np.tile(np.linspace(0, 100, 10), 5)}

        def indices(self, split):
            return np.array([0, 1, 2, 3, 4])

    assert replay_row(Store()) == 4  # |u_0| 0.1 beats 0.3; row 2's peak is outside its curve
    Store.labels = np.array([0, 0, 0, 2, 0])
    assert replay_row(Store()) == 3  # no single lens: the first lensing event


# --------------------------------------------------------------------------------------------
# The notebook, end to end (slow: it trains a tiny model with heads)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_notebook_09_runs_end_to_end(tmp_path):
    import torch
    from notebook_form import NOTEBOOKS, assert_figures_written, execute_without_errors

    from microlens import generate_dataset, open_dataset
    from microlens.models.config import ModelConfig
    from microlens.simulation.simulate import SimulationConfig
    from microlens.training.train import TrainConfig, train
    from microlens.workflow.figures import notebook_figures
    from microlens.workflow.notebooks import load_record

    config = SimulationConfig(n_per_class=30, n_epochs=200, topology="stellar", seed=7,
                              detectability=False)
    store = open_dataset(generate_dataset(config, tmp_path / "data", workers=1, progress=False))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = train(TrainConfig(dataset=str(tmp_path / "data"), run_name="heads",
                                runs_dir=str(tmp_path / "runs"), epochs=1, batch_size=16,
                                patience=0, seed=1,
                                model=ModelConfig(d_model=16, n_heads=2, n_layers=1, d_ff=32,
                                                  window=16, dropout=0.0,
                                                  parameter_heads=True)), progress=False)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "out"
    nb = execute_without_errors(NOTEBOOKS / "09_parameters.ipynb", tmp_path / "09.ipynb", {
        "run_dir": str(run), "max_events": 12, "workers": 1, "output_dir": str(out),
        "figure_formats": ["html"], "show_widgets": True})
    assert_figures_written(out, FIGURE_NAMES)
    record, _ = load_record("09_parameters", out)
    assert record["figures"] == FIGURE_NAMES
    assert record["n_test_events"] == min(12, store.indices("test").size)
    assert sorted(notebook_figures(out, "09_parameters")) == FIGURE_NAMES
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("text/markdown" in o.get("data", {}) for o in outputs)  # the table
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs[-3:])  # the replay
