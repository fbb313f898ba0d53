"""Declarative registry of every simulation preset, in one place.

Four families. The first three compose freely:

* **binary topology** sets the priors of the binary-lens mass ratio ``q`` and separation ``s``
  (both log-uniform, ``s`` in units of the total-mass Einstein radius);
* **cadence** sets the fraction of survey epochs that are missing;
* **error** sets the photometric error, in magnitudes, at the reference baseline magnitude;
* **survey** sets the whole observing pattern and photometry of a real survey (seasons, nightly
  windows, sites, field cadences, weather, the magnitude-dependent error curve, error-bar
  underestimate, outliers, blending): ``thesis`` (the default) is only a marker for the
  simulator's own evenly spread epochs, which the cadence and error presets then shape; every
  other survey (``ogle``, ``kmtnet``, ``moa``, ``roman``) sets cadence and errors itself, so
  combining it with a cadence or error preset is an error (enforced by ``SimulationConfig``).
  The survey sampling and noise live in :mod:`microlens.simulation.survey`.

Every name is looked up through :func:`get_topology`, :func:`get_cadence`, :func:`get_error` and
:func:`get_survey`, which raise a ``ValueError`` naming the bad value and the valid choices.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BinaryTopology:
    """Log-uniform priors of the binary-lens mass ratio and separation.

    Attributes
    ----------
    name : str
        Registry key.
    q_range : tuple of float
        ``(low, high)`` of the mass ratio ``q = m2 / m1`` (dimensionless).
    s_range : tuple of float
        ``(low, high)`` of the projected separation ``s`` in Einstein radii.
    description : str
        One line for tables and figure legends.
    """

    name: str
    q_range: tuple[float, float]
    s_range: tuple[float, float]
    description: str


@dataclass(frozen=True)
class CadencePreset:
    """Fraction of the nominal survey epochs that are missing (weather, gaps, downtime)."""

    name: str
    missing_fraction: float
    description: str


@dataclass(frozen=True)
class ErrorPreset:
    """Photometric error (magnitudes) at the reference baseline magnitude."""

    name: str
    baseline_mag_error: float
    description: str


TOPOLOGIES: dict[str, BinaryTopology] = {
    t.name: t
    for t in (
        BinaryTopology("distinct", (1e-4, 1e-1), (0.3, 3.0), "clearly binary companions"),
        BinaryTopology("planetary", (1e-5, 1e-3), (0.5, 2.0), "planetary companions"),
        BinaryTopology("stellar", (0.1, 1.0), (0.5, 2.5), "stellar binaries"),
        BinaryTopology("baseline", (1e-5, 1.0), (0.3, 5.0), "the full range (thesis baseline)"),
    )
}

CADENCES: dict[str, CadencePreset] = {
    c.name: c
    for c in (
        CadencePreset("cadence_05", 0.05, "5 % of epochs missing"),
        CadencePreset("cadence_15", 0.15, "15 % of epochs missing"),
        CadencePreset("cadence_30", 0.30, "30 % of epochs missing"),
        CadencePreset("cadence_50", 0.50, "50 % of epochs missing"),
    )
}

ERRORS: dict[str, ErrorPreset] = {
    e.name: e
    for e in (
        ErrorPreset("error_003", 0.03, "0.03 mag at baseline"),
        ErrorPreset("error_005", 0.05, "0.05 mag at baseline"),
        ErrorPreset("error_010", 0.10, "0.10 mag at baseline"),
        ErrorPreset("error_015", 0.15, "0.15 mag at baseline"),
    )
}


def _lookup(registry: dict, kind: str, name: str):
    try:
        return registry[name]
    except (KeyError, TypeError):
        valid = ", ".join(registry)
        raise ValueError(f"unknown {kind} preset {name!r}; valid choices: {valid}") from None


def get_topology(name: str) -> BinaryTopology:
    """Return the binary topology preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(TOPOLOGIES, "topology", name)


def get_cadence(name: str) -> CadencePreset:
    """Return the cadence preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(CADENCES, "cadence", name)


def get_error(name: str) -> ErrorPreset:
    """Return the photometric-error preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(ERRORS, "error", name)


