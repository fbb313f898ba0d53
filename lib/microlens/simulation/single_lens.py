"""Single lenses that are not point lenses: a finite source and the annual parallax.

``SimulationConfig(single_lens="physical")`` (survey presets only) gives the single-lens class
the light curve of a real single lens instead of Paczynski's point-source point-lens (PSPL)
curve: the source is a uniform disc of radius ``rho`` (the ``rho`` every event draws), and the
lens-source trajectory seen from the Earth bends with the Earth's orbit (annual parallax). A
classifier that met only exact PSPL singles would read any residual of a PSPL fit (an
asymmetric long event, a flattened high-magnification peak) as a sign of a binary lens.

Conventions (MulensModel names and units)
    ``t_0, u_0, t_E`` as in :mod:`microlens.simulation.simulate`; ``pi_E_N, pi_E_E`` the North and
    East components of the microlens parallax vector ``pi_E`` (its direction is that of the
    lens-source relative proper motion), ``t_0_par = t_0`` (the parallax reference epoch is the
    event's own peak time, so ``t_0, u_0, t_E`` keep their meaning near the peak; Gould 2004, ApJ
    606, 319). Times are days since the survey preset's ``reference_epoch`` (HJD); the Earth's
    position is taken at ``reference_epoch + t`` read as a Julian date in TDB, as MulensModel does.

Geocentric parallax (Gould 2004, ApJ 606, 319; the formula of MulensModel's ``Trajectory``)
    With ``s(t)`` the Earth's barycentric position [AU] and ``v_0`` its velocity at ``t_0_par``,
    ``delta(t) = s(t_0_par) - s(t) + (t - t_0_par) v_0`` is the Sun's offset from where a uniformly
    moving Earth would have it. Projected on the sky's North and East unit vectors at the event,
    ``(d_N, d_E)``, it shifts the trajectory along and across the direction of motion::

        tau  = (t - t_0) / t_E + d_N pi_E_N + d_E pi_E_E
        beta = u_0             - d_N pi_E_E + d_E pi_E_N
        u    = sqrt(tau**2 + beta**2)

    The Earth's position comes from ERFA's ``epv00`` (the ephemeris astropy's
    ``get_body_barycentric`` uses without downloads), tabulated every
    :data:`EPHEMERIS_STEP_DAYS` and interpolated with cubic Hermite polynomials (positions and
    velocities): a few 1e-11 AU off the direct call, far below what a light curve shows, at a
    thousandth of its cost. ``epv00`` is valid from 1900 to 2100.

Finite source (uniform disc)
    VBBinaryLensing's ``ESPLMag2(u, rho)`` point by point (Witt & Mao 1994, ApJ 430, 505;
    Bozza et al. 2018, MNRAS 479, 5157), from the precomputed table the package ships, with its
    ``Tol`` the simulation's ``vbbl_tol``: far from the source's edge (the finite-source
    correction below the tolerance) it returns the point-source value.

Priors (:func:`draw_parallax`)
    ``|pi_E|`` log-uniform in :data:`PI_E_RANGE` = [0.01, 1.0], direction uniform in
    [0, 2 pi). ``pi_E = pi_rel / theta_E = sqrt(pi_rel / (kappa M))`` with
    ``kappa = 8.144 mas / M_sun`` (Gould 2000, ApJ 542, 785): a 0.3 M_sun lens at 6 kpc in
    front of a bulge source at 8 kpc has ``pi_E ~ 0.13``, a disc lens at 2-4 kpc 0.3-0.6, a
    bulge lens or a massive remnant ~0.01-0.05. Typical bulge events have ``pi_E ~ 0.05-0.5``;
    the log-uniform prior covers that range and both tails. The sky position is fixed to the
    preset's field centre (:data:`FIELD_CENTRES`): every preset observes the Galactic bulge,
    and the parallax changes little across it.

Reproducibility
    ``pi_E`` is drawn for every event of every class, two uniforms per detection-cut attempt,
    from a stream of its own (:func:`parallax_rng`, derived from ``(seed, index)``), so the
    event's main stream, and with it every other draw, is the same with ``single_lens="point"``
    and ``"physical"`` and for every class.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass

import numpy as np

PI_E_RANGE: tuple[float, float] = (0.01, 1.0)
"""Bounds of the log-uniform prior on ``|pi_E|`` (see the module docstring)."""

BULGE_FIELD: tuple[float, float] = (268.75, -29.0)
"""RA 17:55:00, Dec -29:00:00 (ICRS) [degrees]: the centre of the Galactic-bulge fields of the
ground surveys (OGLE-IV BLG5xx, KMTNet BLG01-04, MOA-II gb9-10 lie within a few degrees)."""

FIELD_CENTRES: dict[str, tuple[float, float]] = {
    "ogle": BULGE_FIELD,
    "kmtnet": BULGE_FIELD,
    "moa": BULGE_FIELD,
    "roman": BULGE_FIELD,  # the preset names no field: Roman's survey also looks at the bulge
}
"""Sky position ``(ra_deg, dec_deg)`` of each survey preset's events."""

