"""Real survey photometry in: files (text, CSV, IPAC tables) and MulensModel data to model arrays.

Every reader returns a :class:`Photometry` holding the same arrays the simulator produces:
``times`` [days], ``flux`` in units of the baseline flux (``F = 1`` with no event) and 1-sigma
``flux_err``, all float64 with strictly increasing times. Times are stored relative to
``reference_epoch`` (a full Julian date, 2450000.0 by default): ``absolute = reference_epoch +
times``, so that float32 consumers keep sub-minute precision.

The rules below are the documented behaviour (``docs/photometry.md`` repeats them).

Formats
    Whitespace- or comma-separated columns (a line with a comma is split on commas), ``#``
    comment lines, a text header line naming the columns (a non-numeric line before the first
    data line; failing that, a ``#`` comment line just before the data with as many words as the
    data has columns), and IPAC tables (``\\KEY = value`` keyword lines, ``|name|name|`` header
    lines, then data; rows with blank cells are cut at the ``|`` positions). A line before the
    data whose first cell does not start like a number is a header or title line; the first
    line starting with a number (``2019-03-01T...`` included) starts the data. Extra columns
    are ignored. ``null``/``nan``/empty cells read as NaN (then dropped as ``non_finite``).
    Binary or compressed files, and files with no data line, are refused saying so.

Columns, when ``columns=`` is not given (what was chosen is in ``choices``)
    A header naming the columns is used (case-insensitive, suffixes allowed): error names first
    (``err``, ``error``, ``sigma``, ``uncertainty``, ``e_mag``, ``mag_err``, ``flux_err`` ...), then
    time names (``HJD``, ``JD``, ``MJD``, ``BJD``, ``HJD-2450000``, ``time``, ``t``, ``date`` ...),
    then values (a name containing ``mag`` -> magnitude; ``flux``/``count`` -> flux). The first time
    column is the time; a magnitude column is preferred over flux columns (magnitudes need no
    reference flux: KMTNet files carry both); the error is the error column of the value's kind
    (else a generic one) nearest after the value. Several candidates of one role warn. A header
    naming no role at all, or no header: columns 0, 1, 2. Explicit ``columns=`` are read as given,
    but one that contradicts its header name (a ``flux`` column as the time) is an error. Without
    explicit columns, a value column that is all positive with a median below its errors' (a ``time,
    error, mag`` layout), or that increases line by line through full Julian dates, is refused (give
    ``columns=``).

Kind (magnitudes or flux), when not given
    1. the value column's name: containing ``mag`` -> ``"mag"``; containing ``flux`` or
       ``count`` -> ``"flux"``; 2. an IPAC ``VALUE_UNITS``/``MAXIMUM_VALUE_UNITS`` keyword
       (``mag`` or ``counts``/``flux``); 3. the values: 5th-95th percentiles outside 5..30 ->
       ``"flux"``; within, a median error below 0.5 -> ``"mag"``; 0.5 up to 2 -> ``"mag"`` with
       a warning (a faint source; large errors do not overrule the values); 2 or more -> an
       error naming ``kind=`` (both readings plausible). Magnitudes, however the kind was
       decided, must have a median within :data:`MAG_RANGE` (0..40) and no value more than 25
       mag from it (placeholders such as 99.999), else an error naming ``kind=``.

Time systems (:data:`TIME_SYSTEMS`), when not given
    The frame (JD, HJD or BJD) comes from an IPAC ``TIME_REFERENCE_FRAME`` keyword, else from
    the time column's name (a name that is itself a system, e.g. ``HJD-2450000``, is used
    as is); without a hint the frame is HJD (the usual microlensing survey convention). The
    offset comes from the median time: > 2,400,000 -> full date (``HJD``, ``JD``, ``BJD``);
    2,000-12,000 -> ``<frame>-2450000`` (``HJD'``); 40,000-70,000 -> ``MJD`` (or
    ``HJD-2400000``/``BJD-2400000`` when the frame hint says HJD/BJD); anything else is an
    error asking for ``time_system=``. Decimal years: times with a median within 1900-2100
    spanning under 200 could be years as well as HJD' days (a survey's years, or a follow-up
    night's days), so without a frame in the header they are refused, naming
    ``time_system=`` and how to convert years (not read: ``JD = 2451545.0 + 365.25 (year -
    2000)``); a time column named ``year`` is refused the same way. What was inferred and
    why is in ``choices``. Absolute times must fall within JD 2,400,000-2,500,000.
    JD, HJD and BJD differ by up to ~8 minutes (light travel time across the Earth's orbit, plus
    TDB-UTC for BJD): they are treated as the same time axis and **no barycentric or
    heliocentric correction is computed**.

Baseline (:func:`estimate_baseline_flux`), when neither ``baseline_mag`` nor ``baseline_flux``
    is given: in linear flux, the noise scale ``sigma`` is the robust scatter of consecutive
    differences (time order); the start is the densest value (most points within +-sigma) among
    the faintest half of the points; then the median of the points within +-2 sigma of the
    estimate, iterated to convergence. Microlensing only brightens, so the faint-side mode is the
    baseline even when the curve starts mid-event or the event holds most of the points, as
    long as some points lie at baseline. Magnitudes: ``F = 10**(-0.4 (m - m_base))``,
    ``sigma_F = F ln(10)/2.5 sigma_m``; flux: ``F = (f + flux_offset) / f_base``,
    ``sigma_F = sigma_f / f_base``. A flux baseline that is not positive and above the per-point
    scatter is an error (difference photometry: give ``flux_offset=`` or ``baseline_flux=``).

Drops (counted per reason in :attr:`Photometry.dropped`)
    ``bad_line`` (non-numeric data line, only with ``on_bad_line="drop"``; error by default),
    ``non_finite`` (NaN/inf time, value or error), ``non_positive_error`` (error <= 0) - both
    errors instead with ``strict=True`` -, ``duplicate_time`` (repeated time in one file, only
    with ``on_duplicate="drop"``, keeps the first; error by default), ``bad_flag`` (points
    flagged bad in MulensData), ``duplicate_time_across_files`` (combining: a point at exactly
    the time of a point of an earlier-listed file is dropped). Unsorted times are sorted and the
    number of out-of-order steps is reported in :attr:`Photometry.n_reordered`. A file losing
    more than :data:`DROP_WARNING_FRACTION` (5 %) of its data lines to the first four reasons
    gives a :class:`PhotometryWarning` naming the file, the counts and the remedy
    (``strict=True``); fewer stay counted in ``dropped`` only. A last line without a line end
    that is shorter than the one before warns (the file looks truncated).

Options
    Every option is checked: types (bools must be bools, numbers must be finite real numbers,
    ``min_points`` an int >= 1), ranges (``baseline_mag`` within 0..40, ``baseline_flux`` > 0,
    ``reference_epoch`` within 0..2,500,000), ``columns`` 3 distinct items; a wrong type is a
    ``TypeError`` naming the option and the expected type. Options without effect warn
    (``flux_offset`` on magnitudes, ``main=`` without ``combine="main"``). Keys of per-file
    mappings must match a file (or be ``"*"``), else an error listing the files.

Several files (:func:`read_event`)
    Each file is normalised to its own baseline, then ``combine="all"`` merges every point sorted by
    time (``observatory`` codes index ``observatories``) and ``combine="main"`` keeps the file with
    the most usable points (or the one named by ``main=``). In a folder, files that are not
    photometry tables (binary, or no line starting with a number: ``notes.txt``) are skipped with a
    warning and listed in ``excluded``; named explicitly they are an error. A folder passed to
    :func:`read_file` is an error pointing to :func:`read_event`. Space-based files (a name
    containing ``spitzer``, or listed in ``space=``) see the event from elsewhere (parallax):
    excluded by default with a note, included with ``include_space=True``. Per-file normalisation
    keeps each observatory's own blending: curves from different bands are not a single ``F(t)``.

No pickle is used anywhere; files are read as text.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_REFERENCE_EPOCH", "DROP_REASONS", "DROP_WARNING_FRACTION", "KINDS", "MAG_RANGE",
    "TIME_SYSTEMS", "FileSummary", "Photometry", "PhotometryWarning", "ShippedEvent",
    "estimate_baseline_flux", "from_mulens_data", "infer_kind", "infer_time_system",
    "read_event", "read_file", "read_shipped_event", "shipped_data_dir", "shipped_events",
]  # fmt: skip

DEFAULT_REFERENCE_EPOCH = 2450000.0
"""Default ``reference_epoch``: output times are days after JD 2450000.0 (HJD' style)."""

MAG_TO_FLUX = math.log(10.0) / 2.5
"""sigma_F / F per magnitude of error."""

TIME_SYSTEMS: dict[str, float] = {
    "JD": 0.0,
    "HJD": 0.0,
    "BJD": 0.0,
    "JD-2450000": 2450000.0,
    "HJD-2450000": 2450000.0,
    "BJD-2450000": 2450000.0,
    "JD-2400000": 2400000.0,
    "HJD-2400000": 2400000.0,
    "BJD-2400000": 2400000.0,
    "MJD": 2400000.5,
}
"""Canonical time systems -> the number added to a file's times to get a full Julian date."""

_ALIASES = {
    "HJD'": "HJD-2450000", "BJD_TDB": "BJD", "BJD_TDB-2450000": "BJD-2450000",
    "BJD'": "BJD-2450000", "JD'": "JD-2450000", "RJD": "JD-2400000",
}  # fmt: skip

KINDS = ("mag", "flux")
DROP_REASONS = (
    "bad_line", "non_finite", "non_positive_error", "duplicate_time", "bad_flag",
    "duplicate_time_across_files",
)  # fmt: skip
_COMBINE = ("all", "main")
_ON_BAD_LINE = ("error", "drop")
_ON_DUPLICATE = ("error", "drop")
_JD_RANGE = (2_400_000.0, 2_500_000.0)
_NULLS = {"", "null", "nan", "none", "na", "n/a"}
_KNOWN_SUFFIXES = {".txt", ".tbl", ".dat", ".csv", ".pysis", ".phot", ".lc"}
_SKIP_FILE = re.compile(r"readme|^\.", re.IGNORECASE)
_NUMBER_START = re.compile(r"[+-]?\.?\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

MAG_RANGE = (0.0, 40.0)
"""Magnitudes accepted: a baseline_mag, and the median of a magnitude column, lie within this."""
MAG_VALUE_RANGE = (5.0, 30.0)
"""Inference: values whose 5th-95th percentiles lie within this range read as magnitudes."""
MAG_ERROR_LARGE = 0.5
"""Inference: a median magnitude error from here to MAG_ERROR_LIMIT is read as magnitudes with
a warning (faint sources)."""
MAG_ERROR_LIMIT = 2.0
"""Inference: values in MAG_VALUE_RANGE with a median error above this are refused (kind=)."""
MAG_MAX_DEVIATION = 25.0
"""A magnitude this far from the median one is not a magnitude (placeholders such as 99.999)."""
DROP_WARNING_FRACTION = 0.05
"""A file whose dropped points exceed this share of its data lines warns (names reasons)."""
_WARNED_DROPS = ("bad_line", "non_finite", "non_positive_error", "duplicate_time")
_YEARS = (1900.0, 2100.0)
_YEAR_MAX_SPAN = 200.0
_YEAR_REMEDY = (
    "convert them to JD (JD = 2451545.0 + 365.25 * (year - 2000.0) for Julian years; "
    "calendar-year fractions differ by under a day) and give time_system='JD'"
)


class PhotometryWarning(UserWarning):
    """Something in a photometry source the reader handled but the user should know about."""


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSummary:
    """How one source (file or MulensData) was read.

    ``baseline`` is in the source's own units (a magnitude for ``kind="mag"``, a flux for
    ``kind="flux"``, after ``flux_offset``); ``n_points`` counts the points kept from it.
    ``choices`` says what the reader chose and why (columns, time system, kind, baseline).
    """

    source: str
    observatory: str
    n_points: int
    time_system: str
    time_system_inferred: bool
    kind: str
    kind_inferred: bool
    baseline: float
    baseline_inferred: bool
    columns: tuple[str, ...]
    dropped: dict[str, int]
    n_reordered: int
    notes: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    @property
    def baseline_mag(self) -> float:
        """Baseline magnitude (NaN for flux input)."""
        return self.baseline if self.kind == "mag" else math.nan


@dataclass(frozen=True, eq=False)
class Photometry:
    """A light curve in baseline-flux units, ready for the classifiers.

    Attributes
    ----------
    times, flux, flux_err : numpy.ndarray
        float64, read-only; days after ``reference_epoch``, strictly increasing; flux relative to
        each observatory's baseline; 1-sigma errors (> 0).
    observatory : numpy.ndarray
        int64 code per point, an index into ``observatories``.
    observatories : tuple of str
        Observatory (dataset) names, one per source used.
    reference_epoch : float
        Full Julian date of ``times == 0``.
    time_system : str
        The sources' time system (several joined with ``","``; all are one axis, see module doc).
    time_system_inferred, kind_inferred : bool
        Whether any source's time system / kind was inferred rather than given.
    kind : str
        ``"mag"`` or ``"flux"`` input (``"mixed"`` when sources differ).
    baseline_mag : tuple of float
        Per observatory baseline magnitude (NaN for flux input).
    source_files : tuple of str
        The sources used, one per observatory.
    dropped : dict
        Reason -> number of points dropped (only reasons that occurred).
    n_reordered : int
        Out-of-order steps that were sorted.
    name : str
        Event or dataset name.
    files : tuple of FileSummary
        Per-source details.
    excluded : tuple of (str, str)
        Sources read or found but not used, with the reason.
    notes : tuple of str
        Human-readable notes (exclusions, policies applied).
    choices : tuple of str
        What was chosen for each source and why (columns, time system, kind, baseline, sorting),
        each prefixed with the observatory name.
    """

    times: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray
    observatory: np.ndarray
    observatories: tuple[str, ...]
    reference_epoch: float
    time_system: str
    time_system_inferred: bool
    kind: str
    kind_inferred: bool
    baseline_mag: tuple[float, ...]
    source_files: tuple[str, ...]
    dropped: dict[str, int]
    n_reordered: int
    name: str
    files: tuple[FileSummary, ...] = ()
    excluded: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.times.size)

    def absolute_times(self) -> np.ndarray:
        """Full Julian dates (float64) of the points: ``reference_epoch + times``."""
        return self.reference_epoch + self.times

    def to_arrays(self, origin: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float32 ``times, flux, flux_err`` for a model.

        Parameters
        ----------
        origin : float
            Days after ``reference_epoch`` subtracted from the times before the cast (e.g.
            ``p.times[0]`` to start at 0 like the simulator). float32 resolves ~5e-4 d at
            ``|t| ~ 8000`` d, ~1e-5 d at ``|t| ~ 100`` d.

        Returns
        -------
        tuple of numpy.ndarray
            Copies as float32.
        """
        return (
            (self.times - origin).astype(np.float32),
            self.flux.astype(np.float32),
            self.flux_err.astype(np.float32),
        )


@dataclass(frozen=True)
class ShippedEvent:
    """A real event shipped with MulensModel (``MulensModel/data/photometry_files``).

    ``files`` are the ground-based data files used; ``excluded_files`` pairs each other data file
    with why it is left out; ``published_class`` is in this project's scheme (0 no event,
    1 single lens, 2 binary lens, triple lenses included).
    """

    name: str
    directory: Path
    files: tuple[str, ...]
    excluded_files: tuple[tuple[str, str], ...]
    published_class: int
    published_note: str
    reference: str

    @property
    def paths(self) -> tuple[Path, ...]:
        """Full paths of ``files``."""
        return tuple(self.directory / f for f in self.files)


# --------------------------------------------------------------------------------------------
# Option checks and inference rules
# --------------------------------------------------------------------------------------------


def _warn(message: str) -> None:
    warnings.warn(message, PhotometryWarning, stacklevel=4)


def _canonical_system(name: str) -> str | None:
    key = re.sub(r"\s+", "", str(name)).upper()
    key = key.replace("−", "-")
    for alias, canon in _ALIASES.items():
        if key == alias.upper():
            return canon
    return key if key in TIME_SYSTEMS else None


def _check_time_system(name: Any, where: str = "") -> str:
    if not isinstance(name, str):
        raise TypeError(
            f"time_system{where} must be a str such as 'HJD' or 'HJD-2450000'; got {name!r} "
            f"({type(name).__name__})"
        )
    canon = _canonical_system(name)
    if canon is None:
        valid = ", ".join([*TIME_SYSTEMS, *_ALIASES])
        hint = ""
        if re.search(r"year|yr", name, re.IGNORECASE):
            hint = f" (decimal years are not read: {_YEAR_REMEDY})"
        raise ValueError(f"unknown time_system{where} {name!r}; valid: {valid}{hint}")
    return canon


def _check_choice(what: str, value: Any, valid: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


def _check_bool(what: str, value: Any) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{what} must be True or False; got {value!r} ({type(value).__name__})")
    return bool(value)


def _check_number(
    what: str, value: Any, *, low: float | None = None, high: float | None = None,
    positive: bool = False, why: str = "",
) -> float:
    """A finite real number (not a bool, not a string) within ``low..high`` (or > 0)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{what} must be a number (int or float); got {value!r} ({type(value).__name__})"
        )
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{what}={value!r} must be a finite number")
    if positive and not x > 0:
        raise ValueError(f"{what}={value!r} must be > 0{why}")
    if (low is not None and x < low) or (high is not None and x > high):
        raise ValueError(f"{what}={value!r} is outside the valid {low:g}..{high:g}{why}")
    return x