# --------------------------------------------------------------------------------------------
# Survey observing patterns
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyPreset:
    """One survey's observing pattern and photometry (sampled by
    :mod:`microlens.simulation.survey`).

    Times are days since ``reference_epoch`` (HJD of ``t = 0``, chosen ending in ``.0``, i.e.
    noon UT). Every field is declarative; the sources and the values that are a judgment within
    a cited range are named in ``description`` and ``sources``.

    Observing pattern
        Season ``k`` (``0 <= k < n_seasons``) starts at ``(k // seasons_per_year) * year_days +
        (k % seasons_per_year) * year_days / seasons_per_year`` and lasts ``season_days``. From
        the ground (``night_hours`` set), each site observes every night of a season for
        ``night_hours`` centred on its local mean midnight (UT ``-longitude / 15`` h), unless the
        night is lost to weather; lost nights come in runs (alternating geometric runs of clear
        and lost nights, mean lost run ``weather_run_mean_nights``, long-run lost fraction
        ``weather_loss_fraction``, independent per site). In space (``night_hours is None``)
        observing is continuous. The event's field is drawn with probabilities ``field_weights``;
        its cadence ``field_cadences_per_hour[field]`` is *per site*. Exposures fall on a grid of
        that cadence with a random phase per night (per season in space), each jittered by
        ``jitter_fraction`` of the interval (uniform, total width; clipped to its window, which
        keeps a site's exposures ordered since only a window's first and last exposure can
        reach its edges); each is missing on its own with probability
        ``missing_exposure_fraction``.

    Photometry
        The true error of one measurement of a star of current magnitude ``m`` is::

            sigma_m(m)**2 = sigma_floor**2 + sigma_ref**2 * P(m) / P(m_ref),
            P(m) = 10**(0.4 (m - m_ref)) * (1 + 10**(0.4 (m - m_sky)))

        i.e. photon noise of the star plus the background (sky, unresolved crowding, read noise;
        ``m_sky`` is the magnitude whose flux equals the background in the aperture), scaled to
        ``sigma_ref`` at ``m_ref``, plus a systematic floor in quadrature. Reported errors are
        the true errors divided by ``error_scale``, drawn uniformly in
        ``error_underestimate_range`` per event. A fraction ``outlier_fraction`` of the points
        are replaced by ``clean + sign * size * true_error``, ``size`` uniform in
        ``outlier_size_range``, ``sign = +1`` with probability ``outlier_positive_fraction``.
        The baseline magnitude is uniform in ``baseline_mag_range`` (the survey's band), the
        source flux fraction ``f_s`` uniform in ``f_s_range``.

    Events
        The peak ``t_0`` may fall anywhere from ``t0_margin_te * t_E`` before the first to
        ``t0_margin_te * t_E`` after the last observation (partially covered events).
    """

    name: str
    description: str
    sources: tuple[str, ...]
    band: str | None = None
    reference_epoch: float | None = None
    n_seasons: int | None = None
    season_days: float | None = None
    seasons_per_year: int = 1
    year_days: float = 365.25
    night_hours: float | None = None
    site_longitudes_deg: tuple[float, ...] = ()
    field_cadences_per_hour: tuple[float, ...] = ()
    field_weights: tuple[float, ...] = ()
    jitter_fraction: float = 0.0
    missing_exposure_fraction: float = 0.0
    weather_loss_fraction: float = 0.0
    weather_run_mean_nights: float = 1.0
    baseline_mag_range: tuple[float, float] | None = None
    sigma_floor: float | None = None
    sigma_ref: float | None = None
    m_ref: float | None = None
    m_sky: float | None = None
    error_underestimate_range: tuple[float, float] = (1.0, 1.0)
    outlier_fraction: float = 0.0
    outlier_size_range: tuple[float, float] = (5.0, 20.0)
    outlier_positive_fraction: float = 0.5
    f_s_range: tuple[float, float] = (0.1, 1.0)
    t0_margin_te: float = 0.0

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError(f"survey preset {self.name!r} must name at least one source")
        if self.is_thesis:
            return
        problems = []
        for name in (
            "band",
            "reference_epoch",
            "n_seasons",
            "season_days",
            "baseline_mag_range",
            "sigma_floor",
            "sigma_ref",
            "m_ref",
            "m_sky",
        ):
            if getattr(self, name) is None:
                problems.append(f"{name} is not set")
        if not self.field_cadences_per_hour or len(self.field_cadences_per_hour) != len(
            self.field_weights
        ):
            problems.append("field_cadences_per_hour and field_weights need equal, non-zero length")
        elif min(self.field_cadences_per_hour) <= 0 or min(self.field_weights) < 0:
            problems.append("field cadences must be positive and weights non-negative")
        elif abs(sum(self.field_weights) - 1.0) > 1e-9:
            problems.append(f"field_weights must sum to 1, got {sum(self.field_weights)}")
        if self.night_hours is not None and not (0 < self.night_hours < 24):
            problems.append(f"night_hours must be in (0, 24), got {self.night_hours}")
        if self.night_hours is not None and not self.site_longitudes_deg:
            problems.append("a ground survey needs at least one site longitude")
        if self.night_hours is None and self.site_longitudes_deg:
            problems.append("a space survey (night_hours None) has no sites")
        if self.season_days is not None and not (
            0 < self.season_days <= self.year_days / self.seasons_per_year
        ):
            problems.append("season_days must be in (0, year_days / seasons_per_year]")
        if not 0 <= self.jitter_fraction < 1:
            problems.append("jitter_fraction must be in [0, 1) to keep a site's exposures ordered")
        for name in ("missing_exposure_fraction", "weather_loss_fraction", "outlier_fraction"):
            if not 0 <= getattr(self, name) < 1:
                problems.append(f"{name} must be in [0, 1)")
        if not 0 <= self.outlier_positive_fraction <= 1:
            problems.append("outlier_positive_fraction must be in [0, 1]")
        if self.weather_run_mean_nights < 1:
            problems.append("weather_run_mean_nights must be >= 1")
        low, high = self.error_underestimate_range
        if not 1 <= low <= high:
            problems.append("error_underestimate_range must satisfy 1 <= low <= high")
        low, high = self.f_s_range
        if not 0 < low <= high <= 1:
            problems.append("f_s_range must lie in (0, 1]")
        if problems:
            raise ValueError(f"survey preset {self.name!r}: " + "; ".join(problems))

    @property
    def is_thesis(self) -> bool:
        """True for the ``thesis`` marker: the simulator keeps its own evenly spread epochs."""
        return self.name == "thesis"

    @property
    def sites(self) -> int:
        """Number of longitudinally separated sites (0 in space)."""
        return len(self.site_longitudes_deg)

    @property
    def is_space(self) -> bool:
        """True when observing is continuous (no nights, no weather)."""
        return self.night_hours is None