PARALLAX_COLUMNS: tuple[str, ...] = ("pi_E_N", "pi_E_E", "ra_deg", "dec_deg",
                                     "reference_epoch")
"""Parameter-table columns of an event with parallax (NaN without): the parallax vector, the
event's sky position [degrees] and the Julian date of ``t = 0`` of its times."""

EPHEMERIS_STEP_DAYS = 0.5
"""Spacing of the tabulated Earth positions [days]."""

_BLOCK_STEPS = 128
"""Tabulated steps per cached block (64 days)."""

_PARALLAX_KEY = 2**31 + 7
"""First word of the spawn key of the parallax stream (:func:`parallax_rng`); event streams
use ``(index,)``, other purposes ``2**31`` onwards (:mod:`microlens.data.store`,
:mod:`microlens.simulation.injection`)."""


# --------------------------------------------------------------------------------------------
# Parallax: draws and geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parallax:
    """The annual parallax of one event.

    Parameters
    ----------
    pi_E_N, pi_E_E : float
        North and East components of the microlens parallax vector.
    ra_deg, dec_deg : float
        The event's sky position (ICRS) [degrees].
    reference_epoch : float
        Julian date of ``t = 0`` of the times it is evaluated at.
    """

    pi_E_N: float
    pi_E_E: float
    ra_deg: float
    dec_deg: float
    reference_epoch: float

    def columns(self) -> dict:
        """The :data:`PARALLAX_COLUMNS` of the parameter table."""
        return {name: float(getattr(self, name)) for name in PARALLAX_COLUMNS}

    @classmethod
    def from_params(cls, params) -> Parallax | None:
        """The parallax of a parameter-table row, or None for a row without one (NaN or
        missing columns: a point lens, or a data set made before parallax existed)."""
        try:
            values = [float(params[name]) for name in PARALLAX_COLUMNS]
        except (KeyError, ValueError, IndexError):
            return None
        if not all(math.isfinite(v) for v in values):
            return None
        return cls(*values)

    def shifts(self, t, t_0: float) -> tuple[np.ndarray, np.ndarray]:
        """``(delta_tau, delta_beta)`` at times ``t`` [days since ``reference_epoch``] with
        ``t_0_par = t_0`` (see the module docstring)."""
        d_n, d_e = sun_offsets(np.asarray(t, dtype=np.float64) + self.reference_epoch,
                               self.reference_epoch + float(t_0), self.ra_deg, self.dec_deg)
        delta_tau = d_n * self.pi_E_N + d_e * self.pi_E_E
        delta_beta = -d_n * self.pi_E_E + d_e * self.pi_E_N
        return delta_tau, delta_beta


def field_centre(survey: str) -> tuple[float, float]:
    """``(ra_deg, dec_deg)`` of a survey preset's events (:data:`FIELD_CENTRES`)."""
    if survey not in FIELD_CENTRES:
        raise ValueError(f"survey {survey!r} has no sky position for the annual parallax; "
                         f"valid: {', '.join(FIELD_CENTRES)}")
    return FIELD_CENTRES[survey]


def parallax_rng(seed: int, index: int) -> np.random.Generator:
    """The parallax stream of event ``index`` of a data set with seed ``seed``: apart from the
    event's main stream (:func:`microlens.simulation.simulate.event_rng`), so that drawing ``pi_E``
    leaves
    every other draw as it is."""
    return np.random.default_rng(np.random.SeedSequence(
        entropy=int(seed), spawn_key=(_PARALLAX_KEY, int(index))))