def _check_min_points(value: Any) -> int:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"min_points must be an int; got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"min_points={value!r} must be >= 1")
    return int(value)


def _check_optional_str(what: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{what} must be a str or None; got {value!r} ({type(value).__name__})")
    return value


def _check_columns(columns: Any, where: str = "") -> tuple[int | str, ...] | None:
    """``None`` (use the header or positions) or 3 distinct indices / header names."""
    if columns is None:
        return None
    if isinstance(columns, str | bytes | Mapping) or not isinstance(columns, Sequence):
        raise TypeError(
            f"columns{where} must be 3 items (time, value, error), indices or header names, "
            f"e.g. columns=(0, 1, 2) or columns=('HJD', 'mag', 'mag_err'); got {columns!r}"
        )
    if len(columns) != 3:
        raise ValueError(
            f"columns{where} must be 3 items (time, value, error), indices or header names; "
            f"got {columns!r}"
        )
    for c in columns:
        if isinstance(c, bool | np.bool_) or not isinstance(c, numbers.Integral | str):
            raise TypeError(
                f"columns{where}: column {c!r} must be an int index or a header name (str)"
            )
        if not isinstance(c, str) and c < 0:
            raise ValueError(f"columns{where}: column index {c} must be >= 0")
    keys = [c.lower() if isinstance(c, str) else int(c) for c in columns]
    if len(set(keys)) != 3:
        raise ValueError(
            f"columns{where}={tuple(columns)!r} must name 3 different columns (time, value, "
            "error)"
        )
    return tuple(c if isinstance(c, str) else int(c) for c in columns)


@dataclass(frozen=True)
class _FileOptions:
    """Options of one source, checked."""

    columns: tuple[int | str, ...] | None
    time_system: str | None
    kind: str | None
    baseline_mag: float | None
    baseline_flux: float | None
    flux_offset: float


def _check_file_options(
    *, columns: Any, time_system: Any, kind: Any, baseline_mag: Any, baseline_flux: Any,
    flux_offset: Any, where: str = "",
) -> _FileOptions:
    """Check the per-source options (types, finiteness, ranges, combinations)."""
    system = _check_time_system(time_system, where) if time_system is not None else None
    if kind is not None:
        if not isinstance(kind, str):
            raise TypeError(f"kind{where} must be 'mag', 'flux' or None; got {kind!r}")
        _check_choice(f"kind{where}", kind, KINDS)
    if baseline_mag is not None:
        baseline_mag = _check_number(
            f"baseline_mag{where}", baseline_mag, low=MAG_RANGE[0], high=MAG_RANGE[1],
            why=" (a magnitude; instrumental magnitudes: shift them by a constant, only "
            "differences matter)",
        )  # fmt: skip
    if baseline_flux is not None:
        baseline_flux = _check_number(
            f"baseline_flux{where}", baseline_flux, positive=True,
            why=" (the flux at baseline, in the file's units after flux_offset)",
        )  # fmt: skip
    if baseline_mag is not None and baseline_flux is not None:
        raise ValueError(f"give baseline_mag{where} or baseline_flux{where}, not both")
    if baseline_mag is not None and kind == "flux":
        raise ValueError(f"kind='flux'{where} takes baseline_flux=, not baseline_mag=")
    if baseline_flux is not None and kind == "mag":
        raise ValueError(f"kind='mag'{where} takes baseline_mag=, not baseline_flux=")
    offset = _check_number(f"flux_offset{where}", flux_offset)
    return _FileOptions(
        columns=_check_columns(columns, where), time_system=system, kind=kind,
        baseline_mag=baseline_mag, baseline_flux=baseline_flux, flux_offset=offset,
    )  # fmt: skip


def _check_reference_epoch(value: Any) -> float:
    return _check_number(
        "reference_epoch", value, low=0.0, high=_JD_RANGE[1],
        why=" (a full Julian date, e.g. 2450000.0)",
    )  # fmt: skip


def _frame_hint(text: str | None) -> str | None:
    """JD/HJD/BJD/MJD frame named in a header text, or None."""
    if not text:
        return None
    up = text.upper()
    if "BARY" in up or "BJD" in up:
        return "BJD"
    if "HELIO" in up or "HJD" in up:
        return "HJD"
    if "MJD" in up or "MODIFIED" in up:
        return "MJD"
    if "JD" in up or "JULIAN" in up or "GEOCENTRIC" in up:
        return "JD"
    return None


def _span_text(times: np.ndarray) -> str:
    return f"{np.min(times):.6g}..{np.max(times):.6g} (median {np.median(times):.6g})"


def _infer_time_system_why(
    times: np.ndarray, hint: str | None, source: str
) -> tuple[str, str]:
    """The time system by the documented rule, and why (a sentence for ``choices``)."""
    t = float(np.median(times))
    span = float(np.max(times) - np.min(times))
    if hint is not None and (exact := _canonical_system(hint)) is not None:
        if _JD_RANGE[0] <= t + TIME_SYSTEMS[exact] <= _JD_RANGE[1]:
            return exact, f"the time column name {hint!r} names the system"
    if hint is not None and re.search(r"year|\byr\b", hint, re.IGNORECASE):
        raise ValueError(
            f"{source}: the time column {hint!r} holds decimal years ({_span_text(times)}); "
            f"decimal years are not read: {_YEAR_REMEDY}"
        )
    frame = _frame_hint(hint)
    frame_why = f"frame {frame} from {hint!r}" if frame else "frame HJD by convention (no hint)"
    jd_frame = "JD" if frame in ("JD", "MJD") else (frame or "HJD")
    could_be_years = _YEARS[0] <= t <= _YEARS[1] and span < _YEAR_MAX_SPAN
    if t > 2_400_000:
        return jd_frame, f"median time {t:.6g} > 2,400,000 (a full date), {frame_why}"
    if 2_000 <= t <= 12_000 and not (could_be_years and frame is None):
        return (
            f"{jd_frame}-2450000",
            f"median time {t:.6g} within 2,000..12,000 (days after JD 2450000), {frame_why}",
        )
    if 40_000 <= t <= 70_000:
        if frame in ("HJD", "BJD"):
            return f"{frame}-2400000", f"median time {t:.6g} within 40,000..70,000, {frame_why}"
        return "MJD", (
            f"median time {t:.6g} within 40,000..70,000: MJD (JD - 2400000.5) by convention; "
            "give time_system='HJD-2400000' if they are JD - 2400000"
        )
    if could_be_years:
        readings = "decimal years" + (
            " or HJD-2450000 (days)" if 2_000 <= t <= 12_000 else ""
        )
        raise ValueError(
            f"{source}: times {_span_text(times)} spanning {span:.4g} could be {readings}; "
            "both readings are plausible, so nothing is guessed. Days after JD 2450000: give "
            f"time_system='HJD-2450000'. Decimal years are not read: {_YEAR_REMEDY}"
        )
    raise ValueError(
        f"{source}: cannot infer the time system from times {_span_text(times)}; the rule knows "
        "> 2,400,000 (full JD/HJD/BJD), 2,000-12,000 (minus 2450000) and 40,000-70,000 (MJD); "
        f"give time_system= one of {', '.join(TIME_SYSTEMS)}"
    )


def infer_time_system(times: np.ndarray, hint: str | None = None, source: str = "data") -> str:
    """Infer a time system from the values (and an optional header hint).

    Parameters
    ----------
    times : numpy.ndarray
        Finite times as written in the source.
    hint : str, optional
        Header text (IPAC ``TIME_REFERENCE_FRAME`` or a time column name). A hint that is itself
        a system name (``"HJD-2450000"``) is returned as is; otherwise it gives the frame.
    source : str
        Name used in error messages.

    Returns
    -------
    str
        A key of :data:`TIME_SYSTEMS`.

    Raises
    ------
    ValueError
        When the median time is in none of the ranges of the rule, or the times could be
        decimal years as well as days (module docstring); the message names ``time_system=``.
    """
    return _infer_time_system_why(np.asarray(times, dtype=np.float64), hint, source)[0]


def _infer_kind_why(
    values: np.ndarray, errors: np.ndarray, column_name: str | None, units: str | None,
    source: str,
) -> tuple[str, str]:
    """``"mag"``/``"flux"`` by the documented rule, and why (a sentence for ``choices``)."""
    for text, what in ((column_name, "value column name"), (units, "units keyword")):
        low = (text or "").lower()
        if "mag" in low:
            return "mag", f"the {what} {text!r} says magnitudes"
        if "flux" in low or "count" in low:
            return "flux", f"the {what} {text!r} says flux"
    lo, hi = np.percentile(values, [5, 95])
    med_err = float(np.median(errors))
    where = f"values 5th-95th percentiles {lo:.4g}..{hi:.4g}"
    if not (MAG_VALUE_RANGE[0] <= lo and hi <= MAG_VALUE_RANGE[1]):
        return "flux", f"{where} outside {MAG_VALUE_RANGE[0]:g}..{MAG_VALUE_RANGE[1]:g}"
    inside = f"{where} within {MAG_VALUE_RANGE[0]:g}..{MAG_VALUE_RANGE[1]:g} (magnitudes)"
    if med_err < MAG_ERROR_LARGE:
        return "mag", f"{inside}, median error {med_err:.3g} < {MAG_ERROR_LARGE:g}"
    if med_err < MAG_ERROR_LIMIT:
        return "mag", (
            f"{inside}; the median error {med_err:.3g} is large for magnitudes (a faint source) "
            f"but below {MAG_ERROR_LIMIT:g}"
        )
    raise ValueError(
        f"{source}: cannot tell magnitudes from flux: the {where} lie in the magnitude range "
        f"{MAG_VALUE_RANGE[0]:g}..{MAG_VALUE_RANGE[1]:g}, but the median error {med_err:.3g} "
        f"is >= {MAG_ERROR_LIMIT:g} (several magnitudes, or a flux with errors of that size); "
        "both readings are plausible, so nothing is guessed: give kind='mag' or kind='flux'"
    )


def infer_kind(
    values: np.ndarray, errors: np.ndarray, column_name: str | None = None,
    units: str | None = None, source: str = "data",
) -> str:
    """Infer ``"mag"`` or ``"flux"`` by the documented rule (column name, units, values).

    Parameters
    ----------
    values, errors : numpy.ndarray
        Finite values and errors.
    column_name : str, optional
        Header name of the value column.
    units : str, optional
        IPAC value units keyword.
    source : str
        Name used in error messages.

    Returns
    -------
    str
        ``"mag"`` or ``"flux"``.

    Raises
    ------
    ValueError
        Values within the magnitude range with a median error of 2 or more: both readings are
        plausible; the message names ``kind=``.
    """
    v = np.asarray(values, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    return _infer_kind_why(v, e, column_name, units, source)[0]


def _robust_scatter(flux: np.ndarray) -> float:
    """Per-point noise from consecutive differences (robust to slow trends and outliers)."""
    if flux.size >= 3:
        d = np.diff(flux)
        s = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
        if s > 0:
            return s
    s = 1.4826 * float(np.median(np.abs(flux - np.median(flux))))
    return s if s > 0 else max(abs(float(np.median(flux))) * 1e-6, 1e-300)


def estimate_baseline_flux(flux: np.ndarray, times: np.ndarray | None = None) -> float:
    """Baseline of a light curve in linear flux units (any scale), by the faint-side mode.

    Parameters
    ----------
    flux : numpy.ndarray
        Linear fluxes (finite).
    times : numpy.ndarray, optional
        Their times; the noise scale is taken from consecutive differences in time order
        (the given order when omitted).

    Returns
    -------
    float
        The baseline flux. Rule: ``sigma`` = robust scatter of consecutive differences; start at
        the value of the faintest half with the most points within ``+-sigma``; then repeat
        ``b = median(flux[|flux - b| < 2 sigma])`` until it converges.
    """
    f = np.asarray(flux, dtype=np.float64)
    if times is not None:
        f = f[np.argsort(np.asarray(times), kind="stable")]
    if f.size == 0:
        raise ValueError("estimate_baseline_flux needs at least one point")
    sigma = _robust_scatter(f)
    s = np.sort(f)
    cand = s[: max(1, (s.size + 1) // 2)]
    counts = np.searchsorted(s, cand + sigma, "right") - np.searchsorted(s, cand - sigma, "left")
    best = cand[counts == counts.max()]
    b = float(np.median(best))
    for _ in range(50):
        near = f[np.abs(f - b) < 2.0 * sigma]
        new = float(np.median(near)) if near.size else b
        if abs(new - b) <= 1e-9 * sigma:
            break
        b = new
    return b



# --------------------------------------------------------------------------------------------
# Text parsing
# --------------------------------------------------------------------------------------------


class _NotATable(ValueError):
    """The file is not a photometry table at all (binary, or no data line)."""


def _split(line: str) -> list[str]:
    if "," in line:
        return [t.strip() for t in line.split(",")]
    return line.split()


def _to_float(tok: str) -> float | None:
    if tok.strip().lower() in _NULLS:
        return math.nan
    try:
        return float(tok)
    except ValueError:
        return None


def _starts_data(tokens: list[str]) -> bool:
    """A line whose first cell is a number (or starts like one: ``2019-03-01T...``) is data."""
    first = tokens[0] if tokens else ""
    try:
        float(first)
        return True
    except ValueError:
        return bool(_NUMBER_START.match(first))


@dataclass
class _Table:
    names: list[str] | None
    meta: dict[str, str]
    rows: list[tuple[int, str, list[str]]]  # (line number, raw line, tokens)
    pipes: list[int] | None
    text_lines: list[tuple[int, str]]  # non-comment lines before the data (headers, titles)
    ends_with_newline: bool


def _check_text_file(path: Path) -> None:
    """Refuse a directory, a missing file or binary content with a message saying which."""
    source = str(path)
    if path.is_dir():
        raise IsADirectoryError(f"{source} is a directory: use read_event for a folder")
    if not path.is_file():
        raise FileNotFoundError(f"photometry file not found: {source}")
    with open(path, "rb") as fh:
        head = fh.read(8192)
    if head.startswith(b"\x1f\x8b"):
        raise _NotATable(f"{source} is not a text table (gzip-compressed): decompress it first")
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or control > 0.1 * max(len(head), 1):
        raise _NotATable(f"{source} is not a text table (binary content)")


def _parse_text(path: Path) -> _Table:
    names: list[str] | None = None
    comment_names: list[str] | None = None
    meta: dict[str, str] = {}
    rows: list[tuple[int, str, list[str]]] = []
    text_lines: list[tuple[int, str]] = []
    pipes: list[int] | None = None
    ends_with_newline = True
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            ends_with_newline = raw.endswith(("\n", "\r"))
            line = raw.rstrip("\r\n")
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                if not rows:
                    comment_names = _split(stripped.lstrip("#").strip())
                continue
            if stripped.startswith("\\"):
                m = re.match(r"\\\s*([A-Za-z0-9_]+)\s*=\s*(.*)$", stripped)
                if m:
                    meta[m.group(1).upper()] = m.group(2).strip().strip("\"'")
                continue
            if stripped.startswith("|") and not rows:
                if pipes is None:
                    pipes = [i for i, c in enumerate(line) if c == "|"]
                    names = [c.strip() for c in stripped.strip("|").split("|")]
                continue
            tokens = _split(stripped)
            if not rows and not _starts_data(tokens):
                text_lines.append((lineno, stripped))
                if pipes is None:
                    names = tokens  # text header line (the last one before the data wins)
                    comment_names = None
                continue
            rows.append((lineno, line, tokens))
    if names is None and comment_names is not None and rows:
        if len(comment_names) == len(rows[0][2]):
            names = comment_names
    return _Table(names, meta, rows, pipes, text_lines, ends_with_newline)


def _no_data_message(table: _Table, source: str) -> str:
    if table.text_lines:
        n, first = table.text_lines[0]
        return (
            f"{source} is not a photometry table: no data line (a line starting with a number) "
            f"among its {len(table.text_lines)} text lines (line {n}: {first[:60]!r})"
        )
    return f"{source} holds no data lines (only comments, keywords or blank lines)"


# Header names -> roles. Errors are tested first ("mag_err" is an error, not a magnitude).
_ERROR_NAME = re.compile(r"err|sigma|uncert|^sig_|^e_|^e(mag|flux)$|_unc$|^unc", re.IGNORECASE)
_TIME_NAME = re.compile(
    r"^(?:[hbmr]?jd|bjd_?tdb|time|date|t|epoch|days?|year|yr)(?![a-z])", re.IGNORECASE
)


def _clean_name(name: str) -> str:
    return name.strip().lstrip("\\").strip()


def _role(name: str) -> str | None:
    """``time``, ``mag``, ``flux``, ``err_mag``, ``err_flux``, ``err`` or None (other)."""
    n = _clean_name(name).lower()
    if not n:
        return None
    kind = "mag" if "mag" in n else "flux" if ("flux" in n or "count" in n) else None
    if _ERROR_NAME.search(n):
        return f"err_{kind}" if kind else "err"
    if _TIME_NAME.match(n):
        return "time"
    return kind


def _describe(idx: Sequence[int], names: Sequence[str]) -> str:
    return ", ".join(
        f"{what} {names[i]!r} (column {i})" if i < len(names) else f"{what} column {i}"
        for what, i in zip(("time", "value", "error"), idx, strict=True)
    )


def _columns_from_header(
    names: list[str], source: str, choices: list[str]
) -> tuple[int, int, int] | None:
    """Time, value and error columns chosen from the header names by the documented rule.

    None when the header names none of the roles (the columns are then taken by position).
    """
    roles = [_role(n) for n in names]
    if not any(roles):
        return None
    shown = [_clean_name(n) for n in names]
    times = [i for i, r in enumerate(roles) if r == "time"]
    mags = [i for i, r in enumerate(roles) if r == "mag"]
    fluxes = [i for i, r in enumerate(roles) if r == "flux"]
    remedy = "give columns=(time, value, error) as indices or header names"
    if not times:
        raise ValueError(
            f"{source}: the header {shown} names no time column (names such as HJD, JD, MJD, "
            f"BJD, HJD-2450000, time, date); {remedy}"
        )
    if not mags and not fluxes:
        raise ValueError(
            f"{source}: the header {shown} names no value column (names containing mag, "
            f"magnitude, flux or counts); {remedy}"
        )
    value_kind = "mag" if mags else "flux"
    values = mags or fluxes
    value = values[0]
    errors = [i for i, r in enumerate(roles) if r == f"err_{value_kind}"]
    errors = errors or [i for i, r in enumerate(roles) if r == "err"]
    if not errors:
        other = "flux" if value_kind == "mag" else "magnitude"
        raise ValueError(
            f"{source}: the header {shown} names no error column for the {value_kind} column "
            f"{shown[value]!r} (names such as err, error, sigma, e_mag, mag_err, flux_err, "
            f"uncertainty; a {other} error does not fit); {remedy}"
        )
    after = [i for i in errors if i > value]
    error = after[0] if after else errors[0]
    time = times[0]
    why = [f"columns from the header names: {_describe((time, value, error), shown)}"]
    if mags and fluxes:
        why.append(
            f"magnitude column preferred over flux {[shown[i] for i in fluxes]} (the rule: "
            "magnitudes need no reference flux)"
        )
    ambiguous = [
        f"{len(group)} {what} columns {[shown[i] for i in group]}"
        for what, group in (("time", times), (value_kind, values), ("error", errors))
        if len(group) > 1
    ]
    choices.append("; ".join(why))
    if ambiguous:
        read = _describe((time, value, error), shown)
        _warn(
            f"{source}: the header names {', '.join(ambiguous)}; read {read} (first time "
            f"column; first {value_kind} column; its error column next to it). Give columns= "
            "to choose others"
        )
    return time, value, error


def _resolve_columns(
    columns: tuple[int | str, ...] | None, names: list[str] | None, source: str,
    choices: list[str],
) -> tuple[list[int], bool]:
    """Column indices (time, value, error) and whether they were given by the caller."""
    if columns is None:
        chosen = _columns_from_header(names, source, choices) if names else None
        if chosen is not None:
            return list(chosen), False
        if names:
            choices.append(f"columns 0, 1, 2 by position (no role in the header {names})")
        else:
            choices.append("columns 0, 1, 2 by position (no header line)")
        return [0, 1, 2], False
    out = []
    for c in columns:
        if isinstance(c, str):
            if not names:
                raise ValueError(
                    f"{source}: column {c!r} requested by name but the file has no header line "
                    "naming its columns; give column indices"
                )
            low = [_clean_name(n).lower() for n in names]
            if _clean_name(c).lower() not in low:
                raise ValueError(f"{source}: no column named {c!r}; columns are {names}")
            out.append(low.index(_clean_name(c).lower()))
        else:
            out.append(int(c))
    if len(set(out)) != 3:
        raise ValueError(f"{source}: columns={columns!r} name the same column twice")
    if names:
        allowed = {"time": ("time",), "value": ("mag", "flux"), "error": ("err", "err_mag",
                                                                          "err_flux")}
        for what, i in zip(("time", "value", "error"), out, strict=True):
            role = _role(names[i]) if i < len(names) else None
            if role is not None and role not in allowed[what]:
                raise ValueError(
                    f"{source}: columns={columns!r} takes column {i} {names[i]!r} as the {what}, "
                    f"but its header name says it is a {role.replace('err_', 'error of ')} "
                    f"column; the header is {names}: give the columns by name, or leave "
                    "columns= out to choose them from the header"
                )
    choices.append(f"columns given: {_describe(out, names or [])}")
    return out, True


def _cells(row: tuple[int, str, list[str]], n_names: int, pipes: list[int] | None) -> list[str]:
    _, line, tokens = row
    if pipes is None or len(tokens) == n_names or len(pipes) < 2:
        return tokens
    cells = [line[a:b] for a, b in zip(pipes[:-1], pipes[1:], strict=True)]
    return [c.strip() for c in cells]


def _not_a_number(what: str, ci: int, cell: str) -> str:
    text = (
        f"{what} column {ci} holds {cell!r}, not a number; data lines must hold numbers "
        "(comment lines start with '#')"
    )
    if _ISO_DATE.match(cell.strip()):
        text += "; ISO dates are not read: convert them to JD (e.g. astropy Time(...).jd)"
    return text


def _table_arrays(
    table: _Table, idx: list[int], source: str, on_bad_line: str, dropped: Counter
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_names = len(table.names) if table.names else 0
    what = ("time", "value", "error")
    out: list[tuple[float, float, float]] = []
    lines: list[int] = []
    first_problem: str | None = None
    for row in table.rows:
        lineno = row[0]
        cells = _cells(row, n_names, table.pipes)
        vals: list[float] = []
        problem = None
        for k, ci in zip(what, idx, strict=True):
            if ci >= len(cells):
                problem = (
                    f"has {len(cells)} columns but the {k} column is index {ci}; "
                    "every data line needs the selected columns"
                )
                break
            v = _to_float(cells[ci])
            if v is None:
                problem = _not_a_number(k, ci, cells[ci])
                break
            vals.append(v)
        if problem is not None:
            where = f"line {lineno}" + (" (the first data line)" if not lines and not
                                        dropped["bad_line"] else "")
            message = f"{source}, {where}: {problem}"
            if on_bad_line == "drop":
                dropped["bad_line"] += 1
                first_problem = first_problem or message
                continue
            raise ValueError(f"{message} (or on_bad_line='drop')")
        out.append((vals[0], vals[1], vals[2]))
        lines.append(lineno)
    if not out and first_problem is not None:
        raise ValueError(f"{first_problem}: no data line of the file could be read")
    if out and not table.ends_with_newline and len(table.rows) > 1:
        last, before = table.rows[-1][2], table.rows[-2][2]
        if len(last) != len(before) or any(
            _decimals(a) < _decimals(b) for a, b in zip(last, before, strict=False)
        ):
            _warn(
                f"{source}, line {table.rows[-1][0]}: the last line has no line end and is "
                f"shorter than the one before ({' '.join(last)!r} after {' '.join(before)!r}): "
                "the file looks truncated; check it (or remove the line)"
            )
    arr = np.asarray(out, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2], np.asarray(lines, dtype=np.int64)


def _decimals(token: str) -> int:
    head, dot, tail = token.partition(".")
    return len(re.match(r"\d*", tail).group()) if dot else 0


# --------------------------------------------------------------------------------------------
# Normalisation of one source
# --------------------------------------------------------------------------------------------


@dataclass
class _Part:
    times: np.ndarray  # days after reference_epoch
    flux: np.ndarray
    flux_err: np.ndarray
    summary: FileSummary


def _observatory_name(path: Path) -> str:
    name = path.name
    while True:
        stem, dot, suffix = name.rpartition(".")
        if dot and stem and f".{suffix.lower()}" in _KNOWN_SUFFIXES:
            name = stem
        else:
            return name


def _check_layout(v: np.ndarray, e: np.ndarray, columns: tuple[str, ...], source: str) -> None:
    """Refuse a value column that looks like errors (positive, below its 'errors')."""
    ok = np.isfinite(v) & np.isfinite(e)
    if ok.sum() < 3:
        return
    v, e = v[ok], e[ok]
    if (v.size >= 10 and np.all(np.diff(v) > 0) and _JD_RANGE[0] <= v[0]
            and v[-1] <= _JD_RANGE[1]):
        raise ValueError(
            f"{source}: the value column {columns[1]!r} holds values {v[0]:.10g}..{v[-1]:.10g} "
            "increasing line by line, like full Julian dates: the columns may be in another "
            f"order than {columns} (time, value, error). Give columns= explicitly; explicit "
            "columns are read as given"
        )
    if np.all(v > 0) and float(np.median(v)) < float(np.median(e)):
        lo, hi = np.percentile(e, [5, 95])
        looks = " and the error column like magnitudes" if (
            MAG_VALUE_RANGE[0] <= lo and hi <= MAG_VALUE_RANGE[1]) else ""
        raise ValueError(
            f"{source}: the value column {columns[1]!r} (median {np.median(v):.4g}, all "
            f"positive) is below its error column {columns[2]!r} (median {np.median(e):.4g}): "
            f"it looks like an error column{looks}, i.e. the file may be laid out time, error, "
            "value. Give columns= explicitly (e.g. columns=(0, 2, 1) for time, error, value); "
            "explicit columns are read as given"
        )


def _check_magnitudes(
    v: np.ndarray, e: np.ndarray, where: np.ndarray, *, source: str, label: str, why: str
) -> None:
    """Refuse values that cannot be magnitudes; warn about errors too large for magnitudes."""
    med = float(np.median(v))
    if not MAG_RANGE[0] <= med <= MAG_RANGE[1]:
        lo, hi = np.percentile(v, [5, 95])
        raise ValueError(
            f"{source}: the values (5th-95th percentiles {lo:.4g}..{hi:.4g}, median {med:.4g}) "
            f"cannot be magnitudes (median must lie within {MAG_RANGE[0]:g}..{MAG_RANGE[1]:g}), "
            f"but {why}: give kind='flux' if they are fluxes, or the right columns=; "
            "instrumental magnitudes must be shifted by a constant into that range"
        )
    far = np.flatnonzero(np.abs(v - med) > MAG_MAX_DEVIATION)
    if far.size:
        i = int(far[0])
        raise ValueError(
            f"{source}, {label} {where[i]}: value {float(v[i])!r} is {abs(v[i] - med):.4g} mag "
            f"from the median magnitude {med:.4g} (more than {MAG_MAX_DEVIATION:g}: not a "
            f"magnitude, e.g. a placeholder such as 99.999; {far.size} such points); write nan "
            "for a missing value (dropped as non_finite) or remove the lines"
        )
    med_err = float(np.median(e))
    if med_err >= MAG_ERROR_LIMIT:
        _warn(
            f"{source}: median magnitude error {med_err:.3g} >= {MAG_ERROR_LIMIT:g} mag "
            f"({why}): check that the error column holds magnitude errors (columns=, kind=)"
        )


def _warn_drops(source: str, dropped: Counter, n_read: int) -> None:
    lost = {r: int(dropped[r]) for r in _WARNED_DROPS if dropped.get(r)}
    n_lost = sum(lost.values())
    if n_read and n_lost > DROP_WARNING_FRACTION * n_read:
        counts = ", ".join(f"{r} {n}" for r, n in lost.items())
        _warn(
            f"{source}: dropped {n_lost} of {n_read} points ({n_lost / n_read:.0%}, more than "
            f"{DROP_WARNING_FRACTION:.0%}): {counts}. Fix those lines in the file, or pass "
            "strict=True to make non-finite values and errors <= 0 an error (on_bad_line= and "
            "on_duplicate= 'error' for the others)"
        )


def _normalise(
    t: np.ndarray,
    v: np.ndarray,
    e: np.ndarray,
    where: np.ndarray,
    *,
    source: str,
    label: str,
    observatory: str,
    columns: tuple[str, ...],
    columns_given: bool,
    choices: list[str],
    dropped: Counter,
    time_hint: str | None,
    value_name: str | None,
    units: str | None,
    options: _FileOptions,
    reference_epoch: float,
    strict: bool,
    on_duplicate: str,
    min_points: int,
) -> _Part:
    system = options.time_system
    kind = options.kind
    baseline_mag, baseline_flux = options.baseline_mag, options.baseline_flux
    n_read = int(t.size) + int(dropped.get("bad_line", 0))

    def loc(i: int) -> str:
        return f"{source}, {label} {where[i]}"

    if not columns_given:
        _check_layout(v, e, columns, source)
    for reason, valid in (("non_finite", "finite numbers"), ("non_positive_error", "errors > 0")):
        if reason == "non_finite":
            bad = ~(np.isfinite(t) & np.isfinite(v) & np.isfinite(e))
        else:
            bad = ~(e > 0)
        if bad.any():
            if strict:
                i = int(np.flatnonzero(bad)[0])
                ti, vi, ei = float(t[i]), float(v[i]), float(e[i])
                raise ValueError(
                    f"{loc(i)}: time={ti!r}, value={vi!r}, error={ei!r}; strict=True "
                    f"requires {valid} (strict=False drops them as {reason!r})"
                )
            dropped[reason] += int(bad.sum())
            keep = ~bad
            t, v, e, where = t[keep], v[keep], e[keep], where[keep]

    n_reordered = int(np.count_nonzero(np.diff(t) < 0))
    order = np.argsort(t, kind="stable")
    t, v, e, where = t[order], v[order], e[order], where[order]
    dup = np.flatnonzero(np.diff(t) == 0)
    if dup.size:
        if on_duplicate == "error":
            i = int(dup[0])
            ti = float(t[i])
            raise ValueError(
                f"{source}: duplicate time {ti!r} on {label}s {where[i]} and {where[i + 1]}; "
                "times in one source must be distinct (on_duplicate='drop' keeps the first)"
            )
        keep = np.ones(t.size, bool)
        keep[dup + 1] = False
        dropped["duplicate_time"] += int(dup.size)
        t, v, e, where = t[keep], v[keep], e[keep], where[keep]
    if n_reordered:
        choices.append(f"times sorted ({n_reordered} out-of-order steps)")

    if t.size < min_points:
        lost = f" after dropping {dict(dropped)}" if dropped else ""
        raise ValueError(
            f"{source}: {t.size} usable points{lost}, fewer than min_points={min_points}"
        )
    _warn_drops(source, dropped, n_read)

    system_inferred = system is None
    if system is None:
        system, why = _infer_time_system_why(t, time_hint, source)
        choices.append(f"time_system {system!r}: {why}")
    else:
        choices.append(f"time_system {system!r} given")
    offset = TIME_SYSTEMS[system]
    lo, hi = float(t[0]) + offset, float(t[-1]) + offset
    if lo < _JD_RANGE[0] or hi > _JD_RANGE[1]:
        raise ValueError(
            f"{source}: times {t[0]:.6g}..{t[-1]:.6g} in {system} are JD {lo:.6f}..{hi:.6f}, "
            f"outside the valid {_JD_RANGE[0]:.0f}..{_JD_RANGE[1]:.0f}; check time_system= "
            f"(valid: {', '.join(TIME_SYSTEMS)})"
        )
    times = t + (offset - reference_epoch) if offset != reference_epoch else t.copy()

    kind_inferred = kind is None
    if kind is not None:
        kind_why = f"kind={kind!r} was given"
        choices.append(f"kind {kind!r} given")
    elif baseline_mag is not None or baseline_flux is not None:
        kind = "mag" if baseline_mag is not None else "flux"
        kind_why = f"baseline_{kind}= was given"
        choices.append(f"kind {kind!r}: baseline_{kind}= was given")
    else:
        kind, why = _infer_kind_why(v, e, value_name, units, source)
        kind_why = f"the kind was inferred as 'mag' ({why})"
        choices.append(f"kind {kind!r}: {why}")
        if kind == "mag" and "large for magnitudes" in why:
            _warn(
                f"{source}: read as magnitudes ({why}); if the file holds flux, give "
                "kind='flux'"
            )
    notes: list[str] = []
    if kind == "mag":
        if baseline_flux is not None:
            raise ValueError(f"{source}: magnitude input takes baseline_mag, not baseline_flux")
        _check_magnitudes(v, e, where, source=source, label=label, why=kind_why)
        if options.flux_offset != 0.0:
            _warn(
                f"{source}: flux_offset={options.flux_offset!r} has no effect on magnitudes "
                f"(kind 'mag': {kind_why}); leave it out, or give kind='flux' and the columns "
                "of a flux"
            )
        baseline_inferred = baseline_mag is None
        if baseline_mag is None:
            m_med = float(np.median(v))
            rel = 10.0 ** (-0.4 * (v - m_med))
            baseline_mag = m_med - 2.5 * math.log10(estimate_baseline_flux(rel))
        flux = 10.0 ** (-0.4 * (v - baseline_mag))
        flux_err = flux * MAG_TO_FLUX * e
        baseline = float(baseline_mag)
    else:
        if baseline_mag is not None:
            raise ValueError(f"{source}: flux input takes baseline_flux, not baseline_mag")
        f = v + options.flux_offset
        baseline_inferred = baseline_flux is None
        if baseline_flux is None:
            baseline_flux = estimate_baseline_flux(f)
            scatter = _robust_scatter(f)
            if not baseline_flux > scatter:
                raise ValueError(
                    f"{source}: the baseline flux estimate {baseline_flux:.4g} is not positive "
                    f"and above the per-point scatter {scatter:.4g}: the file looks like "
                    "difference photometry (flux relative to a reference image). Give "
                    "flux_offset= (the reference flux) or baseline_flux=, or kind='mag' if the "
                    "column holds magnitudes"
                )
        flux = f / baseline_flux
        flux_err = e / baseline_flux
        baseline = float(baseline_flux)
    choices.append(
        f"baseline {baseline:.6g} {'estimated (faint-side mode)' if baseline_inferred else 'given'}"
    )
    broken = ~(np.isfinite(flux) & np.isfinite(flux_err) & (flux_err > 0))
    if broken.any():
        i = int(np.flatnonzero(broken)[0])
        raise ValueError(
            f"{loc(i)}: value {float(v[i])!r} with error {float(e[i])!r} gives flux "
            f"{float(flux[i])!r} +- {float(flux_err[i])!r} (overflow or underflow) for the "
            f"baseline {baseline:.6g} ({kind}); check kind=, columns= and the baseline"
        )
    if baseline_inferred:
        near = np.abs(flux - 1.0) < 2.0 * np.maximum(flux_err, 1e-12)
        if near.mean() < 0.2:
            notes.append(
                f"{observatory}: only {near.mean():.0%} of the points lie within 2 sigma of the "
                "estimated baseline; the source may not cover the baseline (give baseline_mag=)"
            )

    summary = FileSummary(
        source=source, observatory=observatory, n_points=int(times.size), time_system=system,
        time_system_inferred=system_inferred, kind=kind, kind_inferred=kind_inferred,
        baseline=baseline, baseline_inferred=baseline_inferred, columns=columns,
        dropped=dict(dropped), n_reordered=n_reordered, notes=tuple(notes),
        choices=tuple(choices),
    )  # fmt: skip
    return _Part(times, flux, flux_err, summary)


# --------------------------------------------------------------------------------------------
# Combining sources
# --------------------------------------------------------------------------------------------


def _is_space(name: str, space: Iterable[str]) -> bool:
    low = name.lower()
    return "spitzer" in low or any(s.lower() in (low, Path(low).name) for s in space)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _joined(values: Sequence[str]) -> str:
    return ",".join(sorted(set(values)))


def _combine(
    parts: list[_Part],
    *,
    name: str,
    combine: str,
    main: str | None,
    reference_epoch: float,
    excluded: list[tuple[str, str]],
    notes: list[str],
) -> Photometry:
    _check_choice("combine", combine, _COMBINE)
    if not parts:
        why = "; ".join(f"{s}: {r}" for s, r in excluded) or "no sources given"
        raise ValueError(f"{name}: no usable photometry ({why})")
    if combine == "main":
        if main is not None:
            hits = [
                p for p in parts
                if main in (p.summary.observatory, p.summary.source, Path(p.summary.source).name)
            ]  # fmt: skip
            if not hits:
                valid = [p.summary.observatory for p in parts]
                raise ValueError(f"{name}: main={main!r} is none of the observatories {valid}")
            chosen = hits[0]
        else:
            chosen = max(parts, key=lambda p: p.flux.size)  # first of the largest
        for p in parts:
            if p is not chosen:
                excluded.append((p.summary.source, "combine='main' keeps one observatory"))
        notes.append(f"combine='main': kept {chosen.summary.observatory}")
        parts = [chosen]
    times = np.concatenate([p.times for p in parts])
    flux = np.concatenate([p.flux for p in parts])
    err = np.concatenate([p.flux_err for p in parts])
    code = np.concatenate([np.full(p.times.size, i, np.int64) for i, p in enumerate(parts)])
    order = np.lexsort((code, times))  # by time, ties in source order
    times, flux, err, code = times[order], flux[order], err[order], code[order]
    dropped: Counter = Counter()
    for p in parts:
        dropped.update(p.summary.dropped)
    dup = np.flatnonzero(np.diff(times) == 0) + 1
    if dup.size:
        keep = np.ones(times.size, bool)
        keep[dup] = False
        dropped["duplicate_time_across_files"] += int(dup.size)
        times, flux, err, code = times[keep], flux[keep], err[keep], code[keep]
        notes.append(
            f"{dup.size} points at exactly the time of a point of an earlier-listed source dropped"
        )
    summaries = tuple(p.summary for p in parts)
    for s in summaries:
        notes.extend(s.notes)
    return Photometry(
        times=_readonly(times), flux=_readonly(flux), flux_err=_readonly(err),
        observatory=_readonly(code), observatories=tuple(s.observatory for s in summaries),
        reference_epoch=float(reference_epoch),
        time_system=_joined([s.time_system for s in summaries]),
        time_system_inferred=any(s.time_system_inferred for s in summaries),
        kind=summaries[0].kind if len({s.kind for s in summaries}) == 1 else "mixed",
        kind_inferred=any(s.kind_inferred for s in summaries),
        baseline_mag=tuple(s.baseline_mag for s in summaries),
        source_files=tuple(s.source for s in summaries),
        dropped={k: int(v) for k, v in dropped.items() if v}, n_reordered=sum(
            s.n_reordered for s in summaries), name=name, files=summaries,
        excluded=tuple(excluded), notes=tuple(notes),
        choices=tuple(f"{s.observatory}: {c}" for s in summaries for c in s.choices),
    )  # fmt: skip



# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def _read_part(
    path: Path,
    *,
    options: _FileOptions,
    reference_epoch: float,
    strict: bool,
    on_bad_line: str,
    on_duplicate: str,
    min_points: int,
    observatory: str | None = None,
) -> _Part:
    source = str(path)
    _check_text_file(path)
    table = _parse_text(path)
    if not table.rows:
        raise _NotATable(_no_data_message(table, source))
    choices: list[str] = []
    idx, given = _resolve_columns(options.columns, table.names, source, choices)
    dropped: Counter = Counter()
    t, v, e, lines = _table_arrays(table, idx, source, on_bad_line, dropped)
    names = table.names or []
    col_names = tuple(names[i] if i < len(names) else f"col{i}" for i in idx)
    meta = table.meta
    time_hint = meta.get("TIME_REFERENCE_FRAME") or (col_names[0] if table.names else None)
    units = meta.get("VALUE_UNITS") or meta.get("MAXIMUM_VALUE_UNITS")
    return _normalise(
        t, v, e, lines, source=source, label="line",
        observatory=observatory or _observatory_name(path), columns=col_names,
        columns_given=given, choices=choices, dropped=dropped, time_hint=time_hint,
        value_name=col_names[1] if table.names else None, units=units, options=options,
        reference_epoch=reference_epoch, strict=strict, on_duplicate=on_duplicate,
        min_points=min_points,
    )  # fmt: skip


def _check_common(
    *, reference_epoch: Any, strict: Any, on_bad_line: Any, on_duplicate: Any, min_points: Any,
    name: Any,
) -> tuple[float, bool, int]:
    _check_choice("on_bad_line", on_bad_line, _ON_BAD_LINE)
    _check_choice("on_duplicate", on_duplicate, _ON_DUPLICATE)
    _check_optional_str("name", name)
    return (
        _check_reference_epoch(reference_epoch), _check_bool("strict", strict),
        _check_min_points(min_points),
    )


def _no_mapping(**options: Any) -> None:
    for key, value in options.items():
        if isinstance(value, Mapping):
            raise TypeError(
                f"read_file: {key}= is a mapping; per-file mappings are for read_event (one "
                "file takes one value)"
            )


def read_file(
    path: str | Path,
    *,
    columns: Sequence[int | str] | None = None,
    time_system: str | None = None,
    kind: str | None = None,
    baseline_mag: float | None = None,
    baseline_flux: float | None = None,
    flux_offset: float = 0.0,
    reference_epoch: float = DEFAULT_REFERENCE_EPOCH,
    strict: bool = False,
    on_bad_line: str = "error",
    on_duplicate: str = "error",
    min_points: int = 10,
    name: str | None = None,
) -> Photometry:
    """Read one photometry file into baseline-flux units.

    Parameters
    ----------
    path : str or Path
        Text, CSV or IPAC table file.
    columns : sequence of 3 int or str, optional
        Time, value and error columns: indices, or names from the header line. When omitted,
        chosen from the header names by the documented rule (module docstring), else columns
        0, 1, 2; what was chosen and why is in ``choices``.
    time_system : str, optional
        A key of :data:`TIME_SYSTEMS` (or alias ``HJD'``, ``BJD_TDB``); inferred when omitted.
    kind : {"mag", "flux"}, optional
        Inferred when omitted (see :func:`infer_kind`).
    baseline_mag, baseline_flux : float, optional
        Known baseline (magnitude within 0..40, or flux > 0 in the file's units after
        ``flux_offset``); estimated with :func:`estimate_baseline_flux` when omitted.
    flux_offset : float
        Added to flux values first (e.g. the reference flux of difference photometry); a
        :class:`PhotometryWarning` says when it has no effect (magnitudes).
    reference_epoch : float
        Full Julian date of output time 0.
    strict : bool
        Error instead of dropping non-finite values and non-positive errors.
    on_bad_line, on_duplicate : {"error", "drop"}
        What to do with non-numeric data lines and repeated times.
    min_points : int
        Fewest usable points accepted (>= 1).
    name : str, optional
        Result name (default: the observatory name taken from the file name).

    Returns
    -------
    Photometry
        One observatory (code 0).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    IsADirectoryError
        The path is a folder (:func:`read_event` reads folders).
    TypeError
        An option of the wrong type (the message names it and the expected type).
    ValueError
        Bad content or options; the message names the file, line and valid choices.

    Warns
    -----
    PhotometryWarning
        More than 5 % of the points dropped, an ambiguous header, an option without effect,
        magnitudes with large errors, a file that looks truncated.
    """
    _no_mapping(columns=columns, time_system=time_system, kind=kind, baseline_mag=baseline_mag,
                baseline_flux=baseline_flux, flux_offset=flux_offset)
    options = _check_file_options(
        columns=columns, time_system=time_system, kind=kind, baseline_mag=baseline_mag,
        baseline_flux=baseline_flux, flux_offset=flux_offset,
    )  # fmt: skip
    reference_epoch, strict, min_points = _check_common(
        reference_epoch=reference_epoch, strict=strict, on_bad_line=on_bad_line,
        on_duplicate=on_duplicate, min_points=min_points, name=name,
    )  # fmt: skip
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"read_file: path must be a str or Path; got {path!r}")
    path = Path(path)
    try:
        part = _read_part(
            path, options=options, reference_epoch=reference_epoch, strict=strict,
            on_bad_line=on_bad_line, on_duplicate=on_duplicate, min_points=min_points,
        )  # fmt: skip
    except _NotATable as exc:
        raise ValueError(str(exc)) from None
    return _combine(
        [part], name=name or part.summary.observatory, combine="all", main=None,
        reference_epoch=reference_epoch, excluded=[], notes=[],
    )  # fmt: skip


_PER_FILE_OPTIONS = ("columns", "time_system", "kind", "baseline_mag", "baseline_flux",
                     "flux_offset")


def _per_file(value: Any, path: Path, observatory: str) -> Any:
    if isinstance(value, Mapping):
        for key in (path.name, observatory, str(path)):
            if key in value:
                return value[key]
        return value.get("*")
    return value


def _check_mapping_keys(option: str, value: Any, paths: Sequence[Path]) -> None:
    """Every key of a per-file mapping must name one of the files (or be ``"*"``)."""
    if not isinstance(value, Mapping):
        return
    known = {"*"}
    for p in paths:
        known.update((p.name, _observatory_name(p), str(p)))
    unknown = [k for k in value if k not in known]
    if unknown:
        files = ", ".join(p.name for p in paths)
        raise ValueError(
            f"{option}= has key(s) {unknown} matching none of the files ({files}); keys are "
            "file names, observatory names (file name without suffixes) or '*' for the rest"
        )


def _list_sources(
    paths_or_directory: str | Path | Iterable[str | Path],
) -> tuple[list[Path], bool]:
    """The source paths, and whether they come from listing a directory."""
    if paths_or_directory is None or isinstance(paths_or_directory, bytes):
        raise TypeError(
            "read_event: paths_or_directory must be a folder, a file or a list of files (str "
            f"or Path); got {paths_or_directory!r}"
        )
    if isinstance(paths_or_directory, str | os.PathLike):
        p = Path(paths_or_directory)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not _SKIP_FILE.search(f.name))
            if not files:
                raise FileNotFoundError(f"no photometry files in directory {p}")
            return files, True
        return [p], False
    if not isinstance(paths_or_directory, Iterable):
        raise TypeError(
            "read_event: paths_or_directory must be a folder, a file or a list of files (str "
            f"or Path); got {type(paths_or_directory).__name__}"
        )
    paths = list(paths_or_directory)
    for item in paths:
        if not isinstance(item, str | os.PathLike):
            raise TypeError(f"read_event: each file must be a str or Path; got {item!r}")
    if not paths:
        raise ValueError("read_event: no files given (an empty list)")
    return [Path(p) for p in paths], False


def _check_space(space: Any) -> tuple[str, ...]:
    if isinstance(space, str | bytes) or not isinstance(space, Iterable):
        raise TypeError(
            f"space must be a list of file or observatory names; got {space!r} (write "
            f"space=[{space!r}] for one name)"
        )
    names = tuple(space)
    for s in names:
        if not isinstance(s, str):
            raise TypeError(f"space: each name must be a str; got {s!r}")
    return names


def _check_main(main: Any, combine: str) -> None:
    _check_optional_str("main", main)
    if main is not None and combine != "main":
        _warn(
            f"main={main!r} has no effect with combine={combine!r} (every observatory is "
            "kept); give combine='main' to keep only that one"
        )


def read_event(
    paths_or_directory: str | Path | Iterable[str | Path],
    *,
    combine: str = "all",
    main: str | None = None,
    include_space: bool = False,
    space: Iterable[str] = (),
    name: str | None = None,
    reference_epoch: float = DEFAULT_REFERENCE_EPOCH,
    columns: Sequence[int | str] | Mapping[str, Sequence[int | str]] | None = None,
    time_system: str | Mapping[str, str] | None = None,
    kind: str | Mapping[str, str] | None = None,
    baseline_mag: float | Mapping[str, float] | None = None,
    baseline_flux: float | Mapping[str, float] | None = None,
    flux_offset: float | Mapping[str, float] = 0.0,
    strict: bool = False,
    on_bad_line: str = "error",
    on_duplicate: str = "error",
    min_points: int = 10,
) -> Photometry:
    """Read the files of one event (several observatories or bands) and combine them.

    Parameters
    ----------
    paths_or_directory : path or iterable of paths
        A directory (every file except README* and hidden ones, in name order; files that are
        not photometry tables are skipped with a warning) or files (each must be a table).
    combine : {"all", "main"}
        ``"all"``: every point, sorted by time, ``observatory`` code per point; ``"main"``: the
        file with the most usable points (first in order on ties) or the one named by ``main``.
    main : str, optional
        Observatory name (file name without suffixes) or file name kept by ``combine="main"``
        (a :class:`PhotometryWarning` says it has no effect with ``combine="all"``).
    include_space : bool
        Include space-based files (name containing ``spitzer`` or listed in ``space``).
    space : iterable of str
        Further file or observatory names to treat as space-based.
    name : str, optional
        Event name (default: the directory name, or the first file's observatory).
    reference_epoch : float
        Full Julian date of output time 0.
    columns, time_system, kind, baseline_mag, baseline_flux, flux_offset
        As in :func:`read_file`; each may be a mapping from file name or observatory name (or
        ``"*"`` for the rest) to the value for that file. A key that matches no file is an
        error listing the files.
    strict, on_bad_line, on_duplicate, min_points
        As in :func:`read_file`, for every file.

    Returns
    -------
    Photometry
        Each file normalised to its own baseline; exclusions in ``excluded`` and ``notes``.
    """
    _check_choice("combine", combine, _COMBINE)
    _check_main(main, combine)
    include_space = _check_bool("include_space", include_space)
    space = _check_space(space)
    reference_epoch, strict, min_points = _check_common(
        reference_epoch=reference_epoch, strict=strict, on_bad_line=on_bad_line,
        on_duplicate=on_duplicate, min_points=min_points, name=name,
    )  # fmt: skip
    paths, listed = _list_sources(paths_or_directory)
    per_file = dict(columns=columns, time_system=time_system, kind=kind,
                    baseline_mag=baseline_mag, baseline_flux=baseline_flux,
                    flux_offset=flux_offset)  # fmt: skip
    for option, value in per_file.items():
        _check_mapping_keys(option, value, paths)
    options = {}
    for path in paths:
        obs = _observatory_name(path)
        chosen = {k: _per_file(v, path, obs) for k, v in per_file.items()}
        if chosen["flux_offset"] is None and isinstance(flux_offset, Mapping):
            chosen["flux_offset"] = 0.0  # a mapping without this file (nor "*")
        where = f" for {path.name}" if any(isinstance(v, Mapping) for v in per_file.values()) \
            else ""
        options[path] = _check_file_options(**chosen, where=where)
    for p in paths:
        if p.is_dir():
            raise IsADirectoryError(
                f"{p} is a directory: give a folder alone (read_event(folder)), or files"
            )
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"photometry file(s) not found: {', '.join(missing)}")
    parts: list[_Part] = []
    excluded: list[tuple[str, str]] = []
    notes: list[str] = []
    for path in paths:
        obs = _observatory_name(path)
        if not include_space and (_is_space(path.name, space) or obs in space):
            why = "space-based photometry (parallax: another line of sight); include_space=True"
            excluded.append((str(path), why))
            notes.append(f"{path.name}: excluded as {why}")
            continue
        try:
            parts.append(
                _read_part(
                    path, options=options[path], reference_epoch=reference_epoch,
                    strict=strict, on_bad_line=on_bad_line, on_duplicate=on_duplicate,
                    min_points=min_points, observatory=obs,
                )
            )  # fmt: skip
        except _NotATable as exc:
            if not listed:
                raise ValueError(str(exc)) from None
            why = f"not a photometry table ({exc})"
            excluded.append((str(path), why))
            notes.append(f"{path.name}: skipped, {why}")
            _warn(f"skipped {exc}; pass the files as a list to choose them yourself")
    if name is None:
        src = paths_or_directory
        name = Path(src).name if isinstance(src, str | os.PathLike) and Path(src).is_dir() \
            else None
        name = name or (_observatory_name(paths[0]) if paths else "event")
    return _combine(
        parts, name=name, combine=combine, main=main, reference_epoch=reference_epoch,
        excluded=excluded, notes=notes,
    )  # fmt: skip


def _mulens_name(data: Any, index: int) -> str:
    props = getattr(data, "plot_properties", None) or {}
    for candidate in (props.get("label"), getattr(data, "telescope", None)):
        if candidate:
            return str(candidate)
    file_name = getattr(data, "file_name", None)
    return _observatory_name(Path(file_name)) if file_name else f"dataset{index}"


def from_mulens_data(
    data: Any,
    *,
    name: str | None = None,
    combine: str = "all",
    main: str | None = None,
    include_space: bool = False,
    include_bad: bool = False,
    time_system: str | None = None,
    baseline_mag: float | None = None,
    baseline_flux: float | None = None,
    reference_epoch: float = DEFAULT_REFERENCE_EPOCH,
    strict: bool = False,
    on_duplicate: str = "error",
    min_points: int = 10,
) -> Photometry:
    """Convert MulensModel ``MulensData`` (one, or a list for several observatories).

    Parameters
    ----------
    data : MulensData or sequence of MulensData
        Uses ``time``, and ``mag``/``err_mag`` when ``input_fmt == "mag"``, else
        ``flux``/``err_flux``; points flagged ``bad`` are dropped (``bad_flag``) unless
        ``include_bad``. Datasets with an ``ephemerides_file`` are space-based: excluded unless
        ``include_space``.
    name : str, optional
        Result name (default: the first dataset's label, telescope or file name).
    combine, main : as in :func:`read_event`
    include_space, include_bad : bool
        Keep space-based datasets / bad-flagged points.
    time_system : str, optional
        Default: inferred from the values (MulensModel times are usually full HJD).
    baseline_mag, baseline_flux : float, optional
        Known baseline (applies to every dataset of that kind); estimated per dataset when omitted.
    reference_epoch, strict, on_duplicate, min_points : as in :func:`read_file`

    Returns
    -------
    Photometry
        One observatory per dataset used; ``source_files`` hold the datasets' names.
    """
    _check_choice("combine", combine, _COMBINE)
    _check_main(main, combine)
    include_space = _check_bool("include_space", include_space)
    include_bad = _check_bool("include_bad", include_bad)
    reference_epoch, strict, min_points = _check_common(
        reference_epoch=reference_epoch, strict=strict, on_bad_line="error",
        on_duplicate=on_duplicate, min_points=min_points, name=name,
    )  # fmt: skip
    checked = _check_file_options(
        columns=None, time_system=time_system, kind=None, baseline_mag=baseline_mag,
        baseline_flux=None, flux_offset=0.0,
    )  # fmt: skip
    if baseline_flux is not None:  # with baseline_mag too: each applies to its kind
        baseline_flux = _check_number("baseline_flux", baseline_flux, positive=True)
    datasets = list(data) if isinstance(data, list | tuple) else [data]
    if not datasets:
        raise ValueError("from_mulens_data: no MulensData given")
    parts: list[_Part] = []
    excluded: list[tuple[str, str]] = []
    notes: list[str] = []
    for i, d in enumerate(datasets):
        if not hasattr(d, "time") or not hasattr(d, "input_fmt"):
            raise TypeError(f"from_mulens_data: item {i} is {type(d).__name__}, not MulensData")
        label = _mulens_name(d, i)
        source = str(getattr(d, "file_name", None) or label)
        if not include_space and getattr(d, "ephemerides_file", None) is not None:
            why = "space-based (has an ephemerides_file: parallax); include_space=True"
            excluded.append((source, why))
            notes.append(f"{label}: excluded as {why}")
            continue
        fmt = _check_choice("MulensData.input_fmt", d.input_fmt, KINDS)
        t = np.asarray(d.time, dtype=np.float64).copy()
        v = np.asarray(d.mag if fmt == "mag" else d.flux, dtype=np.float64).copy()
        e = np.asarray(d.err_mag if fmt == "mag" else d.err_flux, dtype=np.float64).copy()
        where = np.arange(t.size)
        dropped: Counter = Counter()
        bad = np.asarray(getattr(d, "bad", np.zeros(t.size, bool)), dtype=bool)
        if bad.any() and not include_bad:
            dropped["bad_flag"] += int(bad.sum())
            t, v, e, where = t[~bad], v[~bad], e[~bad], where[~bad]
        options = replace(
            checked, kind=fmt, baseline_mag=checked.baseline_mag if fmt == "mag" else None,
            baseline_flux=baseline_flux if fmt == "flux" else None,
        )  # fmt: skip
        parts.append(
            _normalise(
                t, v, e, where, source=source, label="point", observatory=label,
                columns=("time", fmt, f"err_{fmt}"), columns_given=True,
                choices=[f"MulensData with input_fmt {fmt!r}"], dropped=dropped,
                time_hint=None, value_name=fmt, units=None, options=options,
                reference_epoch=reference_epoch, strict=strict, on_duplicate=on_duplicate,
                min_points=min_points,
            )
        )  # fmt: skip
    return _combine(
        parts, name=name or _mulens_name(datasets[0], 0), combine=combine, main=main,
        reference_epoch=reference_epoch, excluded=excluded, notes=notes,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Events shipped with MulensModel
# --------------------------------------------------------------------------------------------

_SPACE = "Spitzer photometry: space-based, sees the event along another line of sight (parallax)"
_FOLLOW_UP = (
    "follow-up photometry over the peak only ({span}): no baseline in the file, so it cannot be "
    "normalised to its own baseline"
)

# name -> (used files, excluded files with why, class, note); references come from the READMEs.
_SHIPPED: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...], int, str]] = {
    "MB08310": (
        ("MOA_0300089_PLC_007.tbl",),
        (
            ("Auck_0300089_PLC_001.tbl", _FOLLOW_UP.format(span="1.0 d")),
            ("Bron_0300089_PLC_002.tbl", _FOLLOW_UP.format(span="1.2 d")),
            ("CTIO_H_0300089_PLC_004.tbl", _FOLLOW_UP.format(span="16 d, H band")),
            ("CTIO_I_0300089_PLC_005.tbl", _FOLLOW_UP.format(span="1.2 d")),
            ("Canopus_0300089_PLC_003.tbl", _FOLLOW_UP.format(span="8.9 d, 12 points")),
            ("Danish_0300089_PLC_006.tbl", _FOLLOW_UP.format(span="21 d")),
        ),
        2,
        "planetary microlensing, sub-Saturn-mass planet, q ≈ 3.3e-4, high-magnification event",
    ),
    "OB03235": (
        ("OB03235_OGLE.tbl.txt",),
        (
            (
                "OB03235_MOA.tbl.txt",
                "MOA difference-imaging flux (counts relative to a reference image, baseline ≈ 0):"
                " the reference flux is not in the file, so baseline units are undefined",
            ),
        ),
        2,
        "planetary microlensing, q ≈ 0.0039 (Jupiter-mass planet): the first microlensing planet",
    ),
    "OB05086": (
        ("starBLG234.6.I.218982.dat",),
        (),
        1,
        "single-lens (PSPL) event from the OGLE-III Galactic bulge microlensing catalogue",
    ),
    "OB08092": (
        ("phot_ob08092_O4.dat",),
        (),
        2,
        "triple lens: a Uranus-type planet orbiting the primary of a binary star (binary class); "
        "only OGLE-IV seasons are shipped (README), the class is that of the lens system",
    ),
    "OB140939": (
        ("ob140939_OGLE.dat",),
        (("ob140939_Spitzer.dat", _SPACE),),
        1,
        "single lens; microlens parallax measured with Spitzer",
    ),
    "OB161195": (
        tuple(f"K{site}{fld}I.dat" for site in ("CT", "SA", "SS") for fld in ("01", "41", "42")),
        (("spitzer_b12.dat", _SPACE),),
        2,
        "Earth-mass planet, q ≈ 4e-5, around an ultracool dwarf (KMTNet data)",
    ),
}


