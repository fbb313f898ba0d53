"""Light-curve simulation: priors, magnification, survey cadence, photometric noise.

Units and conventions (MulensModel names):

* ``t_0`` time of closest approach [days], ``u_0`` impact parameter [Einstein radii],
  ``t_E`` Einstein time [days], ``rho`` source radius [Einstein radii], ``s`` lens separation
  [Einstein radii of the total mass], ``q = m2 / m1`` mass ratio; the binary origin is the
  centre of mass.
* ``alpha_rad`` is the source trajectory angle **in radians** (VBBinaryLensing's unit). It is
  MulensModel's ``alpha`` (which is in degrees) in other units: MulensModel's
  ``alpha = degrees(alpha_rad)``, with the same sign of ``u_0``. The ``_rad`` suffix is there so
  that the parameter table never holds radians under MulensModel's name for degrees.
* Flux is in units of the baseline flux: ``F = f_s * A + (1 - f_s)``, so ``F = 1`` with no event.
* Single lenses are Paczynski's point source and point lens unless
  ``single_lens="physical"`` (survey presets): a uniform finite source of radius ``rho`` with the
  annual parallax ``pi_E_N, pi_E_E`` (``t_0_par = t_0``; binaries get the same parallax), see
  :mod:`microlens.simulation.single_lens`.
* Photometric errors follow photon noise: ``sigma_F = sigma_F0 * sqrt(F)``, where ``sigma_F0`` is
  the baseline error converted from magnitudes. The error preset is the baseline error of a star
  of baseline magnitude ``reference_mag``; brighter or fainter baselines scale as photon noise,
  ``sigma_m ∝ 10**(0.2 (m_base - reference_mag))``.

Scientific validity: every class draws the shared quantities (``t_0, u_0, t_E``, source magnitude,
blending, cadence, noise) from the *same* priors with the *same* random stream, and one detection
cut applies to every class (see :func:`passes_detection_cut`). Each event has its own random
generator derived from ``(seed, index)``, so results do not depend on how the work is split.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from microlens.core.classes import CLASS_NAMES
from microlens.core.settings import from_known_fields
from microlens.simulation.presets import (
    CADENCES,
    ERRORS,
    SURVEYS,
    TOPOLOGIES,
    get_cadence,
    get_error,
    get_survey,
    get_topology,
)
from microlens.simulation.pspl_fit import pspl_magnification  # noqa: F401  (part of this module's API)
from microlens.simulation.single_lens import PARALLAX_COLUMNS, Parallax
from microlens.simulation.survey import alternating_runs
from microlens.simulation.variables import (
    CONTAMINANT_MIXES,
    VARIABLE_COLUMNS,
    VARIABLE_DTYPES,
    draw_variable,
    variable_flux,
)

MAG_TO_FLUX = math.log(10.0) / 2.5
"""d(flux)/flux per magnitude: sigma_F / F = MAG_TO_FLUX * sigma_m."""

MAGNIFICATION_BACKENDS = ("VBBinaryLensing", "VBMicrolensing")

PARAM_COLUMNS: tuple[str, ...] = (
    "label",
    "t_0", "u_0", "t_E",  # shared by all classes (drawn but unused for the no-event class)
    "rho", "s", "q", "alpha_rad",  # binary lens only (NaN otherwise); alpha_rad in radians;
    # rho also for physical single lenses (single_lens="physical")
    *PARALLAX_COLUMNS,  # annual parallax of lensing events with single_lens="physical" (else NaN)
    "source_mag", "f_s", "baseline_mag", "baseline_mag_error",
    "n_obs", "missing_fraction", "peak_significance", "attempts",
    "dchi2_flat", "dchi2_pspl",  # detectability (NaN when switched off)
    # survey presets: the event's field cadence [per hour and site], the factor by which the
    # reported errors are too small, the outliers (thesis: NaN, 1, 0)
    "cadence_per_hour", "error_scale", "n_outliers",
    *VARIABLE_COLUMNS,  # the no-event class's variable star (variable_kind 0: constant)
)  # fmt: skip
"""Columns of the per-event parameter table, in storage order."""

DEFAULT_CADENCE, DEFAULT_ERROR = "cadence_15", "error_005"
"""The cadence and error presets of the ``thesis`` survey when none is named."""

SURVEY_VARIABLE_FRACTION = 0.5
"""Share of the no-event class that is a variable star on a survey preset when
``variable_fraction`` is not given (0 on ``thesis``, which keeps its constant stars)."""


MAG_LIMITS: tuple[float, float] = (10.0, 30.0)
"""Magnitudes that ``reference_mag`` and ``source_mag_range`` may take. Brighter than 10 mag
saturates the detectors of every microlensing survey; fainter than 30 mag lies beyond even
Roman's reach (the survey presets' baselines span 15-24 mag). The error presets scale from
``reference_mag`` as photon noise, which means nothing far outside this range."""

MAX_VBBL_TOL = 0.1
"""Loosest magnification tolerance accepted: VBBinaryLensing's ``Tol``/``RelTol`` is an
accuracy, so 0.1 is already a 10 % error (the default, 1e-3, agrees with 1e-6 to 1e-3)."""

MIN_EPOCHS = 2
"""Fewest nominal epochs of the ``thesis`` survey: :func:`survey_times` keeps at least two
epochs of every curve, which needs two to choose from."""

THESIS_ONLY_FIELDS: tuple[str, ...] = (
    "n_epochs", "survey_days", "time_jitter", "gap_share", "gap_mean_epochs", "t_0_range",
    "source_mag_range", "f_s_range", "reference_mag",
)  # fmt: skip
"""Settings that only the ``thesis`` survey uses: a survey preset sets its own epochs, peak
times, magnitudes, blending and errors (:mod:`microlens.simulation.survey`)."""

INJECTION_FIELDS: tuple[str, ...] = ("windows_per_star", "injection_f_s_range", "min_window_points",
                                     "injected_variables")
"""Settings that only injection into real baselines uses (``baselines`` set;
:mod:`microlens.simulation.injection`)."""

SYNTHETIC_ONLY_FIELDS: tuple[str, ...] = (
    "n_epochs", "time_jitter", "gap_share", "gap_mean_epochs", "source_mag_range", "f_s_range",
    "reference_mag", "variable_fraction", "cadence", "error",
)  # fmt: skip
"""Settings that injection into real baselines does not use: the real windows bring their own
times, magnitudes, errors and variability, and the injected source flux fraction has its own
prior (``injection_f_s_range``). On the ``thesis`` survey ``survey_days`` (the window length)
and ``t_0_range`` still apply."""


class IgnoredSettingWarning(UserWarning):
    """A :class:`SimulationConfig` setting was changed from its default although the chosen
    survey does not use it (see :data:`THESIS_ONLY_FIELDS`)."""


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_number(value) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def _plain(value):
    """A NumPy scalar as the Python number it holds (so that configs stay JSON-ready)."""
    return value.item() if isinstance(value, np.generic) else value


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _check_integer(name: str, value, minimum: int, why: str = "") -> int:
    """An int (NumPy integers too, never a bool or a float) of at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    if value < minimum:
        bound = ("positive" if minimum == 1 else "non-negative" if minimum == 0
                 else f"at least {minimum}")
        raise ValueError(f"{name} must be {bound}, got {value!r}{why}")
    return value