_OGLE_SOURCES = (
    "Udalski, Szymanski & Szymanski 2015, Acta Astron. 65, 1 (OGLE-IV: 1.3 m Warsaw telescope, "
    "Las Campanas; inner-bulge cadence 19-60 min, outer bulge fields 1-3 days; bulge photometry "
    "12 < I < 21; regular observations from March 2010)",
    "Skowron et al. 2016, Acta Astron. 66, 1 (error-bar correction "
    "sigma_new = sqrt((gamma sigma)^2 + eps^2), gamma ~ 1.2-1.6, eps ~ 0.003-0.01 mag)",
    "Wyrzykowski et al. 2009, MNRAS 397, 1228 (OGLE-III difference-imaging error curve)",
    "Mroz et al. 2019, ApJS 244, 29 (event rates highest in the central, high-cadence fields)",
)
_KMT_SOURCES = (
    "Kim S.-L. et al. 2016, JKAS 49, 37 (three 1.6 m telescopes, 4 deg^2, at CTIO, SAAO and "
    "SSO, ~-30 deg latitude, for 24-hour coverage)",
    "Kim H.-W. et al. 2018, AJ 155, 76 (bulge field cadences 4, 1, 0.4 and 0.2 per hour)",
    "KMTNet web site (kmtnet.kasi.re.kr, programs): bulge season Feb 20 - Oct 22",
)
_MOA_SOURCES = (
    "Bond et al. 2001, MNRAS 327, 868 (MOA difference-imaging photometry, broad MOA-red band)",
    "Sumi et al. 2013, ApJ 778, 150 (MOA-II 1.8 m, Mt John; fields at 15, 47 and 95 min "
    "cadence; 2006-2007 seasons)",
)
_ROMAN_SOURCES = (
    "Penny et al. 2019, ApJS 241, 3 (six 72-day seasons, 15-min cadence in W149; photometric "
    "precision ~0.001 mag at W149 ~ 19 to ~0.1 mag at W149 ~ 25)",
)
_JUDGMENT = "judgment within the cited ranges"

