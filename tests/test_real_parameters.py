"""Lens parameters on real events (microlens.realdata.parameters): the errors against OGLE's fit
on known inputs, its rules, the time frames on a synthetic EWS folder through a fake model, the
splits and the record on the shipped subset through a tiny model with heads, and the command
line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers import pspl_magnification, write_ews_event

from microlens.models.parameters import QUANTILES, TARGETS
from microlens.photometry import ews
from microlens.photometry.ews import EwsFit
from microlens.realdata import parameters
from microlens.realdata.parameters import (
    METRICS,
    SPLITS,
    STAGES,
    bootstrap_median,
    main,
    markdown_table,
    ogle_fit_problem,
    parameter_errors,
    real_parameter_comparison,
)

T0 = 2459000.0


def ogle_fit(**values) -> EwsFit:
    fields = dict(tmax=2460700.5, tau=20.0, umin=0.1, amax=10.0, fbl=0.4, fbl_fixed=False,
                  i0=19.0, degenerate=False)
    return EwsFit(**{**fields, **values})


# -- errors and rules on known inputs ---------------------------------------------------------


def test_errors_are_zero_where_the_estimate_is_ogles_fit_in_its_own_frame():
    fit = ogle_fit()
    origin = 2460100.25  # full HJD of the segment's first observation
    exact = [fit.tmax - origin, math.log10(fit.tau), math.log10(fit.umin), fit.fbl]
    assert parameter_errors(exact, origin, fit) == pytest.approx(dict.fromkeys(METRICS, 0.0),
                                                                 abs=1e-12)
    off = [fit.tmax - origin + 5.0, math.log10(fit.tau) + 0.3, math.log10(0.25), 0.5]
    assert parameter_errors(off, origin, fit) == pytest.approx(
        {"dt0_over_tE": 0.25, "dlog10_tE": 0.3, "du0": 0.15, "dfs": 0.1})
    # a t_0 left in the segment's frame would be years off: the origin is what aligns them
    assert parameter_errors(exact, 0.0, fit)["dt0_over_tE"] == pytest.approx(origin / fit.tau)
    # where OGLE fixed the blending, f_s is not scored
    assert parameter_errors(exact, origin, ogle_fit(fbl=1.0, fbl_fixed=True))["dfs"] is None


def test_degenerate_ogle_fits_are_named_by_the_rule_they_break():
    assert ogle_fit_problem(ogle_fit()) is None
    assert ogle_fit_problem(ogle_fit(tau=0.0)) == "tau not finite and positive"
    assert ogle_fit_problem(ogle_fit(tau=math.nan)) == "tau not finite and positive"
    assert ogle_fit_problem(ogle_fit(umin=0.0, amax=99999.0)) == "umin not finite and positive"
    assert ogle_fit_problem(ogle_fit(amax=99999.0)).startswith("Amax at OGLE's non-convergence")
    assert ogle_fit_problem(ogle_fit(tau=0.5)) == "tau outside [1, 1000] d"
    assert ogle_fit_problem(ogle_fit(tau=1500.0)) == "tau outside [1, 1000] d"
    assert ogle_fit_problem(ogle_fit(tau=1.0)) is None


def test_bootstrap_median_is_seeded_and_brackets_the_median():
    values = np.random.default_rng(3).exponential(size=200)
    a = bootstrap_median(values, (0, 1), 500)
    assert a == bootstrap_median(values, (0, 1), 500)
    assert a["n"] == 200 and a["median"] == pytest.approx(np.median(values))
    assert a["interval"][0] < a["median"] < a["interval"][1]
    assert bootstrap_median([np.nan, None]) == {"n": 0, "median": None, "interval": [None, None]}


# -- a synthetic folder through a fake model ---------------------------------------------------


def write_event(root, name, *, n=560, tmax=T0 + 500.0, tau=20.0, umin=0.1, i0=18.0,
                params=True, amax=None, fbl_fitted=None, ra="17:19:44.68", seed=0):
    """Daily points from T0, 0.02 mag noise, a PSPL brightening and OGLE's fit; with
    ``fbl_fitted`` the fit's ``fbl`` row says OGLE fitted that value (error 0.02)."""
    rng = np.random.default_rng(seed)
    hjd = T0 + np.arange(n) + 0.1 * rng.random(n)
    mag = i0 - 2.5 * np.log10(pspl_magnification(hjd, tmax, max(tau, 1e-3), umin))
    mag = mag + 0.02 * rng.standard_normal(n)
    fit = {"tmax": tmax, "tau": tau, "umin": umin, "i0": i0}
    if amax is not None:
        fit["amax"] = amax
    write_ews_event(root, name, hjd, mag, 0.02, ra=ra, dec="-27:43:21.4",
                    fit=fit if params else None)
    if fbl_fitted is not None:
        path = root / "params" / f"{name}_params.dat"
        lines = [f"  fbl    {fbl_fitted:14.3f} {0.02:9.3f}" if line.split()[:1] == ["fbl"]
                 else line for line in path.read_text().splitlines()]
        path.write_text("\n".join(lines) + "\n")
    return hjd