def _check_number(name: str, value, low: float, high: float, *, low_open: bool = False,
                  high_open: bool = False, what: str = ""):
    """A finite real number (NumPy scalars too, never a bool or a string) within bounds."""
    interval = _interval(low, high, low_open, high_open)
    if not _is_number(value):
        raise ValueError(f"{name} must be a number in {interval}{what}, got {_describe(value)}")
    value = _plain(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number in {interval}{what}, got {value!r}")
    if (value < low or (low_open and value == low) or value > high
            or (high_open and value == high)):
        raise ValueError(f"{name} must lie in {interval}{what}, got {value!r}")
    return value


def _check_range(name: str, value, low: float = -math.inf, high: float = math.inf, *,
                 positive: bool = False, what: str = "") -> tuple:
    """A ``(low, high)`` pair of finite numbers, ``low <= high``, within ``[low, high]`` (or
    positive, for a log-uniform prior); returned as a tuple of Python numbers."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray))
            or len(value) != 2 or not all(_is_number(v) for v in value)):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, got {value!r}")
    pair = tuple(_plain(v) for v in value)
    if not all(math.isfinite(v) for v in pair):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if pair[0] > pair[1]:
        raise ValueError(f"{name} has low > high: {value!r}; give (low, high) with low <= high")
    if positive and pair[0] <= 0:
        raise ValueError(f"{name} must be positive (log-uniform prior), got {value!r}")
    if pair[0] < low or pair[1] > high:
        raise ValueError(f"{name} must lie within {_interval(low, high, False, False)}{what}, "
                         f"got {value!r}")
    return pair


def _check_choice(name: str, value, choices, lookup=None, *, optional: bool = False):
    """A string naming one of ``choices`` (``lookup`` raises the preset registry's message)."""
    valid = ", ".join(choices)
    if optional and value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string{' or None' if optional else ''}, got "
                         f"{_describe(value)}; valid choices: {valid}")
    if lookup is not None:
        lookup(value)
    elif value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {valid}")
    return str(value)


NOISE_CHOICES: tuple[str, ...] = ("preset", "fitted")
"""``noise``: the survey preset's own noise model, or one fitted on real stars
(:mod:`microlens.simulation.noise_model`)."""

FITTED_NOISE: tuple[str, ...] = ("ogle",)
"""Survey presets with a noise model fitted on real stars (OGLE-IV EWS baselines)."""

SINGLE_LENS_CHOICES: tuple[str, ...] = ("point", "physical")
"""``single_lens``: Paczynski's point source and point lens, or a uniform finite source with
the annual parallax (:mod:`microlens.simulation.single_lens`; survey presets only)."""

CONTAMINANT_CHOICES: tuple[str, ...] = tuple(CONTAMINANT_MIXES)
"""``contaminants``: the variable-star kinds of the no-event class, ``classic`` (cataclysmic,
pulsating, eclipsing, long-period and stochastic, equally) or ``survey`` (those plus young
stars and season-to-season drifts; :data:`microlens.simulation.variables.CONTAMINANT_MIXES`)."""

LATER_FIELDS: dict[str, object] = {"noise": "preset", "single_lens": "point",
                                   "contaminants": "classic", "injected_variables": 0.0,
                                   "noise_model": None}
"""Settings added after data sets were made, at the values that simulate what a config without
them did: a saved config that lacks one means that value (:func:`microlens.data.store.
generate_dataset` reuses such a set), and a study's data-set key leaves them out at that value
(:meth:`SimulationConfig.canonical_dict`), so sets made before they existed keep their keys."""

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
"""The splits, in the order of ``split_fractions`` (their codes in a data set's ``split``)."""


def _check_split_fractions(value) -> tuple:
    """Three positive finite numbers (train, val, test) that sum to 1."""
    rule = ("split_fractions must be three positive numbers (train, val, test) summing to 1: "
            "every split needs a share, since training validates on val and evaluation reads "
            "test")
    if (isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray))
            or len(value) != 3 or not all(_is_number(v) for v in value)):
        raise ValueError(f"{rule}; got {value!r}")
    shares = tuple(_plain(v) for v in value)
    if not all(math.isfinite(v) and v > 0 for v in shares):
        empty = [name for name, v in zip(("train", "val", "test"), shares, strict=True)
                 if not (math.isfinite(v) and v > 0)]
        raise ValueError(f"{rule}; got {value!r} ({', '.join(empty)} not a positive number)")
    if not math.isclose(sum(shares), 1.0, abs_tol=1e-9):
        raise ValueError(f"{rule}; got {value!r}, which sums to {sum(shares):g}")
    return shares


