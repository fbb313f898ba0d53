"""Folders of real events in the OGLE Early Warning System (EWS) layout: events, OGLE's own
point-lens fits, the segments an alert stream had seen, the shipped subset and the download.

A folder in the EWS layout holds ``photometry/<name>_phot.dat`` (columns ``HJD I_mag I_mag_err
seeing sky``, full HJD) and, optionally, ``params/<name>_params.dat`` (OGLE's point-lens fit:
``Field``, ``StarNo``, ``RA(J2000.0)`` hh:mm:ss.ss, ``Dec(J2000.0)`` dd:mm:ss.s, then rows
``Tmax tau umin Amax Dmag fbl I_bl I0``, each ``value error``). This is how the EWS pages
publish each event (Udalski 2003, AcA 53, 291: the EWS; Udalski et al. 2015, AcA 65, 1: the
OGLE-IV survey); ``docs/real_data.md`` repeats the rules below.

Rules (what every user of a folder should know)
    * **No params file**: the event has no fit (``fit is None``); it has no peak time, so it
      has no event segment rule other than its whole curve (:func:`event_end`) and no baseline
      segment (:func:`baseline_end` is 0).
    * **Degenerate fits**: ``umin <= 0``, ``Amax >= 99999`` or ``tau <= 0`` (OGLE writes
      ``umin = 0``, ``Amax = 99999`` where its fit did not converge): ``fit.degenerate``; such a
      fit predicts nothing usable, so :func:`baseline_end` is 0.
    * **Blending**: OGLE fixed ``fbl = 1.000 +- 0.000`` for most events (``fit.fbl_fixed``): it
      is then an assumption, not a measurement. OGLE's ``I0`` is the magnitude of the *source*
      and ``I_bl`` that of the whole baseline (source and blend): ``I0 = I_bl - 2.5 log10(fbl)``
      holds on every file of the 2025 season to 0.01 mag. :attr:`EwsFit.baseline_mag` is
      ``I_bl``; :attr:`EwsFit.source_mag` is ``I0``.
    * **Peak after the last observation**: some fits put ``Tmax`` after the last point of the
      file (the event was still rising when the page was copied): :func:`peaks_after_data`.
    * **Duplicate stars**: OGLE's fields overlap, so one star can be two events in two fields
      (same coordinates and ``Tmax``). A star is identified by its coordinates: events within
      :data:`STAR_MATCH_ARCSEC` of each other are one star; every event of a star after the
      first (by name) has ``duplicate_of`` set to that first event's name.
    * **Segments**: the event segment is the curve up to ``Tmax + 2 tau``
      (:func:`event_end`); a baseline segment ends before OGLE's fit predicts a detectable
      signal (:func:`baseline_end`: cumulative S/N < 2), never at a fixed multiple of ``tau``
      (a PSPL magnification is still ~1.017 at ``Tmax - 3 tau``).

All times here are full HJD unless a name says otherwise. No pickle: folders are text, the
shipped subset is a ``tar.xz`` archive of the same text files.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from microlens.core.paths import PROJECT_ROOT, atomic_path
from microlens.core.removal import MARKER, mark_project_dir, remove_project_dir
from microlens.photometry.files import Photometry, estimate_baseline_flux, read_file

__all__ = [
    "DEGENERATE_AMAX", "EWS_COLUMNS", "FIT_ROWS", "STAR_MATCH_ARCSEC",
    "SUBSET_ARCHIVE", "SUBSET_FOLDER", "EwsEvent", "EwsFit", "baseline_end",
    "event_end", "exclusion_reasons", "extract_subset", "make_subset",
    "median_interval", "parse_params", "peaks_after_data", "points_in", "points_per_night",
    "predicted_snr", "read_folder", "read_photometry", "segment", "shipped_subset",
    "source_flux",
]  # fmt: skip

EWS_COLUMNS = ("HJD", "I_mag", "I_mag_err", "seeing", "sky")
"""The columns of an EWS ``phot.dat`` file (the first three are read)."""

FIT_ROWS = ("Tmax", "tau", "umin", "Amax", "Dmag", "fbl", "I_bl", "I0")
"""The rows of OGLE's point-lens fit in a ``params.dat`` file, each ``value error``."""

DEGENERATE_AMAX = 99999.0
"""OGLE's ``Amax`` where its fit did not converge (with ``umin = 0``)."""

STAR_MATCH_ARCSEC = 1.0
"""Events whose coordinates lie within this many arcseconds are one star."""

_PHOT_SUFFIX = "_phot.dat"
_PARAMS_SUFFIX = "_params.dat"
_HEADER_KEYS = {"Field": "field", "StarNo": "star_no", "RA(J2000.0)": "ra",
                "Dec(J2000.0)": "dec", "Remarks": "remarks"}


