"""Non-lensing variable stars (microlens.simulation.variables): shapes, ranges, reproducibility,
errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microlens.simulation import variables as V
from microlens.simulation.variables import (
    VARIABLE_COLUMNS,
    VARIABLE_DTYPES,
    VARIABLE_KINDS,
    describe_variable,
    draw_variable,
    variable_flux,
)

NON_CONSTANT = VARIABLE_KINDS[1:]


def row(kind: str, **values) -> dict:
    """A parameter row of ``kind`` with the given values (others NaN, seed 0)."""
    out = V.empty_variable()
    out["variable_kind"] = VARIABLE_KINDS.index(kind)
    out.update(values)
    return out


def mag(flux: np.ndarray) -> np.ndarray:
    """Magnitude relative to the baseline (positive = fainter)."""
    return -2.5 * np.log10(flux)


def pdm(t, y, periods, n_bins=50) -> np.ndarray:
    """Phase-dispersion statistic: scatter about the phase-binned means, relative to the total."""
    stat = np.empty(len(periods))
    total = np.sum((y - y.mean()) ** 2)
    for i, period in enumerate(periods):
        b = (np.mod(t / period, 1.0) * n_bins).astype(np.int64)
        n = np.bincount(b, minlength=n_bins)
        s1 = np.bincount(b, y, minlength=n_bins)
        s2 = np.bincount(b, y * y, minlength=n_bins)
        stat[i] = np.sum(s2 - s1**2 / np.maximum(n, 1)) / total
    return stat


def recovered_period(t, y, period) -> float:
    """Coarse-to-fine phase-dispersion search over [0.6, 1.6] x the true period (this excludes
    the aliases P / 2 and 2 P, where a fold of an eclipsing binary is also smooth)."""
    span = t.max() - t.min()
    f = np.arange(1 / (1.6 * period), 1 / (0.6 * period), 0.1 / span)
    f0 = f[int(np.argmin(pdm(t, y, 1 / f)))]
    fine = np.linspace(f0 - 0.1 / span, f0 + 0.1 / span, 201)
    return float(1 / fine[int(np.argmin(pdm(t, y, 1 / fine)))])


def dense_times(span: float, n: int, seed: int = 0, start: float = 0.0) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).uniform(start, start + span, n))


# --------------------------------------------------------------------------------------------
# Parameter rows, random stream, ranges
# --------------------------------------------------------------------------------------------


def test_rows_have_every_column_with_documented_types():
    rng = np.random.default_rng(0)
    assert set(VARIABLE_DTYPES) <= set(VARIABLE_COLUMNS)
    # codes never change: later kinds are appended
    assert VARIABLE_KINDS == ("constant", "cataclysmic", "pulsating", "eclipsing", "long_period",
                              "stochastic", "young_star", "season_drift")
    for kind in VARIABLE_KINDS:
        p = draw_variable(rng, 200.0, kind=kind)
        assert tuple(p) == VARIABLE_COLUMNS
        assert p["variable_kind"] == VARIABLE_KINDS.index(kind)
        assert isinstance(p["variable_kind"], int) and isinstance(p["var_seed"], int)
        assert 0 <= p["var_seed"] < 2**62
        for name in VARIABLE_COLUMNS:
            if name not in VARIABLE_DTYPES:
                assert isinstance(p[name], float)
        uses_seed = kind in ("cataclysmic", "long_period", "stochastic", "young_star",
                             "season_drift")
        assert (p["var_seed"] != 0) == uses_seed  # 0 when unused (a drawn 0 has odds 2**-62)
    constant = draw_variable(rng, 200.0, kind="constant")
    assert all(math.isnan(constant[c]) for c in VARIABLE_COLUMNS if c not in VARIABLE_DTYPES)
    # the row fits a structured table with the documented dtypes
    dtype = np.dtype([(c, VARIABLE_DTYPES.get(c, np.float64)) for c in VARIABLE_COLUMNS])
    table = np.zeros(1, dtype=dtype)
    p = draw_variable(rng, 200.0, kind="stochastic")
    for c in VARIABLE_COLUMNS:
        table[c][0] = p[c]
    t = np.arange(50.0)
    assert np.array_equal(variable_flux(table[0], t), variable_flux(p, t))


@pytest.mark.parametrize("weights", [None, {"pulsating": 1.0}, [1, 0, 0, 0, 0, 2, 1, 1],
                                     V.CONTAMINANT_MIXES["survey"]])
def test_rng_advances_identically_for_every_kind(weights):
    after = set()
    for kind in (None, *VARIABLE_KINDS, *range(len(VARIABLE_KINDS))):
        rng = np.random.default_rng(2024)
        draw_variable(rng, 200.0, kind=kind, kind_weights=weights)
        after.add((rng.random(), int(rng.integers(0, 2**62))))
    assert len(after) == 1
    # ... and it is exactly N_UNIFORMS uniforms plus one integer
    rng = np.random.default_rng(2024)
    rng.random(V.N_UNIFORMS)
    rng.integers(0, V.SEED_HIGH)
    assert after == {(rng.random(), int(rng.integers(0, 2**62)))}


def test_forcing_the_drawn_kind_gives_the_same_row():
    for seed in range(40):
        chosen = draw_variable(np.random.default_rng(seed), 200.0)
        forced = draw_variable(np.random.default_rng(seed), 200.0,
                               kind=VARIABLE_KINDS[chosen["variable_kind"]])
        assert chosen == forced or all(
            (a == b) or (math.isnan(a) and math.isnan(b))
            for a, b in zip(chosen.values(), forced.values(), strict=True))


def _between(values, bounds):
    values = np.asarray(values)
    return bool(np.all((values >= bounds[0]) & (values <= bounds[1])))


def test_parameters_lie_in_documented_ranges_over_2000_draws():
    rng = np.random.default_rng(7)
    rows = [draw_variable(rng, 200.0) for _ in range(2000)]
    kinds = np.array([r["variable_kind"] for r in rows])
    # default weights: the five non-constant kinds, equally (binomial 5-sigma tolerance)
    assert not np.any(kinds == 0)
    share = np.bincount(kinds, minlength=6)[1:] / kinds.size
    assert np.all(np.abs(share - 0.2) < 5 * math.sqrt(0.2 * 0.8 / kinds.size))

    def col(kind, name, where=None):
        sel = [r for r in rows if VARIABLE_KINDS[r["variable_kind"]] == kind
               and (where is None or where(r))]
        return np.array([r[name] for r in sel])

    cv = "cataclysmic"
    assert _between(col(cv, "var_amplitude"), V.CV_AMPLITUDE)
    assert _between(col(cv, "var_period"), V.CV_RECURRENCE)
    assert _between(col(cv, "var_timescale"), V.CV_DECLINE)
    assert _between(col(cv, "var_shape") * col(cv, "var_timescale"), V.CV_RISE)
    assert np.all(col(cv, "var_shape") <= 1.0)  # rise never slower than the decline
    for kind in ("cataclysmic", "pulsating", "eclipsing", "long_period"):
        assert _between(col(kind, "var_phase"), (0.0, 1.0)) and np.all(col(kind, "var_phase") < 1)
    assert _between(col("pulsating", "var_period"), V.PULS_PERIOD)
    assert _between(col("pulsating", "var_amplitude"), V.PULS_AMPLITUDE)
    assert _between(col("pulsating", "var_shape"), V.PULS_RISE)
    shapes = col("eclipsing", "var_shape")
    assert set(np.unique(shapes)) == {0.0, 1.0}

    def detached(r):
        return r["var_shape"] == 0.0

    def contact(r):
        return r["var_shape"] == 1.0

    assert _between(col("eclipsing", "var_period", detached), V.ECL_PERIOD)
    assert _between(col("eclipsing", "var_amplitude", detached), V.ECL_DEPTH)
    assert _between(col("eclipsing", "var_ratio", detached), V.ECL_RATIO)
    assert _between(col("eclipsing", "var_width", detached), V.ECL_WIDTH)
    assert _between(col("eclipsing", "var_period", contact), V.CONTACT_PERIOD)
    assert _between(col("eclipsing", "var_amplitude", contact), V.CONTACT_DEPTH)
    assert _between(col("eclipsing", "var_ratio", contact), V.CONTACT_RATIO)
    assert np.all(np.isnan(col("eclipsing", "var_width", contact)))
    assert _between(col("long_period", "var_period"), V.LPV_PERIOD)
    assert _between(col("long_period", "var_amplitude"), V.LPV_AMPLITUDE)
    assert _between(col("long_period", "var_shape"), V.LPV_RISE)
    assert _between(col("long_period", "var_ratio"), V.LPV_IRREGULARITY)
    assert _between(col("stochastic", "var_timescale"), V.DRW_TAU)
    assert _between(col("stochastic", "var_amplitude"), V.DRW_SIGMA)
    assert np.all(np.isnan(col("stochastic", "var_period")))
    # draws spread over the whole range (not stuck at one end): both halves are populated
    per = np.log(col("pulsating", "var_period"))
    mid = 0.5 * (math.log(V.PULS_PERIOD[0]) + math.log(V.PULS_PERIOD[1]))
    assert np.any(per < mid) and np.any(per > mid)
    # every drawn row evaluates to finite, positive flux on a survey-like window
    t = dense_times(200.0, 600, seed=3)
    for r in rows[:300]:
        f = variable_flux(r, t)
        assert np.all(np.isfinite(f)) and np.all(f > 0)
        assert describe_variable(r)


def test_kind_weights_are_honoured():
    rng = np.random.default_rng(1)
    only = [draw_variable(rng, 200.0, kind_weights={"eclipsing": 3.0})["variable_kind"]
            for _ in range(200)]
    assert set(only) == {VARIABLE_KINDS.index("eclipsing")}
    only_constant = [1] + [0] * (len(VARIABLE_KINDS) - 1)
    seq = [draw_variable(rng, 200.0, kind_weights=only_constant)["variable_kind"]
           for _ in range(50)]
    assert set(seq) == {0}
    last = [draw_variable(rng, 200.0, kind_weights={"stochastic": 1, "constant": 0})
            ["variable_kind"] for _ in range(50)]
    assert set(last) == {5}


# --------------------------------------------------------------------------------------------
# Light-curve shapes
# --------------------------------------------------------------------------------------------


def test_constant_is_ones_for_any_length():
    p = draw_variable(np.random.default_rng(0), 200.0, kind="constant")
    for n in (0, 1, 100_000):
        f = variable_flux(p, np.linspace(-5, 300, n))
        assert f.shape == (n,) and f.dtype == np.float64 and np.all(f == 1.0)


def test_pulsating_period_amplitude_and_mean_magnitude():
    p = row("pulsating", var_period=0.5731, var_amplitude=0.62, var_phase=0.3, var_shape=0.15)
    t = dense_times(200.0, 4000, seed=1)
    f = variable_flux(p, t)
    assert abs(recovered_period(t, f, 0.5731) / 0.5731 - 1) < 0.01
    one = np.linspace(0.0, 0.5731, 20001)  # one cycle, densely
    m = mag(variable_flux(p, one))
    assert abs((m.max() - m.min()) - 0.62) < 1e-4
    assert abs(m.mean()) < 1e-3  # baseline = mean magnitude
    # minimum light at phase 0, maximum at phase = rise fraction (absolute time 0 of the axis)
    t_min = (1 - 0.3) * 0.5731
    assert abs(mag(variable_flux(p, [t_min]))[0] - 0.31) < 1e-9
    assert abs(mag(variable_flux(p, [t_min + 0.15 * 0.5731]))[0] + 0.31) < 1e-9
    # sawtooth: brightening takes 15 % of the cycle, fading 85 %
    phase_of_max = ((one[np.argmin(m)] / 0.5731 + 0.3) % 1.0)
    assert abs(phase_of_max - 0.15) < 1e-3


@pytest.mark.parametrize("shape", [0.0, 1.0])
def test_eclipsing_period_depths_and_baseline(shape):
    period, depth, ratio = 2.31, 0.8, 0.4 if shape == 0 else 0.85
    p = row("eclipsing", var_period=period, var_amplitude=depth, var_phase=0.1, var_shape=shape,
            var_ratio=ratio, var_width=0.08 if shape == 0 else math.nan)
    t = dense_times(200.0, 4000, seed=2)
    f = variable_flux(p, t)
    assert abs(recovered_period(t, f, period) / period - 1) < 0.01
    primary = (1 - 0.1) * period  # phase 0 at t = (k - var_phase) P
    m1, m2 = mag(variable_flux(p, [primary, primary + 0.5 * period]))
    assert abs(m1 - depth) < 1e-3 and abs(m2 - ratio * depth) < 1e-3
    quadrature = mag(variable_flux(p, [primary + 0.25 * period, primary + 0.75 * period]))
    assert np.all(np.abs(quadrature) < 1e-3)  # baseline = out-of-eclipse / quadrature light
    assert np.all(f <= 1.0 + 1e-12)
    if shape == 0:  # FWHM of the primary dip = var_width of the phase
        x = np.linspace(primary - 0.2 * period, primary + 0.2 * period, 40001)
        dm = mag(variable_flux(p, x))
        inside = x[dm >= 0.5 * dm.max()]
        assert abs((inside.max() - inside.min()) / period - 0.08) < 1e-3


def test_long_period_period_and_cycle_amplitudes():
    period, amp, irr = 100.0, 3.0, 0.05
    p = row("long_period", var_period=period, var_amplitude=amp, var_phase=0.2, var_shape=0.4,
            var_ratio=irr, var_seed=12345)
    t = dense_times(2000.0, 6000, seed=3)
    f = variable_flux(p, t)
    assert abs(recovered_period(t, mag(f), period) / period - 1) < 0.01
    # each cycle's peak-to-peak lies within the irregularity band around the amplitude
    grid = np.arange(0.0, 2000.0, 0.05)
    m = mag(variable_flux(p, grid))
    ptp = []
    for k in range(2, 18):
        seg = m[(grid >= k * period) & (grid < (k + 1) * period)]
        ptp.append(seg.max() - seg.min())
    ptp = np.array(ptp)
    assert np.all(ptp > amp * (1 - 2 * irr) - 1e-6) and np.all(ptp < amp * (1 + 2 * irr) + 1e-6)
    assert np.std(ptp) > 0  # the jitter is really there
    assert np.all(np.abs(np.diff(m)) < 0.01)  # continuous across cycle boundaries


def test_cataclysmic_outbursts_recurrence_amplitude_and_fast_rise():
    period, amp, rise, decline = 50.0, 4.0, 1.0, 8.0
    p = row("cataclysmic", var_period=period, var_amplitude=amp, var_phase=0.37,
            var_shape=rise / decline, var_timescale=decline, var_seed=99)
    t = np.arange(0.0, 2000.0, 0.002)
    m = mag(variable_flux(p, t))
    assert abs(m.max()) < 1e-6 + amp and m.max() <= 1e-12  # never fainter than quiescence
    bright = m < -0.1
    starts = np.flatnonzero(bright[1:] & ~bright[:-1]) + 1
    ends = np.flatnonzero(~bright[1:] & bright[:-1]) + 1
    peaks = np.array([s + np.argmin(m[s:e]) for s, e in zip(starts, ends, strict=True)])
    assert 35 <= peaks.size <= 41
    # recurrence: the per-outburst jitter (|j| <= 0.12 P) moves the first and last peak, so the
    # mean spacing is off by at most 0.24 P / (n - 1), below 1 %
    spacing = (t[peaks[-1]] - t[peaks[0]]) / (peaks.size - 1)
    assert abs(spacing / period - 1) < 0.24 / (peaks.size - 1) + 1e-9 < 0.01
    assert np.std(np.diff(t[peaks])) > 0  # quasi-periodic
    # each peak is the outburst amplitude, up to the sampling of the cusp: the rise e-folds in
    # rise / ln(X / (10**0.04 - 1)), so one grid step misses at most 1.0857 step / tau_r mag
    x = 10 ** (0.4 * amp) - 1
    tau_r = rise / math.log(x / (10**0.04 - 1))
    assert np.allclose(-m[peaks], amp, atol=1.0857 * 0.002 / tau_r)
    assert np.all(-m[peaks] <= amp + 1e-6)
    rise_times = t[peaks] - t[starts]
    decline_times = t[ends] - t[peaks]
    assert np.allclose(rise_times, rise, atol=0.005)
    assert np.allclose(decline_times, decline, atol=0.005)
    assert np.all(rise_times < decline_times)


def test_cataclysmic_rises_faster_than_it_declines_for_drawn_parameters():
    """Drawn amplitudes, rise and decline times, on an isolated outburst (recurrence 400 d)."""
    rng = np.random.default_rng(5)
    for _ in range(30):
        p = dict(draw_variable(rng, 200.0, kind="cataclysmic"), var_period=400.0, var_phase=0.5)
        t = np.arange(140.0, 260.0, 0.002)
        m = mag(variable_flux(p, t))
        i = int(np.argmin(m))
        bright = np.flatnonzero(m < -0.1)
        rise, decline = t[i] - t[bright.min()], t[bright.max()] - t[i]
        assert rise < decline
        assert abs(rise - p["var_shape"] * p["var_timescale"]) < 0.005
        assert abs(decline - p["var_timescale"]) < 0.005
        x = 10 ** (0.4 * p["var_amplitude"]) - 1  # cusp sampling bound, as above
        tau_r = p["var_shape"] * p["var_timescale"] / math.log(x / (10**0.04 - 1))
        assert 0 <= p["var_amplitude"] + m[i] < 1.0857 * 0.002 / tau_r + 1e-6


def test_cataclysmic_short_window_may_see_no_outburst():
    p = row("cataclysmic", var_period=400.0, var_amplitude=3.0, var_phase=0.5,
            var_shape=0.1, var_timescale=10.0, var_seed=1)
    f = variable_flux(p, np.linspace(0.0, 100.0, 500))  # outbursts near 152 +- 48 d, 552 ...
    assert np.all(mag(f) > -0.01)


def test_stochastic_rms_and_correlation_match_the_process():
    """rms and lag-1 correlation of the OU magnitude on 100 000 evenly spaced times.

    Tolerances, derived: for a zero-mean AR(1) with lag correlation ``rho = exp(-dt / tau)``,
    ``Cov(x_i^2, x_j^2) = 2 sigma^4 rho^(2|i-j|)``, so ``Var(mean x^2) = (2 sigma^4 / n)(1 +
    rho^2) / (1 - rho^2)`` and the relative error of the rms is half that of ``mean x^2``. The
    sample lag-1 correlation has standard error ``sqrt((1 - rho^2) / n)`` (Bartlett). We allow
    5 standard errors.
    """
    sigma, tau, dt, n = 0.3, 5.0, 2.0, 100_000
    rho = math.exp(-dt / tau)
    rel_err_rms = 0.5 * math.sqrt(2 * (1 + rho**2) / (n * (1 - rho**2)))
    err_corr = math.sqrt((1 - rho**2) / n)
    t = 1000.0 + dt * np.arange(n)
    for seed in (1, 2, 3):
        p = row("stochastic", var_amplitude=sigma, var_timescale=tau, var_seed=seed)
        x = mag(variable_flux(p, t))
        rms = math.sqrt(np.mean(x**2))
        assert abs(rms / sigma - 1) < 5 * rel_err_rms  # 5 * 0.36 %
        corr = np.sum(x[1:] * x[:-1]) / np.sum(x**2)
        assert abs(corr - rho) < 5 * err_corr


def test_stochastic_on_irregular_times_with_gaps():
    """Exact update: the marginal rms holds on irregular times; the tolerance uses the
    evenly-spaced formula at the mean spacing (conservative: gaps decorrelate more)."""
    sigma, tau = 0.2, 3.0
    rng = np.random.default_rng(11)
    t = np.sort(rng.uniform(0, 60_000, 30_000))
    t = t[(t % 1000.0) < 700.0]  # seasonal gaps
    p = row("stochastic", var_amplitude=sigma, var_timescale=tau, var_seed=7)
    x = mag(variable_flux(p, t))
    rho = math.exp(-np.mean(np.diff(t)) / tau)
    rel_err = 0.5 * math.sqrt(2 * (1 + rho**2) / (t.size * (1 - rho**2)))
    assert abs(math.sqrt(np.mean(x**2)) / sigma - 1) < 5 * rel_err
    # unsorted input: same values at the same times; repeated times: same value
    perm = rng.permutation(t.size)
    assert np.array_equal(variable_flux(p, t[perm]), variable_flux(p, t)[perm])
    f = variable_flux(p, np.array([5.0, 5.0, 6.0]))
    assert f[0] == f[1]


# --------------------------------------------------------------------------------------------
# Determinism, any times
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", NON_CONSTANT)
def test_re_evaluation_is_identical_and_any_length_works(kind):
    p = draw_variable(np.random.default_rng(31), 200.0, kind=kind)
    for t in (np.array([17.3]), np.sort(np.random.default_rng(0).uniform(-50, 150, 100_000)),
              2_450_000.0 + np.concatenate([np.arange(0, 30, 0.1), np.arange(90, 200, 0.3)])):
        a, b = variable_flux(p, t), variable_flux(p, t.copy())
        assert a.shape == t.shape and a.dtype == np.float64
        assert np.array_equal(a, b) and np.all(np.isfinite(a)) and np.all(a > 0)
    if kind != "stochastic":  # deterministic functions of time: any window sees the same star
        t = np.linspace(0, 400, 4001)
        assert np.allclose(variable_flux(p, t[1000:2000]), variable_flux(p, t)[1000:2000],
                           rtol=1e-12, atol=0)


def test_describe_variable_lines():
    rng = np.random.default_rng(4)
    words = {"constant": "constant", "cataclysmic": "dwarf nova", "pulsating": "pulsating",
             "eclipsing": "eclipsing binary", "long_period": "long-period",
             "stochastic": "damped random walk", "young_star": "young star",
             "season_drift": "season drift"}
    for kind, word in words.items():
        text = describe_variable(draw_variable(rng, 200.0, kind=kind))
        assert word in text and "\n" not in text and len(text) < 90
    p = row("eclipsing", var_period=2.3099, var_amplitude=0.8, var_phase=0.0, var_shape=0.0,
            var_ratio=0.5, var_width=0.05)
    assert describe_variable(p) == "eclipsing binary (detached), P = 2.31 d, depth 0.80 mag"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mira", "Constant", len(VARIABLE_KINDS), -1, True, 2.0])
def test_unknown_kind_names_the_choices(kind):
    with pytest.raises(ValueError, match="valid choices: constant, cataclysmic"):
        draw_variable(np.random.default_rng(0), 200.0, kind=kind)


@pytest.mark.parametrize("weights", [
    {"mira": 1.0}, {"pulsating": -1.0}, {"pulsating": math.nan}, {"pulsating": "a"},
    [1, 1, 1], [0, 0, 0, 0, 0, 0], {"pulsating": 0.0}, "pulsating", 3,
])
def test_bad_weights_are_rejected(weights):
    with pytest.raises(ValueError, match="kind|weight"):
        draw_variable(np.random.default_rng(0), 200.0, kind_weights=weights)
    with pytest.raises(ValueError) as info:
        draw_variable(np.random.default_rng(0), 200.0, kind_weights=weights)
    if isinstance(weights, dict) and "mira" in weights:
        assert "'mira'" in str(info.value) and "long_period" in str(info.value)


def test_bad_inputs_do_not_touch_the_rng():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        draw_variable(rng, 200.0, kind="nope")
    assert rng.random() == np.random.default_rng(0).random()


@pytest.mark.parametrize("span", [0.0, -3.0, math.inf, "long"])
def test_bad_span_is_rejected(span):
    with pytest.raises(ValueError, match="span_days"):
        draw_variable(np.random.default_rng(0), span)


def test_variable_flux_rejects_bad_rows_and_times():
    with pytest.raises(ValueError, match="valid choices"):
        variable_flux({"variable_kind": 9}, np.arange(3.0))
    p = draw_variable(np.random.default_rng(0), 200.0, kind="pulsating")
    with pytest.raises(ValueError, match="1-D"):
        variable_flux(p, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        variable_flux(p, np.array([0.0, math.nan]))
    assert variable_flux(dict(p, variable_kind="pulsating"), [1.0]) == variable_flux(p, [1.0])