def _check_folder(name: str, value, what: str = "folder") -> str | None:
    """None, or a non-empty path given as a string (a Path becomes its string, so that configs
    stay JSON-ready). Whether the ``what`` (folder or file) exists is checked when a data set
    is generated: a saved config must open on a machine without it."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a {what} path (a non-empty string) or None, got "
                         f"{_describe(value)}")
    return str(value)


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated data set; stored verbatim in its manifest.

    Parameters
    ----------
    n_per_class : int
        Events per class (no event, PSPL, binary); the set holds ``3 * n_per_class`` events.
    topology : str
        Binary topology preset (see :mod:`microlens.simulation.presets`).
    survey : str
        Observing pattern and photometry: ``thesis`` (the evenly spread epochs below, shaped by
        the cadence and error presets) or a real survey (``ogle``, ``kmtnet``, ``moa``,
        ``roman``: :mod:`microlens.simulation.survey`), which sets cadence and errors itself.
    cadence, error : str or None
        Cadence and error presets of the ``thesis`` survey (None: ``cadence_15``,
        ``error_005``); naming one with another survey is an error.
    variable_fraction : float or None
        Share of the no-event class that is a variable star (:mod:`microlens.simulation.variables`)
        rather than a constant one; None: 0 on ``thesis``, :data:`SURVEY_VARIABLE_FRACTION`
        on the other surveys.
    seed : int
        Data-set seed; event ``i`` uses a generator derived from ``(seed, i)``.
    baselines : str or None
        None: synthetic curves. A folder of real curves in the OGLE EWS layout: events are
        injected into windows of the real stars' baselines instead
        (:mod:`microlens.simulation.injection`;
        ``windows_per_star``, ``injection_f_s_range``, ``min_window_points`` and
        ``injected_variables`` apply). The
        survey still sets the window length, the peak-time placement and the lens priors.

    The other fields are described where they are declared (below).

    Notes
    -----
    Every field is checked when the config is made; bad input raises a ValueError that names
    the field, the value and what is valid:

    * integers are ints (NumPy integers too; never a bool or a float): ``n_per_class >= 1``,
      ``seed >= 0``, ``max_attempts >= 1``, ``detection_min_points >= 1``, and
      ``n_epochs >= 2`` (:data:`MIN_EPOCHS`: the survey keeps at least two epochs per curve);
    * numbers are finite ints or floats (NumPy scalars too; never a bool or a string):
      ``survey_days > 0``, ``0 <= time_jitter < 0.5``, ``0 <= gap_share <= 1``,
      ``gap_mean_epochs >= 1``, ``detection_sigma > 0``, ``0 < vbbl_tol <= 0.1``
      (:data:`MAX_VBBL_TOL`), ``reference_mag`` within :data:`MAG_LIMITS` (10-30 mag),
      ``variable_fraction`` in [0, 1] or None;
    * ranges are ``(low, high)`` pairs of finite numbers with ``low <= high``: ``t_0_range``
      within [0, 1], ``u_0_range`` non-negative, ``t_E_range`` and ``rho_range`` positive
      (log-uniform priors), ``source_mag_range`` within :data:`MAG_LIMITS`, ``f_s_range``
      within (0, 1];
    * ``split_fractions`` are three positive numbers summing to 1 (every split gets a share;
      the split is stratified and rounded per class, so a very small set may still leave a
      split without events of some class: a few events per class need ``n_per_class`` of at
      least about ``1 / min(split_fractions)``);
    * names are strings among the presets' choices (``topology``, ``survey``,
      ``magnification_backend``, ``noise``, ``single_lens``, ``contaminants``; ``cadence``
      and ``error`` may be None), ``detectability`` is True or False;
    * combinations: on the ``thesis`` survey ``detection_min_points <= n_epochs`` (a curve has
      at most ``n_epochs`` observations); on a survey preset ``detection_min_points`` is at
      most the preset's most observations per curve, ``cadence`` and ``error`` must be
      None, and a setting of :data:`THESIS_ONLY_FIELDS` changed from its default has no
      effect, which an :class:`IgnoredSettingWarning` says (it is not an error, so studies
      that set such fields for every survey keep running); ``single_lens="physical"`` needs a
      survey preset (real dates for the parallax) and synthetic curves (no ``baselines``).
    * injection (``baselines`` a non-empty path; whether the folder exists is checked when a
      data set is generated): ``windows_per_star >= 1``, ``min_window_points >= 2`` and at
      least ``detection_min_points``, ``injection_f_s_range`` within (0, 1] (log-uniform);
      the settings of :data:`SYNTHETIC_ONLY_FIELDS` (and on a survey preset ``survey_days``
      and ``t_0_range``) have no effect there, and those of :data:`INJECTION_FIELDS` none on
      synthetic curves: changed from their defaults, an :class:`IgnoredSettingWarning` says so.

    The checks bound what a config may say, not whether every event can pass the detection
    cut: priors that rarely make a detectable event still fail at generation, naming the
    event and ``max_attempts``.
    """

    n_per_class: int = 1000  # events per class (no event, PSPL, binary)
    topology: str = "baseline"  # binary topology preset: distinct, planetary, stellar, baseline
    cadence: str | None = None  # thesis only; None: cadence_15 (cadence_05, cadence_15,
    #   cadence_30, cadence_50)
    error: str | None = None  # thesis only; None: error_005 (error_003, error_005, error_010,
    #   error_015)
    seed: int = 0  # data-set seed (same seed and config: same events)
    survey: str = "thesis"  # thesis (cadence and error presets), ogle, kmtnet, moa, roman
    variable_fraction: float | None = None  # share of no-event stars that vary, 0-1 (None:
    #   thesis 0, surveys 0.5)
    n_epochs: int = 1000  # thesis only: nominal epochs per curve before missing ones are removed
    survey_days: float = 200.0  # length of the survey window [days]
    time_jitter: float = 0.3  # epoch jitter as a fraction of the nominal spacing (irregularity)
    gap_share: float = 0.5  # share of the missing epochs that fall in contiguous gaps (weather)
    gap_mean_epochs: float = 8.0  # mean length of a contiguous gap [epochs]
    t_0_range: tuple[float, float] = (0.15, 0.85)  # t_0 prior, fraction of the survey window
    u_0_range: tuple[float, float] = (0.0, 1.0)  # uniform prior on u_0 [Einstein radii]
    t_E_range: tuple[float, float] = (5.0, 80.0)  # log-uniform prior on t_E [days]
    rho_range: tuple[float, float] = (1e-4, 1e-2)  # log-uniform prior on rho [Einstein radii]
    source_mag_range: tuple[float, float] = (18.0, 21.0)  # uniform prior on source magnitude
    f_s_range: tuple[float, float] = (0.1, 1.0)  # uniform prior on the source flux fraction f_s
    reference_mag: float = 19.0  # baseline magnitude at which the error preset holds
    detection_sigma: float = 3.0  # a point is significant if its excess is >= this many sigma
    detection_min_points: int = 5  # ... and an event needs at least this many such points
    max_attempts: int = 200  # redraws allowed for one event to pass the detection cut
    vbbl_tol: float = 1e-3  # VBBinaryLensing Tol and RelTol (absolute and relative accuracy)
    magnification_backend: str = "VBBinaryLensing"  # or "VBMicrolensing" (same API and numbers)
    detectability: bool = True  # fit flat and PSPL models to every event (off: faster)
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / val / test
    baselines: str | None = None  # injection: EWS-layout folder of real curves whose
    #   baselines carry the events (relative: from the project root); None: synthetic curves
    windows_per_star: int = 4  # injection: most windows of one star in each class
    injection_f_s_range: tuple[float, float] = (0.1, 1.0)  # injection: log-uniform prior on
    #   the injected source's share of the baseline flux
    min_window_points: int = 50  # injection: fewest baseline points a window holds
    noise: str = "preset"  # survey presets: preset (its white noise, error underestimate and
    #   outliers) or fitted (real stars' noise, microlens.simulation.noise_model; ogle only)
    noise_model: str | None = None  # fitted noise: a model file written by python -m
    #   microlens.simulation.noise_model (e.g. fitted on the training stars; relative: from the
    #   project root); None: the shipped model
    single_lens: str = "point"  # point (Paczynski's curve) or physical (survey presets: finite
    #   source and annual parallax, microlens.simulation.single_lens; binaries get the parallax too)
    contaminants: str = "classic"  # variable stars of the no-event class: classic (dwarf novae,
    #   pulsators, eclipses, Miras, random walks) or survey (plus young stars and season drifts)
    injected_variables: float = 0.0  # injection: share of the no-event windows that carry a
    #   simulated variable star (the contaminants mix) on the real star's flux, 0-1

    def __post_init__(self) -> None:
        """Check every field (see the class docstring): a ValueError names the field, the
        value and what is valid. NumPy scalars become the Python numbers they hold and lists
        become tuples, so that configs stay JSON-ready and equal configs compare equal."""
        checked = {
            "n_per_class": _check_integer("n_per_class", self.n_per_class, 1),
            "seed": _check_integer("seed", self.seed, 0),
            "n_epochs": _check_integer(
                "n_epochs", self.n_epochs, MIN_EPOCHS,
                "; the thesis survey keeps at least two epochs of every curve"),
            "detection_min_points": _check_integer(
                "detection_min_points", self.detection_min_points, 1,
                ": it counts the significant points an event needs to pass the detection cut"),
            "max_attempts": _check_integer("max_attempts", self.max_attempts, 1),
            "topology": _check_choice("topology", self.topology, TOPOLOGIES, get_topology),
            "survey": _check_choice("survey", self.survey, SURVEYS, get_survey),
            "cadence": _check_choice("cadence", self.cadence, CADENCES, get_cadence,
                                     optional=True),
            "error": _check_choice("error", self.error, ERRORS, get_error, optional=True),
            "magnification_backend": _check_choice(
                "magnification_backend", self.magnification_backend, MAGNIFICATION_BACKENDS),
            "variable_fraction": None if self.variable_fraction is None else _check_number(
                "variable_fraction", self.variable_fraction, 0.0, 1.0,
                what=" (share of the no-event class that is a variable star) or None"),
            "survey_days": _check_number("survey_days", self.survey_days, 0.0, math.inf,
                                         low_open=True, high_open=True, what=" days"),
            "time_jitter": _check_number(
                "time_jitter", self.time_jitter, 0.0, 0.5, high_open=True,
                what=" (a fraction of the epoch spacing; below 0.5 keeps epochs ordered)"),
            "gap_share": _check_number("gap_share", self.gap_share, 0.0, 1.0,
                                       what=" (share of the missing epochs in gaps)"),
            "gap_mean_epochs": _check_number(
                "gap_mean_epochs", self.gap_mean_epochs, 1.0, math.inf, high_open=True,
                what=" epochs (a gap lasts at least one epoch)"),
            "reference_mag": _check_number("reference_mag", self.reference_mag, *MAG_LIMITS,
                                           what=" mag"),
            "detection_sigma": _check_number("detection_sigma", self.detection_sigma, 0.0,
                                             math.inf, low_open=True, high_open=True),
            "vbbl_tol": _check_number(
                "vbbl_tol", self.vbbl_tol, 0.0, MAX_VBBL_TOL, low_open=True,
                what=" (the magnification's absolute and relative accuracy)"),
            "t_0_range": _check_range("t_0_range", self.t_0_range, 0.0, 1.0,
                                      what=" (a fraction of the survey window)"),
            "u_0_range": _check_range("u_0_range", self.u_0_range, 0.0,
                                      what=" (Einstein radii, non-negative)"),
            "t_E_range": _check_range("t_E_range", self.t_E_range, positive=True),
            "rho_range": _check_range("rho_range", self.rho_range, positive=True),
            "source_mag_range": _check_range("source_mag_range", self.source_mag_range,
                                             *MAG_LIMITS, what=" mag"),
            "f_s_range": _check_range("f_s_range", self.f_s_range, positive=True),
            "split_fractions": _check_split_fractions(self.split_fractions),
            "baselines": _check_folder("baselines", self.baselines),
            "noise_model": _check_folder("noise_model", self.noise_model, "file"),
            "windows_per_star": _check_integer("windows_per_star", self.windows_per_star, 1),
            "injection_f_s_range": _check_range("injection_f_s_range", self.injection_f_s_range,
                                                positive=True),
            "min_window_points": _check_integer(
                "min_window_points", self.min_window_points, MIN_EPOCHS,
                ": a window needs two points to be a light curve"),
            "noise": _check_choice("noise", self.noise, NOISE_CHOICES),
            "single_lens": _check_choice("single_lens", self.single_lens, SINGLE_LENS_CHOICES),
            "contaminants": _check_choice("contaminants", self.contaminants,
                                          CONTAMINANT_CHOICES),
            "injected_variables": _check_number(
                "injected_variables", self.injected_variables, 0.0, 1.0,
                what=" (share of the no-event windows that carry a simulated variable star)"),
        }
        if checked["injection_f_s_range"][1] > 1:
            raise ValueError(f"injection_f_s_range must lie in (0, 1] (the injected source's "
                             f"share of the baseline flux), got {self.injection_f_s_range!r}")
        if checked["f_s_range"][1] > 1:
            raise ValueError(f"f_s_range must lie in (0, 1] (the source's share of the "
                             f"baseline flux), got {self.f_s_range!r}")
        if not isinstance(self.detectability, (bool, np.bool_)):
            raise ValueError(f"detectability must be True or False, got "
                             f"{_describe(self.detectability)}")
        checked["detectability"] = bool(self.detectability)
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        self._check_combinations()

    def _check_combinations(self) -> None:
        survey = get_survey(self.survey)
        if self.noise == "fitted" and (self.survey not in FITTED_NOISE or self.baselines):
            raise ValueError(
                f"noise='fitted' gives a survey preset's curves the noise of real stars of "
                f"that survey, fitted for {', '.join(FITTED_NOISE)}; survey {self.survey!r}"
                f"{' with baselines (real curves bring their own noise)' if self.baselines else ''}"
                " has none: use noise='preset'")
        if self.noise_model is not None and self.noise != "fitted":
            raise ValueError(f"noise_model={self.noise_model!r} is read only with "
                             f"noise='fitted', got noise={self.noise!r}: set noise='fitted' or "
                             "noise_model=None")
        if self.single_lens == "physical" and (survey.is_thesis or self.baselines is not None):
            where = (f"injection into real baselines (baselines={self.baselines!r}) draws "
                     "point lenses only" if self.baselines is not None else
                     f"survey {self.survey!r} has abstract days, and the annual parallax needs "
                     "real dates: use a survey preset ("
                     + ", ".join(n for n in SURVEYS if not get_survey(n).is_thesis) + ")")
            raise ValueError(f"single_lens='physical' (finite source and annual parallax): "
                             f"{where}; or single_lens='point' (valid choices: "
                             f"{', '.join(SINGLE_LENS_CHOICES)})")
        if self.baselines is not None:
            self._check_injection(survey)
            return
        changed = self._changed(INJECTION_FIELDS)
        if changed:
            warnings.warn(
                f"{', '.join(changed)} only appl{'ies' if len(changed) == 1 else 'y'} to "
                "injection into real baselines, and baselines is None (synthetic curves): "
                f"leave {'it' if len(changed) == 1 else 'them'} at the default or set "
                "baselines to a folder of real curves", IgnoredSettingWarning, stacklevel=4)
        if not survey.is_thesis:
            named = [f"{k}={v!r}" for k, v in (("cadence", self.cadence), ("error", self.error))
                     if v is not None]
            if named:
                raise ValueError(
                    f"survey {self.survey!r} sets cadence and errors itself, so it cannot be "
                    f"combined with {' and '.join(named)}; leave cadence and error unset "
                    "(None), or use survey='thesis' with the cadence and error presets")
            from microlens.simulation.survey import max_points

            most = max_points(survey)
            if self.detection_min_points > most:
                raise ValueError(
                    f"detection_min_points={self.detection_min_points} exceeds the "
                    f"{most} observations survey {self.survey!r} can ever give a curve, so no "
                    f"event could pass the detection cut; give detection_min_points <= {most}")
            changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                       if f.name in THESIS_ONLY_FIELDS and getattr(self, f.name) != f.default]
            if changed:
                warnings.warn(
                    f"survey {self.survey!r} sets its own epochs, peak times, magnitudes, "
                    f"blending and errors, so {', '.join(changed)} ha"
                    f"{'s' if len(changed) == 1 else 've'} no effect; leave "
                    f"{'it' if len(changed) == 1 else 'them'} at the default or use "
                    "survey='thesis'", IgnoredSettingWarning, stacklevel=4)
        elif self.detection_min_points > self.n_epochs:
            raise ValueError(
                f"detection_min_points={self.detection_min_points} exceeds "
                f"n_epochs={self.n_epochs}: a curve has at most n_epochs observations, so no "
                "event could pass the detection cut; give n_epochs >= detection_min_points "
                "(or lower detection_min_points)")

    def _changed(self, names) -> list[str]:
        return [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                if f.name in names and getattr(self, f.name) != f.default]

    def _check_injection(self, survey) -> None:
        """Injection into real baselines: the real windows bring times, magnitudes and errors,
        so the synthetic settings have no effect (a warning), and a window must be able to
        hold the points the detection cut asks for (an error)."""
        if not survey.is_thesis:
            named = [f"{k}={v!r}" for k, v in (("cadence", self.cadence), ("error", self.error))
                     if v is not None]
            if named:
                raise ValueError(
                    f"survey {self.survey!r} sets cadence and errors itself, so it cannot be "
                    f"combined with {' and '.join(named)}; leave cadence and error unset (None)")
        if self.detection_min_points > self.min_window_points:
            raise ValueError(
                f"detection_min_points={self.detection_min_points} exceeds "
                f"min_window_points={self.min_window_points}: a window of a real baseline may "
                "hold only min_window_points points, too few to pass the detection cut; give "
                "min_window_points >= detection_min_points")
        ignored = SYNTHETIC_ONLY_FIELDS if survey.is_thesis else (
            *SYNTHETIC_ONLY_FIELDS, "survey_days", "t_0_range")
        changed = self._changed(ignored)
        if changed:
            warnings.warn(
                f"injection into real baselines (baselines={self.baselines!r}) takes times, "
                f"magnitudes, errors and variability from the real curves, so "
                f"{', '.join(changed)} ha{'s' if len(changed) == 1 else 've'} no effect; "
                f"leave {'it' if len(changed) == 1 else 'them'} at the default or set "
                "baselines=None", IgnoredSettingWarning, stacklevel=5)

    @property
    def is_injection(self) -> bool:
        """True when events are injected into real baselines (``baselines`` set)."""
        return self.baselines is not None

    @property
    def cadence_preset(self) -> str:
        """The cadence preset in force (``thesis`` survey only)."""
        return self.cadence or DEFAULT_CADENCE

    @property
    def error_preset(self) -> str:
        """The error preset in force (``thesis`` survey only)."""
        return self.error or DEFAULT_ERROR

    @property
    def variable_share(self) -> float:
        """Share of the no-event class that is a variable star (``variable_fraction``
        resolved)."""
        if self.variable_fraction is not None:
            return float(self.variable_fraction)
        return 0.0 if get_survey(self.survey).is_thesis else SURVEY_VARIABLE_FRACTION

    @property
    def reference_epoch(self) -> float:
        """Full Julian date of time 0 of the simulated times (0.0: the ``thesis`` survey's
        abstract days)."""
        survey = get_survey(self.survey)
        if survey.is_thesis or self.baselines is not None:  # injection: days since the window
            return 0.0
        return float(survey.reference_epoch)

    @property
    def n_events(self) -> int:
        """Total number of events, ``3 * n_per_class``."""
        return len(CLASS_NAMES) * self.n_per_class

    def canonical_dict(self) -> dict:
        """:meth:`to_dict` with the presets in force written out (``cadence``/``error`` of the
        ``thesis`` survey, ``variable_fraction``) and :data:`LATER_FIELDS` at their old values
        left out: two configs that simulate the same events give the same dict (a study's
        data-set key)."""
        out = self.to_dict()
        thesis = get_survey(self.survey).is_thesis
        out["cadence"] = self.cadence_preset if thesis else None
        out["error"] = self.error_preset if thesis else None
        out["variable_fraction"] = self.variable_share
        for name, value in LATER_FIELDS.items():
            if out[name] == value:
                del out[name]
        return out

    def to_dict(self) -> dict:
        """A JSON-serialisable dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict, *, warn_ignored: bool = True) -> SimulationConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error that names the valid keys.

        Lists (JSON's arrays) become tuples. ``warn_ignored=False`` leaves out the
        :class:`IgnoredSettingWarning` (a saved config, warned about when it was made).
        """
        if not isinstance(data, dict):
            raise ValueError(f"simulation settings must be a dict of field values, got "
                             f"{_describe(data)}")
        if warn_ignored:
            return from_known_fields(cls, data, "simulation setting(s)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IgnoredSettingWarning)
            return from_known_fields(cls, data, "simulation setting(s)")

    @classmethod
    def _unchecked(cls, data: dict) -> SimulationConfig:
        """A config holding ``data`` as it is, without the checks (a saved manifest that
        today's checks refuse; :func:`microlens.data.store.open_dataset` warns about it)."""
        config = object.__new__(cls)
        for f in fields(cls):
            value = data.get(f.name, f.default)
            object.__setattr__(config, f.name, tuple(value) if isinstance(value, list) else value)
        return config


# --------------------------------------------------------------------------------------------
# Magnification
# --------------------------------------------------------------------------------------------


_ENGINES: dict[tuple[str, float], object] = {}


def _engine(tol: float, backend: str = "VBBinaryLensing"):
    """One VBBinaryLensing (or VBMicrolensing) instance per process and tolerance."""
    key = (backend, float(tol))
    if key not in _ENGINES:
        if backend == "VBBinaryLensing":
            import VBBinaryLensing

            engine = VBBinaryLensing.VBBinaryLensing()
        elif backend == "VBMicrolensing":
            import VBMicrolensing

            engine = VBMicrolensing.VBMicrolensing()
        else:
            raise ValueError(
                f"unknown magnification backend {backend!r}; valid: {MAGNIFICATION_BACKENDS}"
            )
        engine.Tol = float(tol)
        engine.RelTol = float(tol)
        _ENGINES[key] = engine
    return _ENGINES[key]


def binary_light_curve(
    t: np.ndarray,
    t_0: float,
    u_0: float,
    t_E: float,
    rho: float,
    s: float,
    q: float,
    alpha_rad: float,
    *,
    tol: float = 1e-3,
    backend: str = "VBBinaryLensing",
    parallax: Parallax | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-source binary-lens magnification and source trajectory.

    Uses ``BinaryLightCurve([ln s, ln q, u_0, alpha_rad, ln rho, ln t_E, t_0], t)`` with
    ``Tol = RelTol = tol``. Coordinates are centred on the lens centre of mass, the lenses on
    the x-axis (lens 1 of mass ``1/(1+q)`` at negative x). With a ``parallax``
    (:class:`microlens.simulation.single_lens.Parallax`) the trajectory is the geocentric one,
    shifted along and across the direction of motion as MulensModel shifts it, and ``BinaryMag2``
    gives the magnification point by point on it (as ``BinaryLightCurve`` does on the straight
    line: with a zero parallax the same numbers to ~1e-9 relative, the solver's state carried
    from call to call).

    Parameters
    ----------
    t : ndarray
        Times [days].
    t_0, u_0, t_E, rho, s, q : float
        As in the module docstring (days and Einstein radii; ``q = m2 / m1``).
    alpha_rad : float
        Trajectory angle [radians]; MulensModel's ``alpha`` [degrees] is
        ``math.degrees(alpha_rad)``.
    tol : float
        VBBinaryLensing ``Tol`` and ``RelTol``.
    backend : {'VBBinaryLensing', 'VBMicrolensing'}
    parallax : Parallax or None
        The annual parallax (``t_0_par = t_0``; ``t`` in days since its ``reference_epoch``).

    Returns
    -------
    magnification, y1, y2 : ndarray
        Magnification and source position [Einstein radii] at each time.
    """
    engine = _engine(tol, backend)
    if parallax is not None:
        from microlens.simulation.single_lens import binary_source_position, trajectory

        y1, y2 = binary_source_position(*trajectory(t, t_0, u_0, t_E, parallax), alpha_rad)
        s, q, rho = float(s), float(q), float(rho)
        mag = np.fromiter((engine.BinaryMag2(s, q, a, b, rho)
                           for a, b in zip(y1.tolist(), y2.tolist(), strict=True)),
                          np.float64, y1.size)
        return mag, y1, y2
    params = [math.log(s), math.log(q), u_0, alpha_rad, math.log(rho), math.log(t_E), t_0]
    mag, y1, y2 = engine.BinaryLightCurve(params, np.asarray(t, dtype=np.float64))
    return np.asarray(mag), np.asarray(y1), np.asarray(y2)


def binary_magnification(t, t_0, u_0, t_E, rho, s, q, alpha_rad, *, tol=1e-3,
                         backend="VBBinaryLensing", parallax=None) -> np.ndarray:
    """Finite-source binary-lens magnification (see :func:`binary_light_curve`; ``alpha_rad``
    in radians)."""
    return binary_light_curve(t, t_0, u_0, t_E, rho, s, q, alpha_rad, tol=tol,
                              backend=backend, parallax=parallax)[0]


def caustics(s: float, q: float, backend: str = "VBBinaryLensing") -> list[np.ndarray]:
    """Caustic curves of a binary lens, each an ``(n, 2)`` array in centre-of-mass coordinates."""
    return [np.column_stack(c) for c in _engine(1e-3, backend).Caustics(float(s), float(q))]


def blended_flux(magnification: np.ndarray, f_s: float) -> np.ndarray:
    """Flux in baseline units of a source of flux fraction ``f_s`` magnified by
    ``magnification``, with the unmagnified blend: ``f_s * A + (1 - f_s)``."""
    return f_s * magnification + (1.0 - f_s)


def model_flux(params: dict, t: np.ndarray, *, tol: float = 1e-3,
               backend: str = "VBBinaryLensing") -> np.ndarray:
    """Noise-free flux (baseline units) of an event from its parameter-table row.

    Parameters
    ----------
    params : mapping
        Needs ``label`` and the parameters that class uses (``t_0, u_0, t_E, f_s`` and, for
        binaries, ``rho, s, q, alpha_rad``; ``alpha_rad`` in radians). A single lens with a
        finite ``rho`` has a uniform finite source; a lensing event with finite
        :data:`~microlens.simulation.single_lens.PARALLAX_COLUMNS` has the annual parallax
        (``single_lens="physical"``); rows without them (NaN, or missing in older data sets)
        are point lenses on a straight line, as before.
    t : ndarray
        Times [days since the row's ``reference_epoch``].
    tol, backend :
        The magnification's tolerance and engine (the data set's ``vbbl_tol`` and
        ``magnification_backend``).
    """
    label = int(params["label"])
    t = np.asarray(t, dtype=np.float64)
    if label == 0:
        if "variable_kind" in params and int(params["variable_kind"]) != 0:
            return variable_flux(params, t)
        return np.ones_like(t)
    parallax = Parallax.from_params(params)
    if label == 1:
        rho = _optional(params, "rho")
        if parallax is None and not math.isfinite(rho):
            mag = pspl_magnification(t, params["t_0"], params["u_0"], params["t_E"])
        else:
            from microlens.simulation.single_lens import single_lens_magnification

            mag = single_lens_magnification(t, params["t_0"], params["u_0"], params["t_E"], rho,
                                            parallax, tol=tol, backend=backend)
    elif label == 2:
        mag = binary_magnification(t, params["t_0"], params["u_0"], params["t_E"], params["rho"],
                                   params["s"], params["q"], params["alpha_rad"], tol=tol,
                                   backend=backend, parallax=parallax)
    else:
        raise ValueError(f"unknown label {label!r}; valid: 0 (flat), 1 (pspl), 2 (binary)")
    return blended_flux(mag, float(params["f_s"]))


def _optional(params, name: str) -> float:
    """Column ``name`` of a parameter row, NaN where the row has no such column (a data set
    made before the column existed)."""
    try:
        return float(params[name])
    except (KeyError, ValueError, IndexError):
        return math.nan


# --------------------------------------------------------------------------------------------
# Survey sampling and noise
# --------------------------------------------------------------------------------------------


def survey_times(cfg: SimulationConfig, rng: np.random.Generator) -> np.ndarray:
    """Irregular observation times with missing epochs removed.

    Nominal epochs are spread evenly over the survey window and jittered; missing epochs come
    partly from contiguous gaps (an alternating renewal process with geometric run lengths) and
    partly from isolated drops, so that on average ``missing_fraction`` of the epochs are lost.
    """
    n = cfg.n_epochs
    dt = cfg.survey_days / n
    nominal = (np.arange(n) + 0.5) * dt
    times = nominal + rng.uniform(-cfg.time_jitter, cfg.time_jitter, n) * dt

    missing = get_cadence(cfg.cadence_preset).missing_fraction
    f_gap = cfg.gap_share * missing
    f_iso = 1.0 - (1.0 - missing) / (1.0 - f_gap) if f_gap < 1 else 0.0
    keep = rng.random(n) >= f_iso
    if f_gap > 0:
        keep &= ~_gap_mask(n, f_gap, cfg.gap_mean_epochs, rng)
    if keep.sum() < 2:  # degenerate draws at extreme settings: keep the survey usable
        keep[rng.choice(n, 2, replace=False)] = True
    return times[keep]


def _gap_mask(n: int, coverage: float, mean_gap: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of epochs inside gaps: alternating observed runs and gaps, geometric lengths."""
    mean_run = mean_gap * (1.0 - coverage) / coverage
    n_pairs = int(2 * n / (mean_run + mean_gap)) + 8
    runs = rng.geometric(1.0 / max(mean_run, 1.0), n_pairs)
    gaps = rng.geometric(1.0 / mean_gap, n_pairs)
    start_in_gap = rng.random() < coverage
    return alternating_runs(n, start_in_gap, gaps, runs)


def baseline_error_mag(cfg: SimulationConfig, baseline_mag: float) -> float:
    """Baseline photometric error [mag] for an event of the given baseline magnitude."""
    scale = 10 ** (0.2 * (baseline_mag - cfg.reference_mag))
    return get_error(cfg.error_preset).baseline_mag_error * scale


def flux_errors(true_flux: np.ndarray, baseline_mag_error: float) -> np.ndarray:
    """Photon-noise flux errors ``sigma_F0 * sqrt(F)``, ``sigma_F0`` from the baseline error."""
    return MAG_TO_FLUX * baseline_mag_error * np.sqrt(true_flux)


def passes_detection_cut(signal_flux: np.ndarray, errors: np.ndarray,
                         cfg: SimulationConfig) -> tuple[bool, float]:
    """The one detection cut, identical for every class.

    An event is kept when at least ``detection_min_points`` observed epochs of the noise-free
    single-lens signal exceed the baseline by ``detection_sigma`` times their error. Returns the
    decision and the peak significance ``max((F - 1) / sigma)`` of that signal.
    """
    significance = (signal_flux - 1.0) / errors
    n_significant = int(np.count_nonzero(significance >= cfg.detection_sigma))
    return n_significant >= cfg.detection_min_points, float(significance.max(initial=0.0))


# --------------------------------------------------------------------------------------------
# One event
# --------------------------------------------------------------------------------------------


@dataclass
class SimulatedEvent:
    """One simulated light curve with its parameters (see :data:`PARAM_COLUMNS`)."""

    times: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    clean_flux: np.ndarray
    params: dict = field(default_factory=dict)
    # injection: the real star and window (microlens.simulation.injection)
    origin: dict | None = None

    def __post_init__(self) -> None:
        """The parallax columns that a maker leaves out are NaN (injection into real
        baselines draws point lenses only)."""
        for name in PARALLAX_COLUMNS:
            self.params.setdefault(name, math.nan)


def event_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of event ``index`` of a data set with seed ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(index),)))