def shipped_data_dir() -> Path:
    """``MulensModel/data/photometry_files`` of the installed MulensModel.

    Raises
    ------
    ModuleNotFoundError
        MulensModel is not installed (it is a dev extra of this project).
    """
    spec = importlib.util.find_spec("MulensModel")  # located, not imported (slow import)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(
            "MulensModel is not installed; the shipped events need it (pip install MulensModel)"
        )
    return Path(spec.origin).resolve().parent / "data" / "photometry_files"


def _readme_reference(directory: Path) -> str:
    readme = next((p for p in sorted(directory.iterdir()) if "readme" in p.name.lower()), None)
    if readme is None:
        return ""
    lines = [ln.strip() for ln in readme.read_text(encoding="utf-8").splitlines() if ln.strip()]
    # "Data for X were published in" / "Author et al. YEAR Journal vol, page" / ADS link
    for i, ln in enumerate(lines):
        if "publish" in ln.lower():
            tail = ln.split(" in", 1)[1].strip() if " in" in ln.split("publish", 1)[1] else ""
            cite = tail or (lines[i + 1] if i + 1 < len(lines) else "")
            url = next((x for x in lines[i + 1 : i + 4] if x.startswith("http")), "")
            return f"{cite} ({url})" if url else cite
    return lines[0]