# --------------------------------------------------------------------------------------------
# OGLE's fit and one event
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EwsFit:
    """OGLE's own point-source point-lens (PSPL) fit of one event, as its ``params.dat`` says.

    Attributes
    ----------
    tmax : float
        Full HJD of the peak (``Tmax``).
    tau : float
        Einstein time t_E [days] (``tau``).
    umin : float
        Impact parameter u_0 [Einstein radii] (``umin``).
    amax : float
        Peak magnification (``Amax``).
    fbl : float
        Source flux fraction of the baseline (1 = unblended).
    fbl_fixed : bool
        True where OGLE fixed ``fbl`` (its error is 0.000): an assumption, not a fit.
    i0 : float
        OGLE's ``I0``: the I magnitude of the **source** (equal to the baseline magnitude
        ``i_bl`` only when ``fbl = 1``; ``I0 = I_bl - 2.5 log10(fbl)``).
    degenerate : bool
        ``umin <= 0``, ``Amax >= 99999`` or ``tau <= 0``: the fit is not usable.
    i_bl : float
        OGLE's ``I_bl``: the I magnitude of the whole baseline (source and blend).
    dmag : float
        OGLE's ``Dmag``: the peak brightening [mag].
    errors : dict
        Row name (:data:`FIT_ROWS`) -> its error as written.
    """

    tmax: float
    tau: float
    umin: float
    amax: float
    fbl: float
    fbl_fixed: bool
    i0: float
    degenerate: bool
    i_bl: float = math.nan
    dmag: float = math.nan
    errors: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def baseline_mag(self) -> float:
        """I magnitude of the baseline (source and blend): OGLE's ``I_bl``."""
        return self.i_bl

    @property
    def source_mag(self) -> float:
        """I magnitude of the source alone: OGLE's ``I0``."""
        return self.i0

    def magnification(self, hjd: np.ndarray) -> np.ndarray:
        """PSPL magnification ``A(u) = (u^2 + 2) / (u sqrt(u^2 + 4))`` at full HJD ``hjd``.

        ``u(t) = sqrt(umin^2 + ((t - tmax) / tau)^2)``. A degenerate fit (``umin = 0``) gives
        infinity at ``t = tmax``.
        """
        t = np.asarray(hjd, dtype=np.float64)
        u2 = self.umin**2 + ((t - self.tmax) / self.tau) ** 2
        with np.errstate(divide="ignore"):
            return (u2 + 2.0) / np.sqrt(u2 * (u2 + 4.0))


@dataclass(frozen=True)
class EwsEvent:
    """One event of an EWS folder.

    Attributes
    ----------
    name : str
        The file stem, e.g. ``"blg-0001"``.
    photometry_file : Path
        Its ``photometry/<name>_phot.dat``.
    params_file : Path or None
        Its ``params/<name>_params.dat``, None when the folder has none.
    fit : EwsFit or None
        OGLE's fit; None without a params file.
    ra_deg, dec_deg : float or None
        J2000 coordinates [degrees] from the params file.
    field, star_no : str / int or None
        OGLE field (``BLG573.32``) and star number in it.
    star : str
        The star's identity: the coordinates of the first event (by name) of that star,
        ``f"{ra:.5f}{dec:+.5f}"`` (e.g. ``"269.93617-27.72261"``); the name without coordinates.
    duplicate_of : str or None
        The name of the first event (by name) of the same star, None for that first one.
    """

    name: str
    photometry_file: Path
    params_file: Path | None
    fit: EwsFit | None
    ra_deg: float | None
    dec_deg: float | None
    field: str | None
    star_no: int | None
    star: str
    duplicate_of: str | None = None


CITATION = ("OGLE-IV Early Warning System photometry and fits: Udalski et al. 2015, AcA 65, 1 "
            "(the OGLE-IV survey); Udalski 2003, AcA 53, 291 (the EWS)")
"""Whom to cite for results on EWS folders."""


def read_stars(path) -> list[str]:
    """Star identities from a file: one per line (``#`` starts a comment), or a JSON list of
    strings, or a JSON object with a ``"stars"`` list.

    Raises
    ------
    FileNotFoundError
        For a file that is not there.
    ValueError
        For a JSON file that is neither form, naming the file.
    """
    from microlens.core.paths import resolve_path

    path = resolve_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stars file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON (line {error.lineno}, column "
                             f"{error.colno}): {error.msg}") from None
        stars = data.get("stars") if isinstance(data, dict) else data
        if not isinstance(stars, list) or not all(isinstance(s, str) for s in stars):
            raise ValueError(f"{path} must hold a JSON list of star identities (strings) or "
                             "an object with a \"stars\" list")
        return stars
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


def _sexagesimal(text: str, *, hours: bool, where: str) -> float:
    """``hh:mm:ss.ss`` (hours, -> degrees) or ``[+-]dd:mm:ss.s`` (degrees) to degrees."""
    m = re.fullmatch(r"([+-]?)(\d{1,3}):(\d{1,2}):(\d{1,2}(?:\.\d*)?)", text.strip())
    if m is None:
        form = "hh:mm:ss.ss" if hours else "[+-]dd:mm:ss.s"
        raise ValueError(f"{where}: {text!r} is not a sexagesimal coordinate ({form})")
    sign = -1.0 if m.group(1) == "-" else 1.0
    a, b, c = float(m.group(2)), float(m.group(3)), float(m.group(4))
    if b >= 60 or c >= 60 or (hours and (a >= 24 or sign < 0)) or (not hours and a > 90):
        raise ValueError(f"{where}: {text!r} is out of range for "
                         f"{'right ascension' if hours else 'declination'}")
    value = sign * (a + b / 60.0 + c / 3600.0)
    if not hours and abs(value) > 90:
        raise ValueError(f"{where}: {text!r} is out of range for declination")
    return value * 15.0 if hours else value