class PeakModel(torch.nn.Module):
    """A causal fake model with parameter heads: after every observation its median ``t_0`` is
    the time of the brightest observation so far (in the frame of the times it is given),
    ``t_E`` 20 d, ``u_0`` 0.1 and ``f_s`` 0.4."""

    kind = "transformer"

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def predict_proba(self, times, flux, flux_err, mask=None, **kw):  # pragma: no cover
        raise AssertionError("not asked for")

    def predict_parameters(self, times, flux, flux_err, mask=None):
        times, flux = np.asarray(times, np.float64), np.asarray(flux, np.float64)
        brightest = np.maximum.accumulate(flux, axis=1)
        at = np.zeros_like(times)
        for b in range(times.shape[0]):
            index = np.zeros(times.shape[1], np.int64)
            for k in range(1, times.shape[1]):
                index[k] = k if flux[b, k] >= brightest[b, k - 1] else index[k - 1]
            at[b] = times[b, index]
        out = np.zeros(times.shape + (len(TARGETS), len(QUANTILES)))
        out[..., 0, :] = at[..., None]
        out[..., 1, :], out[..., 2, :], out[..., 3, :] = math.log10(20.0), -1.0, 0.4
        return torch.as_tensor(out, dtype=torch.float32)


@pytest.fixture
def folder(tmp_path):
    """A good PSPL event (blending fixed), OGLE's fit with tau = 0, an event OGLE fitted with
    blending, one without params, and one whose peak comes after only 5 points."""
    root = tmp_path / "ews"
    write_event(root, "blg-0001", seed=1)
    write_event(root, "blg-0002", tau=0.0, amax=5.0, ra="17:20:00.00", seed=2)
    write_event(root, "blg-0003", tmax=T0 + 450.0, tau=30.0, fbl_fitted=0.6,
                ra="17:30:00.00", seed=3)
    write_event(root, "blg-0004", params=False, ra="17:40:00.00", seed=4)
    write_event(root, "blg-0005", n=60, tmax=T0 + 5.0, tau=10.0, ra="17:50:00.00", seed=5)
    return root


def test_rules_splits_and_time_frames_on_a_synthetic_folder(folder):
    record = real_parameter_comparison(PeakModel(), folder, window_days=200.0, n_bootstrap=200)
    counts = record["counts"]
    assert (counts["events_in_folder"], counts["no_params"], counts["ogle_fit_degenerate"],
            counts["compared"]) == (5, 1, 1, 3)
    assert counts["ogle_fit_degenerate_by_reason"] == {"tau not finite and positive": 1}
    assert {"name": "blg-0002", "reason": "ogle_fit_degenerate",
            "detail": "tau not finite and positive"} in record["excluded"]
    assert {"name": "blg-0005", "reason": "too_few_observations",
            "detail": "stage tmax: 5 observations"} in record["excluded"]
    rows = {r["name"]: r for r in record["events"]}
    assert set(rows) == {"blg-0001", "blg-0003", "blg-0005"}
    assert (rows["blg-0001"]["split"], rows["blg-0003"]["split"]) == SPLITS[::-1]
    assert rows["blg-0003"]["ogle"]["fbl"] == 0.6

    hjd, mag = np.loadtxt(folder / "photometry" / "blg-0001_phot.dat", usecols=(0, 1)).T
    tmax = rows["blg-0001"]["ogle"]["tmax_hjd"]
    for stage, last in (("tmax", tmax), ("end", tmax + 2 * 20.0)):
        entry = rows["blg-0001"]["stages"][stage]
        seen = hjd <= last
        window = seen & (hjd >= hjd[seen][-1] - 200.0)
        # the frame's origin is the full HJD of the stage's first observation in the window
        assert entry["n"] == window.sum()
        assert entry["origin_hjd"] == pytest.approx(hjd[window][0], abs=1e-6)
        # the fake model's t_0 is its brightest point: moved into OGLE's frame, near Tmax
        brightest = hjd[window][np.argmin(mag[window])]
        assert entry["model"]["t_0_hjd"] == pytest.approx(brightest, abs=1e-3)
        assert entry["model"]["errors"]["dt0_over_tE"] == pytest.approx(
            abs(brightest - tmax) / 20.0, abs=1e-4)
        assert entry["model"]["errors"]["dt0_over_tE"] < 0.1
        assert entry["model"]["errors"]["dlog10_tE"] == pytest.approx(0.0, abs=1e-6)
        assert entry["fit"]["ok"] and entry["fit"]["errors"]["dt0_over_tE"] < 0.1
    assert rows["blg-0005"]["stages"]["tmax"] == {"scored": False, "n": 5}

    summary = record["summary"]
    assert summary["blending_fixed"]["tmax"]["n"] == 1  # blg-0005's tmax stage is too short
    assert summary["blending_fixed"]["tmax"]["left_out"] == {"too_few_observations": 1}
    assert summary["blending_fixed"]["end"]["n"] == 2
    assert "dfs" not in summary["blending_fixed"]["end"]["model"]
    fitted = summary["blending_fitted"]["end"]
    assert fitted["n"] == 1 and fitted["model"]["dfs"]["median"] == pytest.approx(0.2)
    json.dumps(record, allow_nan=False)  # JSON-ready