def shipped_events() -> dict[str, ShippedEvent]:
    """Real events shipped with MulensModel, with their published classification.

    KB180003 is deliberately excluded: its README says the data were modified from the public
    KMT data (truncated at HJD 2458210 for a MulensModel example), so it is not a real light
    curve. Spitzer files are listed in ``excluded_files`` (space parallax), as are follow-up
    files without baseline coverage and difference-flux files.

    Returns
    -------
    dict
        Event name -> :class:`ShippedEvent`, in name order. ``reference`` is the citation read
        from the event's README.
    """
    root = shipped_data_dir()
    out: dict[str, ShippedEvent] = {}
    for name, (files, excluded, cls, note) in _SHIPPED.items():
        directory = root / name
        out[name] = ShippedEvent(
            name=name, directory=directory, files=files, excluded_files=excluded,
            published_class=cls, published_note=note, reference=_readme_reference(directory),
        )  # fmt: skip
    return out


def read_shipped_event(name: str, **kw: Any) -> Photometry:
    """Read a shipped event's ground-based files with :func:`read_event`.

    Parameters
    ----------
    name : str
        A key of :func:`shipped_events`.
    **kw
        Passed to :func:`read_event` (e.g. ``combine="main"``).

    Returns
    -------
    Photometry
        ``excluded`` also lists the event's ``excluded_files`` with why.
    """
    if not isinstance(name, str):
        raise TypeError(f"read_shipped_event: name must be a str; got {name!r}")
    events = shipped_events()
    if name not in events:
        raise ValueError(f"unknown shipped event {name!r}; valid: {', '.join(events)}")
    ev = events[name]
    paths = list(ev.paths)
    if kw.get("include_space"):
        paths += [ev.directory / f for f, why in ev.excluded_files if why == _SPACE]
    phot = read_event(paths, name=kw.pop("name", name), **kw)
    skipped = tuple(
        (str(ev.directory / f), why)
        for f, why in ev.excluded_files
        if not (kw.get("include_space") and why == _SPACE)
    )
    return replace(phot, excluded=phot.excluded + skipped)