def parse_params(path: str | os.PathLike) -> tuple[EwsFit, dict]:
    """Read one ``params.dat`` file.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    tuple
        ``(fit, header)``: :class:`EwsFit`, and a dict with ``field`` (str or None),
        ``star_no`` (int or None), ``ra_deg``, ``dec_deg`` (float or None).

    Raises
    ------
    ValueError
        A malformed file: the message names the file and line, and the rows expected
        (:data:`FIT_ROWS`, each ``name value error``).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (an EWS params.dat is text)") from None
    header: dict = {"field": None, "star_no": None, "ra_deg": None, "dec_deg": None}
    rows: dict[str, tuple[float, float]] = {}
    for number, line in enumerate(lines, start=1):
        where = f"{path}, line {number}"
        words = line.split()
        if not words:
            continue
        key = words[0]
        if key in _HEADER_KEYS:
            value = " ".join(words[1:])
            if key == "Field":
                header["field"] = value or None
            elif key == "StarNo" and value:
                if not re.fullmatch(r"\d+", value):
                    raise ValueError(f"{where}: StarNo {value!r} is not a whole number")
                header["star_no"] = int(value)
            elif key == "RA(J2000.0)" and value:
                header["ra_deg"] = _sexagesimal(value, hours=True, where=where)
            elif key == "Dec(J2000.0)" and value:
                header["dec_deg"] = _sexagesimal(value, hours=False, where=where)
            continue
        if key in FIT_ROWS:
            if key in rows:
                raise ValueError(f"{where}: row {key!r} given twice")
            try:
                if len(words) != 3:
                    raise ValueError
                value, error = float(words[1]), float(words[2])
            except ValueError:
                raise ValueError(f"{where}: expected '{key} value error' (two numbers); got "
                                 f"{line.strip()!r}") from None
            if not (math.isfinite(value) and math.isfinite(error)):
                raise ValueError(f"{where}: {key} must be finite; got {line.strip()!r}")
            rows[key] = (value, error)
            continue
        if number == 1 or key.upper().startswith("OGLE-"):
            continue  # the title line: OGLE-2025-BLG-0001
        raise ValueError(f"{where}: unknown row {key!r}; valid rows: "
                         f"{', '.join([*_HEADER_KEYS, *FIT_ROWS])}")
    missing = [k for k in FIT_ROWS if k not in rows]
    if missing:
        raise ValueError(f"{path}: missing fit row(s) {', '.join(missing)}; an EWS params.dat "
                         f"has rows {', '.join(FIT_ROWS)}, each 'name value error'")
    if (header["ra_deg"] is None) != (header["dec_deg"] is None):
        raise ValueError(f"{path}: gives only one of RA(J2000.0), Dec(J2000.0)")
    v = {k: rows[k][0] for k in FIT_ROWS}
    fit = EwsFit(
        tmax=v["Tmax"], tau=v["tau"], umin=v["umin"], amax=v["Amax"], fbl=v["fbl"],
        fbl_fixed=rows["fbl"][1] == 0.0, i0=v["I0"],
        degenerate=v["umin"] <= 0 or v["Amax"] >= DEGENERATE_AMAX or v["tau"] <= 0,
        i_bl=v["I_bl"], dmag=v["Dmag"], errors={k: rows[k][1] for k in FIT_ROWS},
    )  # fmt: skip
    return fit, header


# --------------------------------------------------------------------------------------------
# A folder
# --------------------------------------------------------------------------------------------


def _star_label(ra: float, dec: float) -> str:
    return f"{ra:.5f}{dec:+.5f}"


def _assign_stars(events: list[EwsEvent]) -> list[EwsEvent]:
    """Set ``star`` and ``duplicate_of``: events within STAR_MATCH_ARCSEC are one star."""
    firsts: list[EwsEvent] = []
    ra = np.empty(0)
    dec = np.empty(0)
    out = []
    limit = STAR_MATCH_ARCSEC / 3600.0
    for ev in events:  # sorted by name
        if ev.ra_deg is None:
            out.append(replace(ev, star=ev.name, duplicate_of=None))
            continue
        if ra.size:
            dra = (ra - ev.ra_deg + 180.0) % 360.0 - 180.0
            sep = np.hypot(dra * math.cos(math.radians(ev.dec_deg)), dec - ev.dec_deg)
            hit = int(np.argmin(sep))
            if sep[hit] <= limit:
                first = firsts[hit]
                out.append(replace(ev, star=first.star, duplicate_of=first.name))
                continue
        ev = replace(ev, star=_star_label(ev.ra_deg, ev.dec_deg), duplicate_of=None)
        firsts.append(ev)
        ra = np.append(ra, ev.ra_deg)
        dec = np.append(dec, ev.dec_deg)
        out.append(ev)
    return out


def read_folder(path: str | os.PathLike) -> list[EwsEvent]:
    """The events of a folder in the EWS layout, sorted by name.

    Parameters
    ----------
    path : path
        A folder holding ``photometry/<name>_phot.dat`` and optionally
        ``params/<name>_params.dat``.

    Returns
    -------
    list of EwsEvent
        One per photometry file; ``fit`` None where there is no params file; ``star`` and
        ``duplicate_of`` from the coordinates (see the module docstring).

    Raises
    ------
    FileNotFoundError
        The folder does not exist.
    ValueError
        The folder is not in the EWS layout (no ``photometry/`` folder, no ``*_phot.dat`` file
        in it, a params file without its photometry file), or a params file is malformed (the
        message names the file and line).
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"read_folder: path must be a str or Path; got {path!r}")
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"EWS folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{root} is a file, not a folder in the EWS layout "
                         f"(photometry/<name>{_PHOT_SUFFIX}, params/<name>{_PARAMS_SUFFIX})")
    phot_dir, params_dir = root / "photometry", root / "params"
    if not phot_dir.is_dir():
        found = ", ".join(sorted(p.name for p in root.iterdir())[:8]) or "nothing"
        raise ValueError(f"{root} is not in the EWS layout: it has no photometry/ folder (it "
                         f"holds {found}); expected photometry/<name>{_PHOT_SUFFIX} and "
                         f"optionally params/<name>{_PARAMS_SUFFIX}")
    names = sorted(p.name[: -len(_PHOT_SUFFIX)] for p in phot_dir.iterdir()
                   if p.name.endswith(_PHOT_SUFFIX) and p.is_file())
    if not names:
        raise ValueError(f"{phot_dir} holds no <name>{_PHOT_SUFFIX} file (the EWS layout)")
    params = {}
    if params_dir.is_dir():
        params = {p.name[: -len(_PARAMS_SUFFIX)]: p for p in params_dir.iterdir()
                  if p.name.endswith(_PARAMS_SUFFIX) and p.is_file()}
    orphans = sorted(set(params) - set(names))
    if orphans:
        raise ValueError(f"{params_dir}: params file(s) without a photometry file: "
                         f"{', '.join(orphans[:8])}{' ...' if len(orphans) > 8 else ''}")
    events = []
    for name in names:
        fit, header = None, {"field": None, "star_no": None, "ra_deg": None, "dec_deg": None}
        if name in params:
            fit, header = parse_params(params[name])
        events.append(EwsEvent(
            name=name, photometry_file=phot_dir / f"{name}{_PHOT_SUFFIX}",
            params_file=params.get(name), fit=fit, ra_deg=header["ra_deg"],
            dec_deg=header["dec_deg"], field=header["field"], star_no=header["star_no"],
            star=name,
        ))  # fmt: skip
    return _assign_stars(events)