@pytest.mark.slow
def test_training_stars_are_left_out_and_workers_change_no_fit(folder, monkeypatch):
    one = real_parameter_comparison(PeakModel(), folder, n_bootstrap=100)
    star = next(r["star"] for r in one["events"] if r["name"] == "blg-0003")
    monkeypatch.setattr(parameters, "training_stars",
                        lambda run: (frozenset({star}), "a test's stars"))
    two = real_parameter_comparison(PeakModel(), folder, n_bootstrap=100, workers=2)
    assert two["counts"]["training_star"] == 1
    assert {"name": "blg-0003", "reason": "training_star"} in two["excluded"]
    assert [r["name"] for r in two["events"]] == ["blg-0001", "blg-0005"]
    kept = [r for r in one["events"] if r["name"] != "blg-0003"]
    assert [r["stages"] for r in two["events"]] == [r["stages"] for r in kept]


# -- the shipped subset through a tiny model with heads, and the command line ------------------


def tiny_run(tmp_path, heads: bool = True):
    """A run directory of an untrained tiny transformer with parameter heads."""
    from microlens.models.config import ModelConfig
    from microlens.models.inputs import Normalization
    from microlens.models.registry import build_model

    torch.manual_seed(0)
    config = ModelConfig(kind="transformer", d_model=16, n_heads=2, n_layers=1, d_ff=32,
                         parameter_heads=heads)
    run = tmp_path / ("run" if heads else "no_heads")
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": config.to_dict(),
                                                 "train": {"dataset": str(tmp_path / "none")}}))
    Normalization().save(run / "normalization.json")
    torch.save(build_model(config, Normalization()).state_dict(), run / "best.pt")
    return run


@pytest.mark.slow
def test_command_line_on_the_shipped_subset_prints_the_table_and_writes_the_record(
        tmp_path, capsys):
    run, out = tiny_run(tmp_path), tmp_path / "parameters.json"
    subset = ews.shipped_subset()
    assert main([str(run), "--folder", str(subset), "--max-events", "5", "--out",
                 str(out)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("| split | stage | error | model: median [95 % CI] | n | fit:")
    assert "| blending_fitted | tmax | \\|ΔT_max\\| / t_E |" in table  # pipes escaped
    assert "| blending_fixed | end | \\|Δ log10 t_E\\| |" in table
    assert "| blending_fixed | end | \\|Δf_s\\|" not in table  # fbl fixed: not scored
    assert "Udalski et al. 2015, AcA 65, 1" in table and "Udalski 2003, AcA 53, 291" in table
    record = json.loads(out.read_text())
    assert not list(tmp_path.glob(".*tmp"))
    assert table.strip() == markdown_table(record)
    assert record["model_kind"] == "transformer" and record["comparison"] == "real_parameters"
    counts = record["counts"]
    # blg-0002, 0006 (umin = 0: left out), 0011 fixed; blg-0020, 0021 fitted blending
    assert (counts["selected"], counts["ogle_fit_degenerate"], counts["blending_fixed"],
            counts["blending_fitted"]) == (5, 1, 2, 2)
    assert {"name": "blg-0006", "reason": "ogle_fit_degenerate",
            "detail": "umin not finite and positive"} in record["excluded"]
    by_name = {r["name"]: r for r in record["events"]}
    for row in record["events"]:
        assert row["split"] == ("blending_fixed" if row["ogle"]["fbl_fixed"] else
                                "blending_fitted")
        for stage in STAGES:
            entry = row["stages"][stage]
            assert entry["scored"] and entry["n"] >= 10
            # every frame's origin is an observation of the 2017-2025 OGLE-IV data
            assert 2457790 < entry["origin_hjd"] < row["ogle"]["tmax_hjd"]
    assert by_name["blg-0020"]["ogle"]["fbl"] == 0.532
    for split in SPLITS:
        for stage in STAGES:
            cell = record["summary"][split][stage]
            assert cell["n"] == 2 and cell["model"]["dt0_over_tE"]["n"] == 2
            assert cell["fit"]["dlog10_tE"]["n"] == cell["fit_ok"]
            assert cell["fit_ok"] + sum(cell["fit_left_out"].values()) == 2
    assert set(record["summary"]["blending_fitted"]["end"]["model"]) == set(METRICS)

    assert main([str(run), "--folder", str(subset), "--max-events", "-1"]) == 2
    assert capsys.readouterr().err.strip() == ("error: max_events must be an integer >= 0, "
                                               "got -1")
    assert main([str(tiny_run(tmp_path, heads=False)), "--folder", str(subset)]) == 2
    assert "has no parameter heads" in capsys.readouterr().err