_INJECTED_ELSEWHERE = ("this config injects events into real baselines (baselines is set): "
                       "microlens.simulate_event / microlens.simulation.events.simulate_event make "
                       "its "
                       "events (microlens.simulation.injection), microlens.simulation.simulate "
                       "only synthetic ones")


def event_label(index: int) -> int:
    """Class of event ``index``: classes interleave (0, 1, 2, 0, ...), every prefix balanced."""
    return int(index) % len(CLASS_NAMES)


def simulate_event(cfg: SimulationConfig, index: int) -> SimulatedEvent:
    """Simulate event ``index`` of the data set described by ``cfg`` (deterministic).

    Every class consumes the random stream identically: the shared parameters, the binary
    parameters, the variable star, the cadence and the noise are drawn in the same order
    whatever the class. The detection cut is evaluated on the single-lens signal that the
    shared parameters imply, for every class alike, so the selected shared parameters have one
    distribution for all classes. (A cut on each event's own curve lets caustics pass binaries
    at larger ``u_0``: measured on stellar binaries at 0.15 mag, a classifier on the shared
    parameters alone then reached 37 % instead of 33 %.) How visible each event's own signal
    is, is recorded by the detectability columns instead.

    On a survey preset (:mod:`microlens.simulation.survey`) the baseline magnitude, blending, field
    cadence and error underestimate come from the survey, the peak ``t_0`` may fall outside
    the observations (partially covered events), the errors follow the survey's error curve at
    the current magnitude, a few points are outliers, and the reported errors are the true ones
    divided by ``error_scale``. The variable star is drawn only when ``variable_share > 0`` (so
    ``thesis`` sets without variables keep their random stream, event for event). The
    ``contaminants`` mix only chooses which kind the variable star's random numbers select: it
    changes no other draw.

    With ``single_lens="physical"`` every event also draws an annual parallax ``pi_E`` at each
    attempt, from a stream of its own (:func:`microlens.simulation.single_lens.parallax_rng`: the
    main stream stays as with ``"point"``), and the single-lens signal of the detection cut, which
    is also the single-lens class's curve, is that of a uniform finite source of the drawn
    ``rho`` on the parallax-shifted trajectory; binaries get the same parallax.
    """
    if cfg.baselines is not None:
        raise ValueError(_INJECTED_ELSEWHERE)
    label = event_label(index)
    rng = event_rng(cfg.seed, index)
    topo = get_topology(cfg.topology)
    survey = get_survey(cfg.survey)
    with_variables = cfg.variable_share > 0
    mix = CONTAMINANT_MIXES[cfg.contaminants]
    physical = cfg.single_lens == "physical"
    if physical:
        from microlens.simulation.single_lens import (
            draw_parallax,
            field_centre,
            parallax_rng,
            single_lens_magnification,
        )

        parallax_stream = parallax_rng(cfg.seed, index)
        sky = (*field_centre(cfg.survey), cfg.reference_epoch)
    parallax = None
    for attempt in range(1, cfg.max_attempts + 1):  # noqa: B007 (recorded after the loop)
        if survey.is_thesis:
            draws = _thesis_draws(cfg, topo, rng)
        else:
            draws = _survey_draws(cfg, survey, topo, rng)
        variable = (draw_variable(rng, _span(draws["times"]), kind_weights=mix)
                    if with_variables else _no_variable())
        is_variable = rng.random() < cfg.variable_share if with_variables else False
        times, f_s = draws["times"], draws["f_s"]
        if physical:
            parallax = Parallax(*draw_parallax(parallax_stream), *sky)
            single_mag = single_lens_magnification(
                times, draws["t_0"], draws["u_0"], draws["t_E"], draws["rho"], parallax,
                tol=cfg.vbbl_tol, backend=cfg.magnification_backend)
        else:
            single_mag = pspl_magnification(times, draws["t_0"], draws["u_0"], draws["t_E"])
        single_lens = blended_flux(single_mag, f_s)
        passed, peak_sig = passes_detection_cut(single_lens, draws["errors_of"](single_lens),
                                                cfg)
        if passed:
            break
    else:
        raise RuntimeError(
            f"event {index} did not pass the detection cut in {cfg.max_attempts} attempts; "
            "loosen detection_sigma / detection_min_points or widen the priors"
        )

    t_0, u_0, t_E = draws["t_0"], draws["u_0"], draws["t_E"]
    rho, s, q, alpha_rad = draws["rho"], draws["s"], draws["q"], draws["alpha_rad"]
    if label != 0 or not is_variable:
        variable = _no_variable()
    if label == 0:
        clean = variable_flux(variable, times)
    elif label == 1:
        clean = single_lens
    else:
        mag = binary_magnification(times, t_0, u_0, t_E, rho, s, q, alpha_rad, tol=cfg.vbbl_tol,
                                   backend=cfg.magnification_backend, parallax=parallax)
        clean = blended_flux(mag, f_s)
    true_errors = draws["errors_of"](clean)
    if survey.is_thesis:
        errors, outliers = true_errors, 0
        flux = clean + errors * draws["noise"]
    else:
        if cfg.noise == "fitted":
            from microlens.simulation.noise_model import model_file, observe_with_model

            flux, star = observe_with_model(model_file(cfg.noise_model), times, clean, true_errors,
                                            draws["baseline_mag"], rng)
            errors, outliers = true_errors, star["n_outliers"]
            draws["error_scale"] = star["white_scale"]
        else:
            from microlens.simulation.survey import observe

            flux, errors, is_outlier = observe(survey, clean, true_errors, draws["error_scale"],
                                               rng)
            outliers = int(is_outlier.sum())
    uses_rho = label == 2 or (physical and label == 1)
    sky_columns = (parallax.columns() if parallax is not None and label != 0
                   else dict.fromkeys(PARALLAX_COLUMNS, math.nan))
    params = dict(
        label=label, t_0=t_0, u_0=u_0, t_E=t_E,
        rho=rho if uses_rho else math.nan, s=s if label == 2 else math.nan,
        q=q if label == 2 else math.nan, alpha_rad=alpha_rad if label == 2 else math.nan,
        **sky_columns,
        source_mag=draws["source_mag"], f_s=f_s, baseline_mag=draws["baseline_mag"],
        baseline_mag_error=draws["baseline_mag_error"],
        n_obs=times.size, missing_fraction=draws["missing_fraction"],
        peak_significance=peak_sig, attempts=attempt,
        dchi2_flat=math.nan, dchi2_pspl=math.nan,
        cadence_per_hour=draws["cadence_per_hour"], error_scale=draws["error_scale"],
        n_outliers=outliers, **variable,
    )  # fmt: skip
    if cfg.detectability:
        from microlens.simulation.detectability import detectability

        params.update(detectability(times, flux, errors, clean, (t_0, u_0, t_E)))
    return SimulatedEvent(times=times, flux=flux, flux_err=errors, clean_flux=clean, params=params)


