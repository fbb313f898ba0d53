"""Non-lensing variable stars: the known false positives of microlensing searches (class 0).

Class 0 is "no lensing event": a constant star or, in a configurable fraction, one of the
variable stars that microlensing searches must reject. Cataclysmic variables (dwarf-nova
outbursts) and "blue bumpers" (irregular bumps of Be stars) were the main contaminants of the
MACHO/EROS/OGLE event selections; periodic and long-period variables and red-noise variability
are removed by the variability cuts of every search (Alcock et al. 2000, ApJ 542, 281; Belokurov,
Evans & Le Du 2003, MNRAS 341, 1373; Wyrzykowski et al. 2015, ApJS 216, 12).

This module is pure and deterministic. :func:`draw_variable` maps a fixed number of random
numbers to a parameter row; :func:`variable_flux` evaluates the noise-free light curve from that
row alone (every random element of a light curve, e.g. the damped-random-walk noise, comes from
the stored integer seed ``var_seed``).

Units and conventions (as in :mod:`microlens.simulation.simulate`)
-------------------------------------------------------
* Times are in days, on the caller's time axis; phases refer to **absolute time 0 of that
  axis** (not to the first observation), so the same parameters on shifted windows see the same
  star.
* Flux is in units of the star's *baseline* flux, ``F = 1`` for a constant star. The baseline
  of each kind is:

  - ``cataclysmic``: quiescence (the flux between fully decayed outbursts);
  - ``pulsating``, ``long_period``: the mean magnitude of the cycle (the light curve in
    magnitudes averages to the baseline magnitude over a cycle; the mean *flux* is above 1);
  - ``eclipsing``: the out-of-eclipse level (maximum light; for contact binaries the light at
    quadrature);
  - ``stochastic``: the mean magnitude of the stationary process.
  - ``young_star``: the undisturbed level between dips (dippers) or bursts (bursters);
  - ``season_drift``: magnitude 0 at time 0 without the yearly levels (their mean is 0, the
    long secondary period averages to 0 over its cycle, the trend passes 0 at time 0).

* Amplitudes are in magnitudes, I-band-like (the OGLE/MOA survey bands).

Parameter columns (:data:`VARIABLE_COLUMNS`)
--------------------------------------------
=================  ======  =========================================================
column             unit    meaning (NaN where a kind does not use it)
=================  ======  =========================================================
``variable_kind``  code    index into :data:`VARIABLE_KINDS` (int8; 0 = constant)
``var_period``     d       CV mean outburst recurrence; pulsation / orbital / LPV period;
                           young star mean recurrence of dips / bursts; season drift
                           long-secondary period (NaN without one)
``var_amplitude``  mag     CV outburst amplitude; peak-to-peak amplitude (pulsating,
                           long-period); primary eclipse depth; stochastic rms; young
                           star largest dip depth / burst height; season drift rms of
                           the yearly mean levels
``var_phase``      cycles  in [0, 1): phase at time 0 (see each kind)
``var_shape``      --      CV rise/decline time ratio; rise fraction of the cycle
                           (pulsating, long-period); eclipsing 0 = detached, 1 = contact;
                           young star 0 = dipper, 1 = burster
``var_timescale``  d       CV decline time; stochastic (DRW) timescale tau; young star
                           FWHM of one dip / burst
``var_width``      phase   eclipse FWHM as a fraction of the period (detached only);
                   mag/yr  season drift linear trend (positive = fading)
``var_ratio``      --      secondary/primary eclipse depth; LPV irregularity; young star
                           timing jitter (fraction of the recurrence);
                   mag     season drift peak-to-peak LSP amplitude (0: no LSP)
``var_seed``       --      int64 seed of the kind's random elements (cataclysmic,
                           long_period, stochastic, young_star, season_drift); 0 when unused
=================  ======  =========================================================

The kinds, their light-curve models and the sources of their ranges
--------------------------------------------------------------------
``cataclysmic`` -- dwarf-nova outbursts.
    Each outburst adds an excess ``X * profile`` to the quiescent flux, ``X = 10**(0.4 A) - 1``
    with ``A`` the outburst amplitude; the profile rises exponentially and declines
    exponentially from its peak (1). ``var_timescale`` is the *decline time* ``t_d``: peak to
    0.1 mag above quiescence; the *rise time* ``t_r = var_shape * t_d`` is 0.1 mag above
    quiescence to peak (e-folding times are ``t / ln(X / (10**0.04 - 1))``). Outburst ``k``
    (any integer) peaks at ``(k + var_phase + j_k) * var_period`` with a per-outburst jitter
    ``j_k`` uniform in ``[-0.12, 0.12]`` derived from ``var_seed`` and ``k`` alone, so the
    recurrence is quasi-periodic and a short span may see several, one or no outburst.
    Ranges: amplitude 2-6 mag uniform, recurrence 10-500 d log-uniform, rise 0.5-2 d and
    decline 2-20 d log-uniform (so a rise is never slower than its decline). Sources: Warner
    (1995, *Cataclysmic Variable Stars*, CUP): outbursts of 2-5 mag (up to ~8), lasting 2-20 d,
    recurring from ~10 d to decades, rising in about a day; Mróz et al. (2015, Acta Astron. 65,
    313; 1091 OGLE dwarf novae): outbursts of up to 8 mag lasting a few to several days,
    recurring on days to years; the bounds 6 mag and 500 d are a judgment that keeps the
    common, detectable systems (rarer WZ Sge-type superoutbursts are left out). Jitter: SU UMa
    superoutburst epochs deviate on average by ~7 % of the cycle from a linear ephemeris (MNRAS
    502, 5668, 2021; VizieR J/MNRAS/502/5668); uniform +-12 % has a mean absolute deviation of
    6 %. Amplitudes do not vary between outbursts and the peak is a cusp (simplifications;
    no superoutburst plateau); when a long decline overlaps the next outburst (short
    recurrence) the excesses add, so the peak can exceed ``A`` slightly.

``pulsating`` -- RR Lyrae, delta Scuti, Cepheid-like pulsators.
    Magnitude ``m = -(A / 2) b(phi)`` with ``phi = frac(t / P + var_phase)``, ``phi = 0`` at
    minimum light; ``b`` rises from -1 to +1 as ``-cos(pi phi / r)`` over the fraction ``r =
    var_shape`` of the cycle and declines back as ``cos`` over the rest (continuous, smooth
    extrema, mean of ``b`` over a cycle 0). Ranges: period 0.05-50 d log-uniform, peak-to-peak
    amplitude 0.05-1 mag log-uniform, rise fraction 0.1-0.5 uniform. Sources: delta Scuti
    periods below ~0.3 d (Breger 2000, ASP Conf. Ser. 210, 3); RR Lyrae 0.2-1 d with I-band
    amplitudes up to ~1 mag (Soszyński et al. 2014, Acta Astron. 64, 177, OGLE bulge RR Lyrae);
    Cepheids from ~1 d to tens of days (Soszyński et al. 2015, Acta Astron. 65, 297). The
    bounds 0.05 d and 50 d, the log-uniform priors and the rise fractions (RRab rise in ~0.1-0.2
    of the cycle, RRc / delta Sct / Cepheids closer to symmetric) are a judgment.

``eclipsing`` -- detached and contact (W UMa) eclipsing binaries.
    Primary eclipse at ``phi = 0``, secondary at ``phi = 0.5`` (circular orbits; no ellipsoidal
    or reflection terms), ``phi = frac(t / P + var_phase)``. Detached (``var_shape = 0``):
    Gaussian dips in magnitude of FWHM ``var_width`` (fraction of the period) and depths ``D``
    and ``var_ratio * D``. Contact (``var_shape = 1``): ``dm = D (1 + cos 4 pi phi) / 2 * (f +
    (1 - f)(1 + cos 2 pi phi) / 2)`` with ``f = var_ratio``: minima of depth ``D`` and ``f D``,
    maxima (baseline) at quadrature. Half the binaries are contact (judgment). Ranges: detached
    period 0.3-30 d log-uniform, depth 0.1-1.5 mag, secondary fraction 0-1, FWHM 0.02-0.15 of
    the period; contact period 0.25-1 d log-uniform, depth 0.1-0.75 mag, secondary fraction
    0.7-1. Sources: Soszyński et al. (2016, Acta Astron. 66, 405; 450 598 OGLE bulge eclipsing
    and ellipsoidal binaries, most with periods from a fraction of a day to tens of days);
    contact binaries have periods from the 0.22 d cut-off (Rucinski 1992, AJ 103, 960) to
    ~1 d and nearly equal minima (common envelope, nearly equal temperatures; Rucinski 1993,
    in *The Realm of Interacting Binary Stars*, p. 111); 0.75 mag = 2.5 log10 2 is the depth
    at which one of two equal-surface-brightness stars is fully hidden. The detached depth,
    width and secondary-fraction bounds are a judgment (uniform priors).

``long_period`` -- Mira and semi-regular variables.
    The pulsator shape above, made slightly irregular: cycle ``k`` starts (minimum light) at
    ``(k - var_phase + d_k) * P`` with ``d_k`` uniform in ``[-e, e]``, ``e = var_ratio``, and
    each minimum and maximum has its own level, ``(A / 2)(1 + 2 e v)`` with ``v`` uniform in
    [-1, 1]; every ``d_k, v`` comes from ``var_seed`` and the cycle number alone. The curve is
    continuous; the mean period stays ``P`` (no random walk). Ranges: period 80-1000 d
    log-uniform (GCVS definition of Miras: Samus et al. 2017, Astron. Rep. 61, 80), peak-to-peak
    I-band amplitude 0.5-5 mag uniform, rise fraction 0.3-0.5 uniform (GCVS: Mira's rise
    takes 0.38 of the cycle, symmetric curves 0.49), irregularity ``e`` 0.01-0.1 uniform.
    Sources: Miras have V amplitudes of 2.5-11 mag (GCVS) but smaller I-band amplitudes;
    OGLE separates Miras from semi-regulars at an I-band amplitude of ~0.8 mag (Soszyński et
    al. 2009, Acta Astron. 59, 239; 2013, Acta Astron. 63, 21; Groenewegen & Blommaert 2005,
    A&A 443, 143 use an I semi-amplitude > 0.45 mag). The 0.5 and 5 mag bounds (bright
    semi-regulars to large-amplitude Miras) and the irregularity range (cycle-to-cycle
    fluctuations of a few per cent in Miras, more in semi-regulars) are a judgment.

``stochastic`` -- damped random walk (quasar-like or irregular giant variability).
    Magnitude ``x(t)`` is an Ornstein-Uhlenbeck process with timescale ``tau = var_timescale``
    and stationary rms ``sigma = var_amplitude`` [mag], generated exactly on the sorted times:
    ``x_0 = sigma N_0``, ``x_i = x_{i-1} a_i + sigma sqrt(1 - a_i**2) N_i`` with ``a_i =
    exp(-dt_i / tau)``, ``N_i`` from ``numpy.random.default_rng(var_seed)``; flux ``10**(-0.4
    x)``. The same times give the same values; a different set of times gives a different
    realisation (the process is not conditioned on earlier evaluations). Ranges: tau 5-500 d
    and sigma 0.05-0.5 mag, both log-uniform. Source: MacLeod et al. (2010, ApJ 721, 1014): SDSS
    Stripe 82 quasars are described by a DRW with rest-frame tau of ~100-1000 d (median ~200 d)
    and asymptotic structure function ~0.2 mag (rms = SF_inf / sqrt 2); the shorter timescales
    and the amplitude range (irregular red giants, "blue bumpers") are a judgment.

``young_star`` -- dippers and bursters (young stellar objects with disks).
    A sequence of events ``k`` (any integer) centred at ``(k + var_phase + j_k) * P``, ``P =
    var_period``, with a timing jitter ``j_k`` uniform in ``[-e, e]``, ``e = var_ratio``
    (quasi-periodic for small ``e``, nearly aperiodic at the top of the range). Event ``k`` has
    the height ``h_k = A (0.3 + 0.7 v_k)``, ``v_k`` uniform in [0, 1), ``A = var_amplitude``,
    and a Gaussian profile in magnitude of FWHM ``D = var_timescale`` (dips: symmetric; bursts:
    30 % of the FWHM before the peak, a faster rise than decline). The magnitude is the
    *largest* event profile at each time (overlapping events do not add, so no event exceeds
    ``A``): fainter by it for a dipper (``var_shape = 0``), brighter for a burster (1); every
    ``j_k, v_k`` comes from ``var_seed`` and ``k`` alone. Ranges: ``A`` 0.1-1 mag and ``D``
    1-10 d, both log-uniform; ``P = D x s`` with ``s`` 1.5-8 log-uniform (recurrence ~1.5 d to
    ~11 weeks, never shorter than 1.5 event widths); ``e`` 0.05-0.45 uniform; 60 % dippers.
    Sources: Cody et al. (2014, AJ 147, 82; CSI 2264, NGC 2264 with CoRoT and Spitzer): of the
    disk-bearing stars ~22 % are dippers and ~13 % bursters (hence the 60 % share of dippers
    among the two); dips of 0.1-1 mag lasting ~1-10 d, quasi-periodic (disk-warp rotation,
    periods of days to ~10 d) or aperiodic; Stauffer et al. (2014, AJ 147, 83): accretion
    bursts of up to ~1 mag lasting from about a day to about ten days, recurring on days to
    weeks; Cody &
    Hillenbrand (2018, AJ 156, 71; K2 Upper Sco and rho Oph) find the same morphologies. The
    event-height spread, the profile and the burst asymmetry are a judgment.

``season_drift`` -- a red giant or blended star whose mean level changes between seasons.
    Magnitude = yearly level + long secondary period (LSP) + linear trend. The year ``y =
    floor(t / 365.25)`` (years of the axis's absolute time, so shifted windows see the same
    star) has the level ``sigma g_y``, ``sigma = var_amplitude``, ``g_y`` standard normal from
    ``var_seed`` and ``y`` alone; the level moves to the next year's over the last 60 d of the
    year (a raised-cosine ramp; the survey presets' seasons start at whole years of their
    axis, so the ramp falls in the season gap). The LSP is ``(L / 2) sin 2 pi (t / P +
    var_phase)`` with ``L = var_ratio`` (peak-to-peak, I band) and ``P = var_period``, for half
    the stars (the others have ``L = 0`` and ``P`` NaN); the trend is ``var_width * t / 365.25``
    (mag per year, 0 at time 0 of the axis). Ranges: ``sigma`` 0.01-0.1 mag log-uniform (the
    tens of mmag of season-to-season level changes seen in OGLE-IV baselines of faint stars);
    LSP period 250-1500 d and amplitude 0.05-0.5 mag, both log-uniform; trend uniform in
    +-0.03 mag/yr. Sources: Wood et al. (2004, ApJ 604, 800): LSPs of ~250-1500 d in a
    quarter to a third of pulsating red giants, amplitudes up to ~1 mag in V; Soszyński et al.
    (2007, AcA 57, 201; OGLE LMC): LSP I-band amplitudes mostly 0.1-0.5 mag; Nicholls et al.
    (2009, MNRAS 399, 2063): LSP V amplitudes up to ~1 mag, smaller in the near infrared. The
    yearly-level rms, the ramp, the trend range and the 50 % LSP share are a judgment.

Contaminant mixes (:data:`CONTAMINANT_MIXES`)
---------------------------------------------
``classic`` (the default of every data set): the five kinds of :data:`CLASSIC_KINDS`
equally. ``survey``: cataclysmic, pulsating, eclipsing, long_period and stochastic 0.13 each,
``young_star`` 0.10, ``season_drift`` 0.25. The weights are a judgment: season drifts get the
largest share because every faint real baseline shows year-to-year level changes of tens of
mmag (most stars in the bulge fields are giants or blends) and because long-period and
semi-regular giants are the most numerous variables of the bulge fields (Soszyński et al.
2013, AcA 63, 21: over 230 000 long-period variables towards the bulge); young stars get a
smaller share because an old population dominates the bulge fields and only the foreground
disk holds young stars, whose single bursts and dips still mimic a lensing bump; the classic
kinds keep equal shares among themselves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

VARIABLE_KINDS: tuple[str, ...] = (
    "constant", "cataclysmic", "pulsating", "eclipsing", "long_period", "stochastic",
    "young_star", "season_drift",
)  # fmt: skip
"""Kind names; the index is the code stored in ``variable_kind`` (0 = constant star)."""

VARIABLE_COLUMNS: tuple[str, ...] = (
    "variable_kind", "var_period", "var_amplitude", "var_phase", "var_shape",
    "var_timescale", "var_width", "var_ratio", "var_seed",
)  # fmt: skip
"""Parameter-table columns filled by :func:`draw_variable` (float64 unless in
:data:`VARIABLE_DTYPES`; unused float columns are NaN, an unused ``var_seed`` is 0)."""

VARIABLE_DTYPES: dict[str, np.dtype] = {
    "variable_kind": np.dtype(np.int8),
    "var_seed": np.dtype(np.int64),
}
"""Non-float64 columns of :data:`VARIABLE_COLUMNS` and their dtypes."""

CLASSIC_KINDS: tuple[str, ...] = VARIABLE_KINDS[1:6]
"""The kinds drawn when no weights are given (equally): the ``classic`` mix."""

CONTAMINANT_MIXES: dict[str, dict[str, float] | None] = {
    "classic": None,
    "survey": {"cataclysmic": 0.13, "pulsating": 0.13, "eclipsing": 0.13, "long_period": 0.13,
               "stochastic": 0.13, "young_star": 0.10, "season_drift": 0.25},
}
"""Kind weights of each ``contaminants`` setting of
:class:`microlens.simulation.simulate.SimulationConfig`
(None: the default, :data:`CLASSIC_KINDS` equally). See "Contaminant mixes" in the module
docstring for the ``survey`` weights."""

N_UNIFORMS = 8
"""Uniforms drawn by every call of :func:`draw_variable` (plus one integer seed)."""

SEED_HIGH = 2**62
"""``var_seed`` is drawn from ``rng.integers(0, SEED_HIGH)``."""

# Parameter ranges (low, high); see the module docstring for their sources.
CV_AMPLITUDE = (2.0, 6.0)  # mag, uniform
CV_RECURRENCE = (10.0, 500.0)  # d, log-uniform
CV_RISE = (0.5, 2.0)  # d, log-uniform
CV_DECLINE = (2.0, 20.0)  # d, log-uniform
CV_JITTER = 0.12  # per-outburst timing jitter, fraction of the recurrence (uniform +-)
PULS_PERIOD = (0.05, 50.0)  # d, log-uniform
PULS_AMPLITUDE = (0.05, 1.0)  # mag peak-to-peak, log-uniform
PULS_RISE = (0.1, 0.5)  # rise fraction of the cycle, uniform
ECL_CONTACT_FRACTION = 0.5  # share of contact binaries (judgment)
ECL_PERIOD = (0.3, 30.0)  # d, log-uniform (detached)
ECL_DEPTH = (0.1, 1.5)  # mag, uniform (detached)
ECL_RATIO = (0.0, 1.0)  # secondary / primary depth, uniform (detached)
ECL_WIDTH = (0.02, 0.15)  # eclipse FWHM, fraction of the period, uniform (detached)
CONTACT_PERIOD = (0.25, 1.0)  # d, log-uniform
CONTACT_DEPTH = (0.1, 0.75)  # mag, uniform
CONTACT_RATIO = (0.7, 1.0)  # uniform
LPV_PERIOD = (80.0, 1000.0)  # d, log-uniform
LPV_AMPLITUDE = (0.5, 5.0)  # mag peak-to-peak, uniform
LPV_RISE = (0.3, 0.5)  # rise fraction of the cycle, uniform
LPV_IRREGULARITY = (0.01, 0.1)  # uniform
DRW_TAU = (5.0, 500.0)  # d, log-uniform
DRW_SIGMA = (0.05, 0.5)  # mag rms, log-uniform
YSO_DIPPER_FRACTION = 0.6  # share of dippers among dippers and bursters
YSO_AMPLITUDE = (0.1, 1.0)  # mag, largest dip depth / burst height, log-uniform
YSO_DURATION = (1.0, 10.0)  # d, FWHM of one dip or burst, log-uniform
YSO_SPACING = (1.5, 8.0)  # mean recurrence / duration, log-uniform
YSO_IRREGULARITY = (0.05, 0.45)  # timing jitter, fraction of the recurrence, uniform
YSO_EVENT_FLOOR = 0.3  # each event's amplitude is uniform in [floor, 1] x the largest
YSO_BURST_RISE = 0.3  # share of a burst's FWHM before its peak (dips: 0.5, symmetric)
DRIFT_SEASON_RMS = (0.01, 0.1)  # mag, rms of the yearly mean levels, log-uniform
DRIFT_LSP_FRACTION = 0.5  # share of season-drift stars with a long secondary period
DRIFT_LSP_PERIOD = (250.0, 1500.0)  # d, log-uniform
DRIFT_LSP_AMPLITUDE = (0.05, 0.5)  # mag peak-to-peak (I band), log-uniform
DRIFT_TREND = 0.03  # mag per year, uniform in [-, +]
YEAR_DAYS = 365.25  # length of a season-drift year [d]
DRIFT_RAMP = 60.0  # d, a yearly level changes to the next over this time before the year ends

_EXCESS_AT_01_MAG = 10**0.04 - 1.0  # flux excess 0.1 mag above quiescence
_TAIL_EFOLDS = 40.0  # outburst tails beyond this many e-folds are dropped (exp(-40) ~ 4e-18)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _kind_code(kind) -> int:
    """Code of a kind given by name or code; ValueError naming the valid choices otherwise."""
    if isinstance(kind, str):
        if kind in VARIABLE_KINDS:
            return VARIABLE_KINDS.index(kind)
    elif isinstance(kind, (int, np.integer)) and not isinstance(kind, bool):
        if 0 <= int(kind) < len(VARIABLE_KINDS):
            return int(kind)
    raise ValueError(
        f"unknown variable kind {kind!r}; valid choices: {', '.join(VARIABLE_KINDS)} "
        f"(or their codes 0-{len(VARIABLE_KINDS) - 1})"
    )


def _weights(kind_weights) -> np.ndarray:
    """Normalised cumulative weights over :data:`VARIABLE_KINDS` (last entry exactly 1)."""
    if kind_weights is None:
        w = np.array([1.0 if name in CLASSIC_KINDS else 0.0 for name in VARIABLE_KINDS])
    elif isinstance(kind_weights, Mapping):
        w = np.zeros(len(VARIABLE_KINDS))
        for name, value in kind_weights.items():
            if not isinstance(name, str) or name not in VARIABLE_KINDS:
                raise ValueError(f"unknown variable kind {name!r} in kind_weights; valid "
                                 f"choices: {', '.join(VARIABLE_KINDS)}")
            w[VARIABLE_KINDS.index(name)] = _weight_value(name, value)
    elif isinstance(kind_weights, Sequence | np.ndarray) and not isinstance(kind_weights, str):
        if len(kind_weights) != len(VARIABLE_KINDS):
            raise ValueError(
                f"kind_weights has {len(kind_weights)} entries; give one per kind in the order "
                f"{', '.join(VARIABLE_KINDS)} or a mapping {{kind: weight}}"
            )
        w = np.array([_weight_value(n, v) for n, v in zip(VARIABLE_KINDS, kind_weights,
                                                           strict=True)])
    else:
        raise ValueError(f"kind_weights must be a mapping {{kind: weight}} or a sequence of "
                         f"{len(VARIABLE_KINDS)} weights ({', '.join(VARIABLE_KINDS)}), got "
                         f"{kind_weights!r}")
    total = float(w.sum())
    if not total > 0:
        raise ValueError(f"kind_weights must have a positive sum, got {kind_weights!r}; valid "
                         f"kinds: {', '.join(VARIABLE_KINDS)}")
    cumulative = np.cumsum(w)
    return cumulative / cumulative[-1]


def _weight_value(name: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"weight of {name!r} must be a number, got {value!r}") from None
    if not (math.isfinite(x) and x >= 0):
        raise ValueError(f"weight of {name!r} must be finite and non-negative, got {value!r}")
    return x


# --------------------------------------------------------------------------------------------
# Drawing parameters
# --------------------------------------------------------------------------------------------


def _uniform(u: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return low + u * (high - low)


def _log_uniform(u: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(high, math.exp(math.log(low) + u * (math.log(high) - math.log(low))))


def empty_variable() -> dict:
    """A parameter row of a constant star: kind 0, every float column NaN, ``var_seed`` 0."""
    row = {name: math.nan for name in VARIABLE_COLUMNS}
    row["variable_kind"] = 0
    row["var_seed"] = 0
    return row


def draw_variable(rng: np.random.Generator, span_days: float, kind=None,
                  kind_weights=None) -> dict:
    """Draw the parameters of one (possibly constant) star.

    Always consumes exactly ``rng.random(N_UNIFORMS)`` and one ``rng.integers(0, SEED_HIGH)``,
    whatever the kind and whether the caller uses the result, so that every class of the
    simulator uses the random stream identically. ``u[0]`` chooses the kind (when ``kind`` is
    None), ``u[1:]`` map to the kind's parameters (see the module docstring), the integer is
    ``var_seed`` for the kinds with random elements (0 otherwise).

    Parameters
    ----------
    rng : numpy.random.Generator
        The event's generator.
    span_days : float
        Length of the survey window [days]. Validated only: the parameter priors are
        physical and do not depend on it (a CV with a long recurrence may show no outburst in
        a short window, as in a real survey).
    kind : str or int, optional
        Force this kind (name in :data:`VARIABLE_KINDS` or its code); the random numbers are
        drawn all the same.
    kind_weights : mapping or sequence, optional
        Relative weights of the kinds when ``kind`` is None: ``{name: weight}`` (missing kinds
        weigh 0) or one weight per entry of :data:`VARIABLE_KINDS`. Default: equal weights over
        the five kinds of :data:`CLASSIC_KINDS` (the kinds added later weigh 0, so data sets
        made before them keep their draws); :data:`CONTAMINANT_MIXES` has the named mixes.

    Returns
    -------
    dict
        Every key of :data:`VARIABLE_COLUMNS`: ``variable_kind`` and ``var_seed`` as ints, the
        rest as floats (NaN when unused).
    """
    try:
        span = float(span_days)
    except (TypeError, ValueError):
        raise ValueError(f"span_days must be a positive number, got {span_days!r}") from None
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"span_days must be a positive number, got {span_days!r}")
    code = None if kind is None else _kind_code(kind)
    cumulative = _weights(kind_weights)
    u = rng.random(N_UNIFORMS)
    seed = int(rng.integers(0, SEED_HIGH))
    if code is None:
        code = int(np.searchsorted(cumulative, u[0], side="right"))
    u = [float(x) for x in u]

    row = empty_variable()
    row["variable_kind"] = code
    name = VARIABLE_KINDS[code]
    if name == "cataclysmic":
        rise, decline = _log_uniform(u[4], CV_RISE), _log_uniform(u[5], CV_DECLINE)
        row.update(var_amplitude=_uniform(u[1], CV_AMPLITUDE),
                   var_period=_log_uniform(u[2], CV_RECURRENCE), var_phase=u[3],
                   var_shape=rise / decline, var_timescale=decline, var_seed=seed)
    elif name == "pulsating":
        row.update(var_period=_log_uniform(u[1], PULS_PERIOD),
                   var_amplitude=_log_uniform(u[2], PULS_AMPLITUDE), var_phase=u[3],
                   var_shape=_uniform(u[4], PULS_RISE))
    elif name == "eclipsing":
        if u[5] < ECL_CONTACT_FRACTION:
            row.update(var_shape=1.0, var_period=_log_uniform(u[1], CONTACT_PERIOD),
                       var_amplitude=_uniform(u[2], CONTACT_DEPTH),
                       var_ratio=_uniform(u[4], CONTACT_RATIO))
        else:
            row.update(var_shape=0.0, var_period=_log_uniform(u[1], ECL_PERIOD),
                       var_amplitude=_uniform(u[2], ECL_DEPTH),
                       var_ratio=_uniform(u[4], ECL_RATIO), var_width=_uniform(u[6], ECL_WIDTH))
        row["var_phase"] = u[3]
    elif name == "long_period":
        row.update(var_period=_log_uniform(u[1], LPV_PERIOD),
                   var_amplitude=_uniform(u[2], LPV_AMPLITUDE), var_phase=u[3],
                   var_shape=_uniform(u[4], LPV_RISE),
                   var_ratio=_uniform(u[5], LPV_IRREGULARITY), var_seed=seed)
    elif name == "stochastic":
        row.update(var_timescale=_log_uniform(u[1], DRW_TAU),
                   var_amplitude=_log_uniform(u[2], DRW_SIGMA), var_seed=seed)
    elif name == "young_star":
        duration = _log_uniform(u[2], YSO_DURATION)
        row.update(var_shape=0.0 if u[1] < YSO_DIPPER_FRACTION else 1.0,
                   var_timescale=duration,
                   var_period=duration * _log_uniform(u[3], YSO_SPACING),
                   var_amplitude=_log_uniform(u[4], YSO_AMPLITUDE), var_phase=u[5],
                   var_ratio=_uniform(u[6], YSO_IRREGULARITY), var_seed=seed)
    elif name == "season_drift":
        row.update(var_amplitude=_log_uniform(u[1], DRIFT_SEASON_RMS),
                   var_width=DRIFT_TREND * (2.0 * u[2] - 1.0), var_seed=seed)
        if u[3] < DRIFT_LSP_FRACTION:
            row.update(var_period=_log_uniform(u[4], DRIFT_LSP_PERIOD),
                       var_ratio=_log_uniform(u[5], DRIFT_LSP_AMPLITUDE), var_phase=u[6])
        else:
            row["var_ratio"] = 0.0
    return row


# --------------------------------------------------------------------------------------------
# Light curves
# --------------------------------------------------------------------------------------------


def _hash_uniform(seed: int, k: np.ndarray, stream: int) -> np.ndarray:
    """Uniforms in [0, 1) that depend only on ``(seed, k, stream)`` (splitmix64 finaliser).

    Gives every outburst / cycle ``k`` its own random numbers whatever window is evaluated.
    """
    with np.errstate(over="ignore"):
        x = (np.asarray(k, dtype=np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
             + np.uint64(int(seed) % 2**64) * np.uint64(0xBF58476D1CE4E5B9)
             + np.uint64(stream) * np.uint64(0x94D049BB133111EB) + np.uint64(0x632BE59BD9B4E019))
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _mag_to_flux(dm: np.ndarray) -> np.ndarray:
    return 10.0 ** (-0.4 * dm)


def _cycle_shape(phi: np.ndarray, rise: float) -> np.ndarray:
    """Skewed cycle in [-1, 1]: -1 at phase 0, +1 at ``rise``, smooth extrema, zero mean."""
    up = phi < rise
    return np.where(up, -np.cos(np.pi * phi / rise),
                    np.cos(np.pi * (phi - rise) / (1.0 - rise)))


def _cataclysmic(p, t: np.ndarray) -> np.ndarray:
    period, amp, phase = float(p["var_period"]), float(p["var_amplitude"]), float(p["var_phase"])
    decline = float(p["var_timescale"])
    rise = float(p["var_shape"]) * decline
    peak_excess = 10 ** (0.4 * amp) - 1.0
    efolds = math.log(peak_excess / _EXCESS_AT_01_MAG)
    tau_d, tau_r = decline / efolds, rise / efolds
    seed = int(p["var_seed"])
    cycle = t / period - phase
    k0 = np.floor(cycle).astype(np.int64)
    n_back = math.ceil(_TAIL_EFOLDS * tau_d / period + CV_JITTER) + 1
    n_fwd = math.ceil(_TAIL_EFOLDS * tau_r / period + 1.0 + CV_JITTER) + 1
    excess = np.zeros_like(t)
    for j in range(-n_back, n_fwd + 1):
        k = k0 + j
        jitter = CV_JITTER * (2.0 * _hash_uniform(seed, k, 1) - 1.0)
        d = t - (k + phase + jitter) * period  # time since the peak of outburst k
        arg = np.where(d >= 0, d / tau_d, -d / tau_r)
        excess += np.exp(-np.minimum(arg, 745.0))
    return 1.0 + peak_excess * excess


def _pulsating(p, t: np.ndarray) -> np.ndarray:
    phi = np.mod(t / float(p["var_period"]) + float(p["var_phase"]), 1.0)
    b = _cycle_shape(phi, float(p["var_shape"]))
    return _mag_to_flux(-0.5 * float(p["var_amplitude"]) * b)


def _eclipsing(p, t: np.ndarray) -> np.ndarray:
    phi = np.mod(t / float(p["var_period"]) + float(p["var_phase"]), 1.0)
    depth, ratio = float(p["var_amplitude"]), float(p["var_ratio"])
    if float(p["var_shape"]) >= 0.5:  # contact (W UMa)
        two = 2.0 * np.pi * phi
        envelope = ratio + (1.0 - ratio) * 0.5 * (1.0 + np.cos(two))  # 1 at phi = 0, f at 0.5
        dm = depth * 0.5 * (1.0 + np.cos(2.0 * two)) * envelope
    else:  # detached: Gaussian dips of FWHM var_width at phases 0 and 0.5
        c = 4.0 * math.log(2.0) / float(p["var_width"]) ** 2
        d1 = np.minimum(phi, 1.0 - phi)
        d2 = np.abs(phi - 0.5)
        dm = depth * (np.exp(-c * d1**2) + ratio * np.exp(-c * d2**2))
    return _mag_to_flux(dm)


def _long_period(p, t: np.ndarray) -> np.ndarray:
    period, amp, phase = float(p["var_period"]), float(p["var_amplitude"]), float(p["var_phase"])
    rise, irr, seed = float(p["var_shape"]), float(p["var_ratio"]), int(p["var_seed"])

    def start(k):  # time of the minimum that starts cycle k
        return (k - phase + irr * (2.0 * _hash_uniform(seed, k, 2) - 1.0)) * period

    def level(k, stream, sign):  # magnitude of the minimum (sign +1) or maximum (-1) of cycle k
        return sign * 0.5 * amp * (1.0 + 2.0 * irr * (2.0 * _hash_uniform(seed, k, stream) - 1.0))

    k = np.floor(t / period + phase).astype(np.int64)
    k = np.where(t < start(k), k - 1, k)
    k = np.where(t >= start(k + 1), k + 1, k)
    t0, t1 = start(k), start(k + 1)
    phi = (t - t0) / (t1 - t0)
    low0, high, low1 = level(k, 3, 1.0), level(k, 4, -1.0), level(k + 1, 3, 1.0)
    up = phi < rise
    s_up = 0.5 * (1.0 - np.cos(np.pi * phi / rise))
    s_down = 0.5 * (1.0 - np.cos(np.pi * (phi - rise) / (1.0 - rise)))
    mag = np.where(up, low0 + (high - low0) * s_up, high + (low1 - high) * s_down)
    return _mag_to_flux(mag)


def _stochastic(p, t: np.ndarray) -> np.ndarray:
    tau, sigma = float(p["var_timescale"]), float(p["var_amplitude"])
    order = np.argsort(t, kind="stable")
    ts = t[order]
    z = np.random.default_rng(int(p["var_seed"])).standard_normal(t.size)
    a = np.exp(-np.diff(ts) / tau)
    b = (sigma * np.sqrt(-np.expm1(-2.0 * np.diff(ts) / tau)) * z[1:]).tolist()
    x = [0.0] * t.size
    prev = sigma * float(z[0])
    x[0] = prev
    for i, (ai, bi) in enumerate(zip(a.tolist(), b, strict=True), start=1):
        prev = prev * ai + bi
        x[i] = prev
    mag = np.empty_like(t)
    mag[order] = x
    return _mag_to_flux(mag)


def _young_star(p, t: np.ndarray) -> np.ndarray:
    period, amp, phase = float(p["var_period"]), float(p["var_amplitude"]), float(p["var_phase"])
    duration, irr, seed = float(p["var_timescale"]), float(p["var_ratio"]), int(p["var_seed"])
    burster = float(p["var_shape"]) >= 0.5
    rise = YSO_BURST_RISE if burster else 0.5
    fwhm_to_sigma = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    s_before = 2.0 * rise * duration * fwhm_to_sigma
    s_after = 2.0 * (1.0 - rise) * duration * fwhm_to_sigma
    reach = 10.0 * max(s_before, s_after)  # exp(-50): an event adds nothing beyond this
    k0 = np.floor(t / period - phase).astype(np.int64)
    n = math.ceil(reach / period + irr) + 1
    dm = np.zeros_like(t)
    for j in range(-n, n + 1):
        k = k0 + j
        centre = (k + phase + irr * (2.0 * _hash_uniform(seed, k, 5) - 1.0)) * period
        height = amp * (YSO_EVENT_FLOOR + (1.0 - YSO_EVENT_FLOOR) * _hash_uniform(seed, k, 6))
        d = t - centre
        width = np.where(d < 0, s_before, s_after)
        dm = np.maximum(dm, height * np.exp(-0.5 * (d / width) ** 2))
    return _mag_to_flux(-dm if burster else dm)


def _gaussian(seed: int, k: np.ndarray, stream: int) -> np.ndarray:
    """Standard normal numbers that depend only on ``(seed, k, stream)`` (Box-Muller)."""
    u1 = 1.0 - _hash_uniform(seed, k, stream)  # in (0, 1]
    u2 = _hash_uniform(seed, k, stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def _season_drift(p, t: np.ndarray) -> np.ndarray:
    rms, slope, seed = float(p["var_amplitude"]), float(p["var_width"]), int(p["var_seed"])
    lsp = float(p["var_ratio"])
    year = np.floor(t / YEAR_DAYS).astype(np.int64)
    level = rms * _gaussian(seed, year, 7)
    # the last DRIFT_RAMP days of a year move smoothly to the next year's level
    into_ramp = (t - (year + 1) * YEAR_DAYS + DRIFT_RAMP) / DRIFT_RAMP
    w = np.where(into_ramp > 0, 0.5 * (1.0 - np.cos(np.pi * np.clip(into_ramp, 0.0, 1.0))), 0.0)
    mag = level + w * (rms * _gaussian(seed, year + 1, 7) - level)
    mag = mag + slope * t / YEAR_DAYS
    if lsp > 0:
        mag = mag + 0.5 * lsp * np.sin(2.0 * np.pi * (t / float(p["var_period"])
                                                      + float(p["var_phase"])))
    return _mag_to_flux(mag)


_MODELS = {
    "cataclysmic": _cataclysmic, "pulsating": _pulsating, "eclipsing": _eclipsing,
    "long_period": _long_period, "stochastic": _stochastic, "young_star": _young_star,
    "season_drift": _season_drift,
}  # fmt: skip


def variable_flux(params, times) -> np.ndarray:
    """Noise-free flux, in units of the star's baseline flux, at the given times.

    Parameters
    ----------
    params : mapping or structured-array row
        A row with the keys of :data:`VARIABLE_COLUMNS` (e.g. from :func:`draw_variable`);
        ``variable_kind`` may be a code or a name.
    times : array_like
        Times [days] on any axis (phases refer to its time 0); any order, gaps and repeats
        allowed, 1-D.

    Returns
    -------
    ndarray
        float64 flux, same shape as ``times`` (ones for a constant star). Deterministic: the
        same parameters and times always give the same values.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite")
    code = _kind_code(params["variable_kind"])
    if code == 0 or t.size == 0:
        return np.ones_like(t)
    return _MODELS[VARIABLE_KINDS[code]](params, t)