SURVEYS: dict[str, SurveyPreset] = {
    p.name: p
    for p in (
        SurveyPreset(
            "thesis",
            "thesis default: SimulationConfig's evenly spread epochs (n_epochs over survey_days) "
            "shaped by the cadence and error presets; a marker, not sampled by "
            "microlens.simulation.survey",
            ("this project's SimulationConfig defaults (1000 epochs over 200 d)",),
        ),
        SurveyPreset(
            "ogle",
            "OGLE-IV bulge, I band, one site (Las Campanas, 70.70 W). Cadences 3/h (19-20 min), "
            "1/h (60 min), 1 per night and 1 per 2 nights (the 1-3 day outer fields) per "
            "Udalski et al. 2015. Field weights 0.3/0.4/0.2/0.1 favour the central fields, where "
            "Mroz et al. 2019 find the highest event rates (" + _JUDGMENT + "). 2 seasons of "
            "240 d (bulge visible ~8 months a year) keep a typical curve at ~2000 points. "
            "Nightly window 7 h, weather loss 30 % in runs of 2 nights, 3 % isolated missing "
            "exposures, jitter 20 % of the interval (" + _JUDGMENT + "). Error floor 0.004 mag "
            "(Skowron eps 0.003-0.01), 0.03 mag at I = 18 rising to ~0.27 at I = 21 (photometry "
            "limit I = 21, Udalski 2015): " + _JUDGMENT + ". Error underestimate 1.2-1.6 "
            "(Skowron gamma). Baseline I 15-20.5, f_s 0.1-1, 1 % outliers of 5-20 sigma of "
            "either sign (difference-imaging artefacts of both signs), t_0 up to 1 t_E outside "
            "the span: " + _JUDGMENT + ".",
            _OGLE_SOURCES,
            band="I",
            reference_epoch=2455260.0,  # 2010 March 4, 12h UT: OGLE-IV's first bulge season
            n_seasons=2,
            season_days=240.0,
            night_hours=7.0,
            site_longitudes_deg=(-70.70,),
            field_cadences_per_hour=(3.0, 1.0, 1.0 / 7.0, 1.0 / 14.0),
            field_weights=(0.3, 0.4, 0.2, 0.1),
            jitter_fraction=0.2,
            missing_exposure_fraction=0.03,
            weather_loss_fraction=0.30,
            weather_run_mean_nights=2.0,
            baseline_mag_range=(15.0, 20.5),
            sigma_floor=0.004,
            sigma_ref=0.03,
            m_ref=18.0,
            m_sky=19.0,
            error_underestimate_range=(1.2, 1.6),
            outlier_fraction=0.01,
            outlier_size_range=(5.0, 20.0),
            outlier_positive_fraction=0.5,
            f_s_range=(0.1, 1.0),
            t0_margin_te=1.0,
        ),
        SurveyPreset(
            "kmtnet",
            "KMTNet bulge, I band, three sites (CTIO 70.81 W, SAAO 20.81 E, SSO 149.07 E), "
            "weather independent per site. Per-site field cadences 4, 1, 0.4, 0.2 per hour "
            "(Kim H.-W. et al. 2018), weights 0.3/0.4/0.2/0.1 (" + _JUDGMENT + "). One season "
            "of 245 d (Feb 20 - Oct 22); a 4/h field then gives ~13000 points, the real upper "
            "range. Nightly window 7 h, weather loss 35 % in runs of 2 nights, 3 % isolated "
            "missing, jitter 20 % (" + _JUDGMENT + "). Errors as OGLE-IV with a 0.005 mag floor, "
            "underestimate 1.0-2.0, baseline I 15-20.5, 1 % outliers, t_0 margin 1 t_E: "
            + _JUDGMENT
            + ".",
            _KMT_SOURCES,
            band="I",
            reference_epoch=2457439.0,  # 2016 Feb 20, 12h UT: start of the 2016 bulge season
            n_seasons=1,
            season_days=245.0,
            night_hours=7.0,
            site_longitudes_deg=(-70.81, 20.81, 149.07),
            field_cadences_per_hour=(4.0, 1.0, 0.4, 0.2),
            field_weights=(0.3, 0.4, 0.2, 0.1),
            jitter_fraction=0.2,
            missing_exposure_fraction=0.03,
            weather_loss_fraction=0.35,
            weather_run_mean_nights=2.0,
            baseline_mag_range=(15.0, 20.5),
            sigma_floor=0.005,
            sigma_ref=0.03,
            m_ref=18.0,
            m_sky=19.0,
            error_underestimate_range=(1.0, 2.0),
            outlier_fraction=0.01,
            outlier_size_range=(5.0, 20.0),
            outlier_positive_fraction=0.5,
            f_s_range=(0.1, 1.0),
            t0_margin_te=1.0,
        ),
        SurveyPreset(
            "moa",
            "MOA-II bulge, MOA-red band (~R+I), one site (Mt John, 170.47 E). Cadences 15, 47 "
            "and 95 min (Sumi et al. 2013), weights 0.3/0.4/0.3 (" + _JUDGMENT + "). One season "
            "of 240 d, nightly window 7 h, weather loss 50 % in runs of 2 nights (New Zealand "
            "weather), 3 % isolated missing, jitter 20 % (" + _JUDGMENT + "). Errors larger than "
            "OGLE's (broad band, poorer seeing): floor 0.008 mag, 0.05 at 18, ~0.22 at 20, "
            "underestimate 1.0-2.0, 2 % outliers, baseline 15-20, t_0 margin 1 t_E: "
            + _JUDGMENT
            + ".",
            _MOA_SOURCES,
            band="MOA-red",
            reference_epoch=2453796.0,  # 2006 March 1, 12h UT: first MOA-II season of Sumi 2013
            n_seasons=1,
            season_days=240.0,
            night_hours=7.0,
            site_longitudes_deg=(170.47,),
            field_cadences_per_hour=(4.0, 60.0 / 47.0, 60.0 / 95.0),
            field_weights=(0.3, 0.4, 0.3),
            jitter_fraction=0.2,
            missing_exposure_fraction=0.03,
            weather_loss_fraction=0.50,
            weather_run_mean_nights=2.0,
            baseline_mag_range=(15.0, 20.0),
            sigma_floor=0.008,
            sigma_ref=0.05,
            m_ref=18.0,
            m_sky=18.5,
            error_underestimate_range=(1.0, 2.0),
            outlier_fraction=0.02,
            outlier_size_range=(5.0, 20.0),
            outlier_positive_fraction=0.5,
            f_s_range=(0.1, 1.0),
            t0_margin_te=1.0,
        ),
        SurveyPreset(
            "roman",
            "Roman Galactic Bulge Time Domain Survey, W149, from space: 15-min cadence, 72-day "
            "seasons, two per year (Penny et al. 2019 has six). One season by default: 6912 "
            "points, the length one event's light curve needs, while six seasons (41472 "
            "points) are not trainable on CPU; set n_seasons up to 6 for more. Error floor "
            "0.001 mag, photon+background scaled to give ~0.0014 at W149 = 19 and ~0.09 at 25 "
            "(Penny et al. 2019), baseline W149 17-24, underestimate 1.0-1.2, 0.2 % outliers, no "
            "missing exposures, t_0 margin 1 t_E: " + _JUDGMENT + ". The reference epoch (2027 "
            "March 1) is a placeholder: the launch date is not part of the cited survey design.",
            _ROMAN_SOURCES,
            band="W149",
            reference_epoch=2461466.0,  # 2027 March 1, 12h UT (placeholder, see description)
            n_seasons=1,
            season_days=72.0,
            seasons_per_year=2,
            night_hours=None,
            field_cadences_per_hour=(4.0,),
            field_weights=(1.0,),
            jitter_fraction=0.2,
            missing_exposure_fraction=0.0,
            weather_loss_fraction=0.0,
            weather_run_mean_nights=1.0,
            baseline_mag_range=(17.0, 24.0),
            sigma_floor=0.001,
            sigma_ref=0.001,
            m_ref=19.0,
            m_sky=21.0,
            error_underestimate_range=(1.0, 1.2),
            outlier_fraction=0.002,
            outlier_size_range=(5.0, 20.0),
            outlier_positive_fraction=0.5,
            f_s_range=(0.1, 1.0),
            t0_margin_te=1.0,
        ),
    )
}
"""Survey observing patterns; ``thesis`` (the default) is the simulator's own path."""

DEFAULT_SURVEY = "thesis"


def get_survey(name: str) -> SurveyPreset:
    """Return the survey preset ``name`` (ValueError with the valid names otherwise)."""
    return _lookup(SURVEYS, "survey", name)