def read_photometry(event: EwsEvent, **kw) -> Photometry:
    """The event's light curve: :func:`microlens.photometry.files.read_file` with the EWS columns.

    Columns 0, 1, 2 (``HJD I_mag I_mag_err``), ``time_system="HJD"``, ``kind="mag"``, named
    after the event; the flux is in units of the baseline the reader estimates
    (``Photometry.baseline_mag``), so the reader's checks and ``choices`` apply.

    Parameters
    ----------
    event : EwsEvent
        From :func:`read_folder`.
    **kw
        Other :func:`~microlens.photometry.files.read_file` options (``on_duplicate``,
        ``min_points``, ``baseline_mag`` ...).
    """
    if not isinstance(event, EwsEvent):
        raise TypeError(f"read_photometry: expected an EwsEvent; got {type(event).__name__}")
    kw.setdefault("name", event.name)
    return read_file(event.photometry_file, columns=(0, 1, 2), time_system="HJD", kind="mag",
                     **kw)


# --------------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------------


def _check_photometry(photometry) -> Photometry:
    if not isinstance(photometry, Photometry):
        raise TypeError(f"expected a Photometry; got {type(photometry).__name__}")
    return photometry


def event_end(event: EwsEvent, photometry: Photometry) -> int:
    """Number of leading points with HJD <= ``Tmax + 2 tau``: what a stream had seen by then.

    Without a fit, the whole curve (``len(photometry)``). A degenerate fit still has its
    ``Tmax`` and ``tau`` and is used as it is (``tau <= 0`` gives the points up to ``Tmax``).
    """
    _check_photometry(photometry)
    if event.fit is None:
        return len(photometry)
    end = event.fit.tmax + 2.0 * max(event.fit.tau, 0.0)
    return int(np.searchsorted(photometry.absolute_times(), end, side="right"))