def describe_variable(params) -> str:
    """One short human-readable line for a legend, e.g. ``eclipsing binary (detached), P =
    2.31 d, depth 0.80 mag``."""
    name = VARIABLE_KINDS[_kind_code(params["variable_kind"])]
    p = {k: params[k] for k in VARIABLE_COLUMNS if k != "variable_kind"}
    if name == "constant":
        return "constant star"
    if name == "cataclysmic":
        decline = float(p["var_timescale"])
        rise = float(p["var_shape"]) * decline
        return (f"dwarf nova, {p['var_amplitude']:.1f} mag outbursts every "
                f"~{p['var_period']:.0f} d (rise {rise:.1f} d, decline {decline:.1f} d)")
    if name == "pulsating":
        return (f"pulsating star, P = {p['var_period']:.3g} d, "
                f"amplitude {p['var_amplitude']:.2f} mag")
    if name == "eclipsing":
        sub = "contact" if float(p["var_shape"]) >= 0.5 else "detached"
        return (f"eclipsing binary ({sub}), P = {p['var_period']:.3g} d, "
                f"depth {p['var_amplitude']:.2f} mag")
    if name == "long_period":
        return (f"long-period variable, P = {p['var_period']:.0f} d, "
                f"amplitude {p['var_amplitude']:.1f} mag")
    if name == "young_star":
        what = "bursts" if float(p["var_shape"]) >= 0.5 else "dips"
        return (f"young star, {p['var_amplitude']:.2f} mag {what} of {p['var_timescale']:.1f} d "
                f"every ~{p['var_period']:.0f} d")
    if name == "season_drift":
        lsp = (f", LSP {p['var_period']:.0f} d of {p['var_ratio']:.2f} mag"
               if float(p["var_ratio"]) > 0 else "")
        return f"season drift, yearly rms {p['var_amplitude']:.3f} mag{lsp}"
    return (f"stochastic (damped random walk), tau = {p['var_timescale']:.3g} d, "
            f"rms {p['var_amplitude']:.2f} mag")