def _thesis_draws(cfg: SimulationConfig, topo, rng: np.random.Generator) -> dict:
    """One attempt's draws on the ``thesis`` survey (the order of the original simulator)."""
    t_0 = cfg.survey_days * rng.uniform(*cfg.t_0_range)
    u_0 = rng.uniform(*cfg.u_0_range)
    t_E = _log_uniform(rng, cfg.t_E_range)
    source_mag = rng.uniform(*cfg.source_mag_range)
    f_s = rng.uniform(*cfg.f_s_range)
    rho = _log_uniform(rng, cfg.rho_range)
    s = _log_uniform(rng, topo.s_range)
    q = _log_uniform(rng, topo.q_range)
    alpha_rad = rng.uniform(0.0, 2.0 * math.pi)
    times = survey_times(cfg, rng)
    noise = rng.standard_normal(times.size)
    baseline_mag = source_mag + 2.5 * math.log10(f_s)  # blend light makes the baseline brighter
    sigma_m = baseline_error_mag(cfg, baseline_mag)
    return dict(t_0=t_0, u_0=u_0, t_E=t_E, source_mag=source_mag, f_s=f_s, rho=rho, s=s, q=q,
                alpha_rad=alpha_rad, times=times, noise=noise, baseline_mag=baseline_mag,
                baseline_mag_error=sigma_m, errors_of=lambda flux: flux_errors(flux, sigma_m),
                missing_fraction=1.0 - times.size / cfg.n_epochs, cadence_per_hour=math.nan,
                error_scale=1.0)