def draw_parallax(rng: np.random.Generator) -> tuple[float, float]:
    """``(pi_E_N, pi_E_E)``: ``|pi_E|`` log-uniform in :data:`PI_E_RANGE`, direction uniform in
    [0, 2 pi) (North through East). Always two uniforms."""
    u = rng.random(2)
    low, high = PI_E_RANGE
    size = math.exp(math.log(low) + (math.log(high) - math.log(low)) * u[0])
    angle = 2.0 * math.pi * u[1]
    return size * math.cos(angle), size * math.sin(angle)


def parallax_for(seed: int, index: int, attempt: int, survey: str,
                 reference_epoch: float) -> Parallax:
    """The parallax event ``index`` draws at detection-cut attempt ``attempt`` (1 for the
    first), whatever its class and whatever ``single_lens`` says."""
    rng = parallax_rng(seed, index)
    for _ in range(int(attempt)):
        pi_e = draw_parallax(rng)
    return Parallax(*pi_e, *field_centre(survey), float(reference_epoch))


def sky_basis(ra_deg: float, dec_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors North and East on the sky at ``(ra_deg, dec_deg)``, in the equatorial
    (ICRS) frame of the ephemeris, built as MulensModel's ``Coordinates`` builds them."""
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    direction = np.array([math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra),
                          math.sin(dec)])
    east = np.cross([0.0, 0.0, 1.0], direction)
    east /= np.linalg.norm(east)
    north = np.cross(direction, east)
    return north, east