def source_flux(event: EwsEvent, photometry: Photometry) -> float:
    """The flux of the fit's source in the photometry's flux units (its baseline = 1).

    ``F_s = 10**(-0.4 (I0 - m_b)) = fbl * 10**(-0.4 (I_bl - m_b))`` with ``m_b`` the
    photometry's own baseline magnitude (``Photometry.baseline_mag``) and OGLE's ``I0`` the
    source magnitude. NaN without a fit.
    """
    _check_photometry(photometry)
    if event.fit is None:
        return math.nan
    zp = float(photometry.baseline_mag[0])
    return 10.0 ** (-0.4 * (event.fit.i0 - zp))


def predicted_snr(event: EwsEvent, photometry: Photometry) -> np.ndarray:
    """Cumulative S/N of the signal OGLE's fit predicts, after each point.

    Per point ``s_i = F_s (A(t_i) - 1) / sigma_F,i`` (``F_s``: :func:`source_flux`;
    ``sigma_F,i``: the point's flux error); returned ``sqrt(cumsum(s_i**2))``. Zeros without
    a fit or with a degenerate one (it predicts nothing usable).
    """
    _check_photometry(photometry)
    if event.fit is None or event.fit.degenerate:
        return np.zeros(len(photometry))
    excess = event.fit.magnification(photometry.absolute_times()) - 1.0
    s = source_flux(event, photometry) * excess / photometry.flux_err
    return np.sqrt(np.cumsum(s * s))


def baseline_end(event: EwsEvent, photometry: Photometry, max_snr: float = 2.0) -> int:
    """Number of leading points over which OGLE's fit predicts a cumulative S/N below
    ``max_snr``: the end of the event-free baseline segment.

    See :func:`predicted_snr` for the S/N; the segment is the longest prefix whose cumulative
    S/N is ``< max_snr`` (one more point reaches it). 0 for degenerate fits and events without a
    fit: nothing says where their event starts.

    Parameters
    ----------
    event : EwsEvent
    photometry : Photometry
        The event's curve (:func:`read_photometry`).
    max_snr : float
        The S/N the segment stays below (> 0).
    """
    if isinstance(max_snr, bool) or not isinstance(max_snr, int | float) \
            or not math.isfinite(max_snr) or max_snr <= 0:
        raise ValueError(f"max_snr must be a finite number > 0; got {max_snr!r}")
    _check_photometry(photometry)
    if event.fit is None or event.fit.degenerate:
        return 0
    cum = predicted_snr(event, photometry)
    return int(np.searchsorted(cum, max_snr, side="left"))


def baseline_segments(folder, stars=None, max_snr: float = 2.0):
    """Each star's baseline segment: ``(event, segment)`` for the first event by name of every
    star with a usable fit (no params file or a degenerate fit: left out), renormalised to its
    own baseline (:func:`baseline_end`, :func:`segment`).

    Parameters
    ----------
    folder : path
        A folder in the EWS layout.
    stars : iterable of str, optional
        Only these stars (:attr:`EwsEvent.star`).
    max_snr : float
        Where each baseline ends.
    """
    wanted = None if stars is None else set(stars)
    seen: set[str] = set()
    for event in sorted(read_folder(folder), key=lambda e: e.name):
        if event.fit is None or event.fit.degenerate or event.star in seen:
            continue
        if wanted is not None and event.star not in wanted:
            continue
        seen.add(event.star)
        photometry = read_photometry(event)
        yield event, segment(photometry, baseline_end(event, photometry, max_snr), "_baseline")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=a.dtype, copy=True)
    a.setflags(write=False)
    return a