def _survey_draws(cfg: SimulationConfig, survey, topo, rng: np.random.Generator) -> dict:
    """One attempt's draws on a survey preset (:mod:`microlens.simulation.survey`)."""
    from microlens.simulation.survey import (
        draw_photometry,
        draw_t_0,
        observation_times,
        true_mag_error,
    )
    from microlens.simulation.survey import flux_errors as survey_flux_errors

    u_0 = rng.uniform(*cfg.u_0_range)
    t_E = _log_uniform(rng, cfg.t_E_range)
    rho = _log_uniform(rng, cfg.rho_range)
    s = _log_uniform(rng, topo.s_range)
    q = _log_uniform(rng, topo.q_range)
    alpha_rad = rng.uniform(0.0, 2.0 * math.pi)
    phot = draw_photometry(survey, rng)
    times = observation_times(survey, rng, field=phot["field"])
    t_0 = draw_t_0(survey, times, t_E, rng)
    baseline_mag = phot["baseline_mag"]
    return dict(t_0=t_0, u_0=u_0, t_E=t_E, source_mag=phot["source_mag"], f_s=phot["f_s"],
                rho=rho, s=s, q=q, alpha_rad=alpha_rad, times=times, baseline_mag=baseline_mag,
                baseline_mag_error=float(true_mag_error(survey, baseline_mag)),
                errors_of=lambda flux: survey_flux_errors(survey, flux, baseline_mag),
                missing_fraction=math.nan, cadence_per_hour=phot["cadence_per_hour"],
                error_scale=phot["error_scale"])