def sun_offsets(jd, jd_par: float, ra_deg: float, dec_deg: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """North and East components [AU] of ``s(t_par) - s(t) + (t - t_par) v(t_par)`` at the
    Julian dates ``jd`` (``s``, ``v``: the Earth's barycentric position and velocity)."""
    jd = np.asarray(jd, dtype=np.float64)
    position = earth_position(jd)
    p_par, v_par = _epv00(np.array([float(jd_par)]))
    delta = p_par[0] - position + np.outer(jd - float(jd_par), v_par[0])
    north, east = sky_basis(ra_deg, dec_deg)
    return delta @ north, delta @ east


# --------------------------------------------------------------------------------------------
# The Earth's position
# --------------------------------------------------------------------------------------------


def _epv00(jd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Earth's barycentric position [AU] and velocity [AU/day] at Julian dates ``jd``
    (TDB) from ERFA's ``epv00``."""
    try:
        import erfa
    except ImportError:  # pragma: no cover - astropy and MulensModel install it
        raise ImportError("single_lens='physical' takes the Earth's orbit from pyerfa "
                          "(astropy's ERFA binding): pip install pyerfa") from None
    _, barycentric = erfa.epv00(jd, np.zeros_like(jd))
    return np.asarray(barycentric["p"]), np.asarray(barycentric["v"])


@functools.lru_cache(maxsize=256)
def _earth_block(block: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions and velocities at the ``_BLOCK_STEPS + 1`` tabulated dates of one block."""
    steps = block * _BLOCK_STEPS + np.arange(_BLOCK_STEPS + 1)
    position, velocity = _epv00(steps * EPHEMERIS_STEP_DAYS)
    position.setflags(write=False)
    velocity.setflags(write=False)
    return position, velocity


def earth_position(jd) -> np.ndarray:
    """The Earth's barycentric position [AU], shape ``(n, 3)``, at Julian dates ``jd`` (TDB):
    cubic Hermite interpolation between ``epv00`` positions and velocities tabulated every
    :data:`EPHEMERIS_STEP_DAYS` (blocks cached per process)."""
    jd = np.asarray(jd, dtype=np.float64)
    if jd.size == 0:
        return np.empty((0, 3))
    if not np.all(np.isfinite(jd)):
        raise ValueError("times must be finite to compute the Earth's position")
    x = jd / EPHEMERIS_STEP_DAYS
    step = np.floor(x).astype(np.int64)
    frac = (x - step)[:, None]
    first, last = int(step.min()) // _BLOCK_STEPS, int(step.max()) // _BLOCK_STEPS
    blocks = [_earth_block(b) for b in range(first, last + 1)]
    position = np.concatenate([p[:-1] for p, _ in blocks] + [blocks[-1][0][-1:]])
    velocity = np.concatenate([v[:-1] for _, v in blocks] + [blocks[-1][1][-1:]])
    row = step - first * _BLOCK_STEPS
    h = EPHEMERIS_STEP_DAYS
    f2, f3 = frac * frac, frac * frac * frac
    return ((2 * f3 - 3 * f2 + 1) * position[row] + (f3 - 2 * f2 + frac) * h * velocity[row]
            + (3 * f2 - 2 * f3) * position[row + 1] + (f3 - f2) * h * velocity[row + 1])


# --------------------------------------------------------------------------------------------
# Magnification
# --------------------------------------------------------------------------------------------


_ENGINES: dict[tuple[str, float], object] = {}


def _espl_engine(tol: float, backend: str):
    """One VBBinaryLensing (or VBMicrolensing) instance per process, tolerance and backend with
    the ESPL table loaded; apart from the binary engine, so that its state stays the binaries'
    own."""
    key = (backend, float(tol))
    if key not in _ENGINES:
        if backend == "VBBinaryLensing":
            import VBBinaryLensing as package

            engine = package.VBBinaryLensing()
        elif backend == "VBMicrolensing":
            import VBMicrolensing as package

            engine = package.VBMicrolensing()
        else:
            raise ValueError(f"unknown magnification backend {backend!r}; valid: "
                             "VBBinaryLensing, VBMicrolensing")
        table = os.path.join(os.path.dirname(package.__file__), "data", "ESPL.tbl")
        if not os.path.isfile(table):
            raise FileNotFoundError(f"{backend} ships its finite-source table as {table}, "
                                    "which is missing: reinstall the package")
        engine.LoadESPLTable(table)
        engine.Tol = float(tol)
        engine.RelTol = float(tol)
        _ENGINES[key] = engine
    return _ENGINES[key]


def trajectory(t, t_0: float, u_0: float, t_E: float,
               parallax: Parallax | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(tau, beta)``: the source's position along and across its direction of motion
    [Einstein radii] at times ``t``, shifted by the parallax when one is given."""
    t = np.asarray(t, dtype=np.float64)
    tau = (t - t_0) / t_E
    beta = np.full_like(tau, float(u_0))
    if parallax is not None:
        delta_tau, delta_beta = parallax.shifts(t, t_0)
        tau, beta = tau + delta_tau, beta + delta_beta
    return tau, beta


def espl_magnification(u, rho: float, *, tol: float = 1e-3,
                       backend: str = "VBBinaryLensing") -> np.ndarray:
    """Magnification of a uniform source of radius ``rho`` at lens-source separations ``u``
    [Einstein radii]: ``ESPLMag2(u, rho)`` point by point at ``Tol = RelTol = tol``."""
    engine = _espl_engine(tol, backend)
    rho = float(rho)
    u = np.asarray(u, dtype=np.float64)
    return np.fromiter((engine.ESPLMag2(x, rho) for x in u.tolist()), np.float64, u.size)


def single_lens_magnification(t, t_0: float, u_0: float, t_E: float, rho: float = math.nan,
                              parallax: Parallax | None = None, *, tol: float = 1e-3,
                              backend: str = "VBBinaryLensing") -> np.ndarray:
    """Magnification of a single lens at times ``t``: a uniform source of radius ``rho``
    (NaN: a point source, Paczynski's formula) on the trajectory of :func:`trajectory`."""
    tau, beta = trajectory(t, t_0, u_0, t_E, parallax)
    u = np.hypot(tau, beta)
    if math.isfinite(rho):
        return espl_magnification(u, rho, tol=tol, backend=backend)
    u2 = u * u
    return (u2 + 2.0) / (u * np.sqrt(u2 + 4.0))


def binary_source_position(tau, beta, alpha_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """``(y1, y2)``: the source position in the binary's frame (centre of mass at the origin,
    lenses on the x axis) at trajectory coordinates ``(tau, beta)``, the convention of
    VBBinaryLensing's ``BinaryLightCurve`` and MulensModel (``alpha = degrees(alpha_rad)``)."""
    c, s = math.cos(alpha_rad), math.sin(alpha_rad)
    tau, beta = np.asarray(tau, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    return -tau * c + beta * s, -tau * s - beta * c