def segment(photometry: Photometry, n: int, name_suffix: str) -> Photometry:
    """The first ``n`` points, renormalised to the segment's own baseline.

    Flux and flux errors of each observatory are divided by the baseline
    :func:`~microlens.photometry.files.estimate_baseline_flux` finds on the segment's points of that
    observatory, so the segment looks like a file a stream had at that time; ``baseline_mag`` (and
    each file summary's baseline) moves with it. The name gets ``name_suffix``.

    Parameters
    ----------
    photometry : Photometry
    n : int
        Points kept, ``1 <= n <= len(photometry)``.
    name_suffix : str
        Appended to the name, e.g. ``"_baseline"``.
    """
    _check_photometry(photometry)
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"segment: n must be an int; got {n!r} ({type(n).__name__})")
    if not 1 <= n <= len(photometry):
        raise ValueError(f"segment: n={n} must be within 1..{len(photometry)} (the points of "
                         f"{photometry.name})")
    if not isinstance(name_suffix, str):
        raise TypeError(f"segment: name_suffix must be a str; got {name_suffix!r}")
    n = int(n)
    times = photometry.times[:n]
    flux = photometry.flux[:n].copy()
    err = photometry.flux_err[:n].copy()
    obs = photometry.observatory[:n]
    mags = list(photometry.baseline_mag)
    files = list(photometry.files)
    for code in np.unique(obs):
        sel = obs == code
        b = estimate_baseline_flux(flux[sel], times[sel])
        if not b > 0:
            raise ValueError(f"segment: the baseline of the first {n} points of "
                             f"{photometry.name} is {b!r} (not > 0): cannot renormalise")
        flux[sel] /= b
        err[sel] /= b
        shift = -2.5 * math.log10(b)
        mags[code] = mags[code] + shift
        if code < len(files):
            f = files[code]
            base = f.baseline + shift if f.kind == "mag" else f.baseline * b
            files[code] = replace(f, baseline=base, n_points=int(sel.sum()))
    return replace(
        photometry, times=_readonly(times), flux=_readonly(flux), flux_err=_readonly(err),
        observatory=_readonly(obs), baseline_mag=tuple(mags), files=tuple(files),
        name=f"{photometry.name}{name_suffix}",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# What the benchmark asks of each event
# --------------------------------------------------------------------------------------------


def points_in(photometry: Photometry, lo: float, hi: float) -> int:
    """Number of points with full HJD in ``[lo, hi]`` (e.g. ``Tmax - tau, Tmax``)."""
    t = _check_photometry(photometry).absolute_times()
    return int(np.searchsorted(t, hi, side="right") - np.searchsorted(t, lo, side="left"))


def peaks_after_data(event: EwsEvent, photometry: Photometry) -> bool:
    """Whether the fit's ``Tmax`` lies after the last observation (False without a fit)."""
    t = _check_photometry(photometry).absolute_times()
    return event.fit is not None and event.fit.tmax > float(t[-1])


def points_per_night(photometry: Photometry, n: int | None = None) -> float:
    """Median number of points per observed night over the first ``n`` points (all: None).

    A night is one Julian day (``floor(HJD)``): JD days start at noon UT, morning in Chile, so
    no observing night at Las Campanas straddles two. Nights without points are not counted.
    """
    t = _check_photometry(photometry).absolute_times()[: n if n is not None else None]
    if t.size == 0:
        return math.nan
    _, counts = np.unique(np.floor(t), return_counts=True)
    return float(np.median(counts))


def median_interval(photometry: Photometry, n: int | None = None) -> float:
    """Median time between consecutive points [days] over the first ``n`` points (all: None);
    NaN with fewer than two."""
    t = _check_photometry(photometry).times[: n if n is not None else None]
    return float(np.median(np.diff(t))) if t.size >= 2 else math.nan


def exclusion_reasons(event: EwsEvent, photometry: Photometry | None = None) -> tuple[str, ...]:
    """Why an event may be left out of a benchmark, by the module's rules (empty: none).

    ``"no params file"``, ``"degenerate fit"``, ``"duplicate of <name>"`` and, with its
    photometry, ``"peak after the last observation"``. The caller decides which apply.
    """
    out = []
    if event.fit is None:
        out.append("no params file")
    elif event.fit.degenerate:
        out.append("degenerate fit")
    if event.duplicate_of is not None:
        out.append(f"duplicate of {event.duplicate_of}")
    if photometry is not None and peaks_after_data(event, photometry):
        out.append("peak after the last observation")
    return tuple(out)


# --------------------------------------------------------------------------------------------
# The shipped subset
# --------------------------------------------------------------------------------------------

SUBSET_ARCHIVE = "data/real/ogle_ews_2025_subset.tar.xz"
"""The subset of the 2025 season shipped with the project (relative to the project root)."""

SUBSET_FOLDER = "outputs/real_data/ogle_ews_2025_subset"
"""Where :func:`shipped_subset` extracts it (relative to the project root)."""

SUBSET_RECORD = "SUBSET.json"
"""The record inside a subset: source, seed, events and why each required one is there."""

_EXTRACTED = ".extracted.json"
_MAX_SUBSET_BYTES = 5_000_000


def _required_events(events: list[EwsEvent]) -> dict[str, str]:
    """Name -> why, for the events a subset keeps first: one duplicate-star pair, one
    degenerate fit, one event without params (the first of each by name)."""
    need: dict[str, str] = {}
    dup = next((e for e in events if e.duplicate_of is not None), None)
    if dup is not None:
        need[dup.duplicate_of] = f"duplicate-star pair with {dup.name}"
        need[dup.name] = f"duplicate of {dup.duplicate_of}"
    degenerate = next((e for e in events if e.fit is not None and e.fit.degenerate), None)
    if degenerate is not None:
        need.setdefault(degenerate.name, "degenerate fit")
    bare = next((e for e in events if e.fit is None), None)
    if bare is not None:
        need.setdefault(bare.name, "no params file")
    return need


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def make_subset(source: str | os.PathLike, destination: str | os.PathLike, n: int, seed: int,
                *, max_bytes: int = _MAX_SUBSET_BYTES, preset: int = 9) -> dict:
    """Draw ``n`` events of an EWS folder into a reproducible ``.tar.xz`` archive.

    The first duplicate-star pair, the first degenerate fit and the first event without a
    params file (by name) are kept first, as far as ``n`` allows; the rest are drawn without
    replacement from the other events with ``numpy.random.default_rng(seed)``. The archive
    holds one folder named after it (``<stem>/photometry``, ``<stem>/params`` and
    :data:`SUBSET_RECORD`), with fixed member times and owners: the same source, ``n`` and
    ``seed`` give the same bytes.

    Parameters
    ----------
    source : path
        A folder in the EWS layout (:func:`read_folder`).
    destination : path
        The archive to write, ending in ``.tar.xz`` (written atomically).
    n : int
        Events in the subset (1 .. the events in ``source``).
    seed : int
        The seed of the draw (>= 0), recorded in the archive.
    max_bytes : int
        The largest archive accepted; a larger one is not written (ValueError: choose a smaller
        ``n``).
    preset : int
        The xz compression preset (0..9; the shipped subset used 9). The same preset gives the
        same bytes.

    Returns
    -------
    dict
        The record written as :data:`SUBSET_RECORD` plus ``bytes`` (the archive's size).
    """
    destination = Path(destination)
    if not destination.name.endswith(".tar.xz"):
        raise ValueError(f"make_subset: destination {destination} must end in .tar.xz")
    events = read_folder(source)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(events):
        raise ValueError(f"make_subset: n={n!r} must be an int within 1..{len(events)} (the "
                         f"events of {source})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"make_subset: seed={seed!r} must be an int >= 0")
    if isinstance(preset, bool) or preset not in range(10):
        raise ValueError(f"make_subset: preset={preset!r} must be an int within 0..9")
    need = _required_events(events)
    chosen = list(need)[:n]
    rest = [e.name for e in events if e.name not in need]
    rng = np.random.default_rng(seed)
    chosen += [rest[i] for i in rng.choice(len(rest), size=n - len(chosen), replace=False)]
    chosen = sorted(chosen)
    by_name = {e.name: e for e in events}
    stem = destination.name[: -len(".tar.xz")]
    record = {
        "source": Path(source).name, "n": n, "seed": seed, "events": chosen,
        "required": {k: v for k, v in need.items() if k in chosen},
        "drawn_with": "numpy.random.default_rng(seed).choice over the other events by name",
        "made_by": "microlens.photometry.ews.make_subset",
    }  # fmt: skip
    with atomic_path(destination) as tmp:
        with tarfile.open(tmp, "w:xz", preset=preset) as tar:
            _tar_add(tar, f"{stem}/{SUBSET_RECORD}",
                     (json.dumps(record, indent=2) + "\n").encode())
            for name in chosen:
                ev = by_name[name]
                _tar_add(tar, f"{stem}/photometry/{ev.photometry_file.name}",
                         ev.photometry_file.read_bytes())
                if ev.params_file is not None:
                    _tar_add(tar, f"{stem}/params/{ev.params_file.name}",
                             ev.params_file.read_bytes())
        size = tmp.stat().st_size
        if size > max_bytes:
            raise ValueError(f"make_subset: {n} events make {size:,} bytes, over max_bytes="
                             f"{max_bytes:,}; choose a smaller n (nothing was written)")
    return {**record, "bytes": size}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_extracted(folder: Path, digest: str) -> bool:
    try:
        stamp = json.loads((folder / _EXTRACTED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("archive_sha256") == digest \
        and (folder / MARKER).is_file()


def _unpack(archive: Path, into: Path) -> None:
    """Write the archive's regular files into ``into``, without their top folder; refuses
    absolute names, ``..`` and anything but files and folders."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.name.startswith("/") or ".." in parts or not (member.isfile()
                                                                     or member.isdir()):
                raise ValueError(f"{archive}: member {member.name!r} is not a plain file or "
                                 "folder inside the archive's folder; not extracted")
            if member.isdir() or len(parts) < 2:
                continue
            target = into.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def extract_subset(archive: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Extract a subset archive (:func:`make_subset`) into ``destination`` once.

    A ``destination`` extracted from the same archive (same SHA-256, recorded in
    ``.extracted.json``) is reused as it is. Otherwise the archive is unpacked into a temporary
    folder beside it (marked as the project's with :func:`microlens.core.removal.mark_project_dir`
    before anything is written), and that folder is renamed onto ``destination``; an older or
    half-written ``destination`` is first deleted, but only if the project made it
    (:func:`microlens.core.removal.remove_project_dir`: a folder of the user's is refused, not
    deleted).

    Returns
    -------
    Path
        ``destination``: a folder in the EWS layout.
    """
    archive, destination = Path(archive), Path(destination)
    if not archive.is_file():
        raise FileNotFoundError(f"subset archive {archive} not found")
    digest = _sha256(archive)
    if _is_extracted(destination, digest):
        return destination
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    remove_project_dir(tmp, "dataset")  # a leftover of this process id
    try:
        mark_project_dir(tmp, "dataset")
        _unpack(archive, tmp)
        (tmp / _EXTRACTED).write_text(json.dumps({"archive": archive.name,
                                                  "archive_sha256": digest}) + "\n")
        if _is_extracted(destination, digest):  # another process finished first
            return destination
        remove_project_dir(destination, "dataset")
        try:
            os.rename(tmp, destination)
        except OSError:
            if not _is_extracted(destination, digest):  # not another process's same result
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return destination


def shipped_subset(destination: str | os.PathLike | None = None) -> Path:
    """The shipped subset of the OGLE EWS 2025 season, extracted once; a folder in the EWS
    layout.

    :data:`SUBSET_ARCHIVE` (``data/real/README.md`` says how it was drawn; cite Udalski et al.
    2015, AcA 65, 1 and Udalski 2003, AcA 53, 291 where you show results on it) is extracted
    with :func:`extract_subset` into ``destination`` (default :data:`SUBSET_FOLDER` under the
    project root); later calls reuse it.
    """
    archive = PROJECT_ROOT / SUBSET_ARCHIVE
    if not archive.is_file():
        raise FileNotFoundError(f"the shipped subset {archive} is missing: it is part of the "
                                "repository (git checkout it), or download a season with "
                                "microlens.photometry.ews_download.download_season")
    return extract_subset(archive, PROJECT_ROOT / SUBSET_FOLDER if destination is None
                          else Path(destination))


# --------------------------------------------------------------------------------------------
# What a folder holds
# --------------------------------------------------------------------------------------------

MIN_BASELINE_POINTS = 50
"""The baseline segments :func:`summarize_folder` counts as long enough to use."""


def summarize_folder(path: str | os.PathLike, max_snr: float = 2.0) -> dict:
    """Count what the module's rules find in a folder, and how long its baseline segments are.

    Returns
    -------
    dict
        ``events``, ``points`` (all files), ``no_params``, ``degenerate``, ``fbl_fixed``,
        ``duplicates`` (events whose star is an earlier event's), ``peak_after_data`` and
        ``no_points_before_peak`` (no point in ``[Tmax - tau, Tmax]``) among usable fits,
        ``baseline_ge_50`` (usable fits whose baseline segment has at least
        :data:`MIN_BASELINE_POINTS` points), ``baseline_gap_tau``: percentiles (0, 5, 25, 50,
        75, 95, 100) of ``(Tmax - t_last) / tau`` with ``t_last`` the last point of each
        non-empty baseline segment, ``points_per_night`` and ``baseline_interval_days``:
        medians over events of :func:`points_per_night` (whole curve) and of
        :func:`median_interval` of the baseline segment, and ``read_seconds``.
    """
    import time

    start = time.perf_counter()
    events = read_folder(path)
    phots = [read_photometry(e) for e in events]
    read_seconds = time.perf_counter() - start
    usable = [(e, p) for e, p in zip(events, phots, strict=True)
              if e.fit is not None and not e.fit.degenerate]
    ends = [baseline_end(e, p, max_snr) for e, p in usable]
    gaps = [(e.fit.tmax - float(p.absolute_times()[n - 1])) / e.fit.tau
            for (e, p), n in zip(usable, ends, strict=True) if n > 0]
    intervals = [median_interval(p, n) for (_, p), n in zip(usable, ends, strict=True) if n > 1]
    q = (0, 5, 25, 50, 75, 95, 100)
    return {
        "folder": str(path), "events": len(events), "points": sum(len(p) for p in phots),
        "no_params": sum(e.fit is None for e in events),
        "degenerate": sum(e.fit is not None and e.fit.degenerate for e in events),
        "fbl_fixed": sum(e.fit is not None and e.fit.fbl_fixed for e in events),
        "duplicates": sum(e.duplicate_of is not None for e in events),
        "usable_fits": len(usable),
        "peak_after_data": sum(peaks_after_data(e, p) for e, p in usable),
        "no_points_before_peak": sum(points_in(p, e.fit.tmax - e.fit.tau, e.fit.tmax) == 0
                                     for e, p in usable),
        "max_snr": max_snr,
        "baseline_ge_50": sum(n >= MIN_BASELINE_POINTS for n in ends),
        "baseline_gap_tau": dict(zip(map(str, q), np.percentile(gaps, q).round(2).tolist(),
                                     strict=True)) if gaps else {},
        "points_per_night": float(np.median([points_per_night(p) for p in phots])),
        "baseline_interval_days": float(np.median(intervals)) if intervals else math.nan,
        "read_seconds": round(read_seconds, 2),
    }  # fmt: skip


def main(argv: list[str]) -> int:
    """``python -m microlens.photometry.ews [FOLDER] [--max-snr 2.0]``: print
    :func:`summarize_folder` as
    JSON (default folder: the shipped subset)."""
    import argparse

    from microlens.core.cli import TerminalHelpFormatter

    parser = argparse.ArgumentParser(prog="python -m microlens.photometry.ews",
                                     description=main.__doc__,
                                     formatter_class=TerminalHelpFormatter)
    parser.add_argument("folder", nargs="?", help="a folder in the EWS layout")
    parser.add_argument("--max-snr", type=float, default=2.0)
    args = parser.parse_args(argv)
    folder = args.folder if args.folder is not None else shipped_subset()
    print(json.dumps(summarize_folder(folder, args.max_snr), indent=2))
    return 0


if __name__ == "__main__":
    import sys

    from microlens.core.cli import command_line

    sys.exit(command_line(main)())