def _span(times: np.ndarray) -> float:
    return float(times[-1] - times[0]) if times.size > 1 else 1.0


def _no_variable() -> dict:
    """The variable-star columns of a constant star (and of every lensing event)."""
    return {name: (0 if name in VARIABLE_DTYPES else math.nan) for name in VARIABLE_COLUMNS}


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return math.exp(rng.uniform(math.log(low), math.log(high)))


# --------------------------------------------------------------------------------------------
# Many events: concatenated arrays, in parallel
# --------------------------------------------------------------------------------------------


def simulate_range(cfg: SimulationConfig, start: int, stop: int) -> dict[str, np.ndarray]:
    """Simulate events ``start .. stop-1`` into concatenated (ragged) arrays.

    Returns
    -------
    dict
        ``times`` (float64, days since the data set's reference epoch), ``flux``, ``flux_err``
        (float32): every event's observations one after the other, in event order;
        ``lengths`` (int64, observations per event), ``labels`` (int8) and ``params``
        (structured array, :data:`PARAM_COLUMNS`). Synthetic configs only: with ``baselines``
        set, :func:`microlens.simulation.events.simulate_range` injects into real baselines.
    """
    if cfg.baselines is not None:
        raise ValueError(_INJECTED_ELSEWHERE)
    events = [simulate_event(cfg, index) for index in range(start, stop)]
    params = np.zeros(len(events), dtype=params_dtype())
    for row, ev in enumerate(events):
        for name in params.dtype.names:
            params[name][row] = ev.params[name]
    return {
        "times": np.concatenate([ev.times for ev in events]).astype(np.float64),
        "flux": np.concatenate([ev.flux for ev in events]).astype(np.float32),
        "flux_err": np.concatenate([ev.flux_err for ev in events]).astype(np.float32),
        "lengths": np.array([ev.times.size for ev in events], np.int64),
        "labels": params["label"].astype(np.int8),
        "params": params,
    }


def params_dtype() -> np.dtype:
    """Structured dtype of the parameter table (float64 columns, integer label and counts)."""
    ints = {"label": np.int8, "n_obs": np.int32, "attempts": np.int32, "n_outliers": np.int32,
            **VARIABLE_DTYPES}
    return np.dtype([(name, ints.get(name, np.float64)) for name in PARAM_COLUMNS])


def default_workers() -> int:
    """Worker processes to use by default: every core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
