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
    lines, then data; rows with blank cells are cut at the ``|`` positions). Columns 0, 1, 2 are
    time, value and error by default; ``columns=`` takes indices or header names. Extra columns
    are ignored. ``null``/``nan``/empty cells read as NaN (then dropped as ``non_finite``).

Kind (magnitudes or flux), when not given
    1. the value column's name: containing ``mag`` -> ``"mag"``; containing ``flux`` or
       ``count`` -> ``"flux"``; 2. an IPAC ``VALUE_UNITS``/``MAXIMUM_VALUE_UNITS`` keyword
       (``mag`` or ``counts``/``flux``); 3. the values: 5th-95th percentiles within 5..30 and a
       median error below 0.5 -> ``"mag"``, otherwise ``"flux"``.

Time systems (:data:`TIME_SYSTEMS`), when not given
    The frame (JD, HJD or BJD) comes from an IPAC ``TIME_REFERENCE_FRAME`` keyword, else from
    the time column's name (a name that is itself a system, e.g. ``HJD-2450000``, is used
    as is); without a hint the frame is HJD (the usual microlensing survey convention). The
    offset comes from the median time: > 2,400,000 -> full date (``HJD``, ``JD``, ``BJD``);
    2,000-12,000 -> ``<frame>-2450000`` (``HJD'``); 40,000-70,000 -> ``MJD`` (or
    ``HJD-2400000``/``BJD-2400000`` when the frame hint says HJD/BJD); anything else is an
    error asking for ``time_system=``. Absolute times must fall within JD 2,400,000-2,500,000.
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
    number of out-of-order steps is reported in :attr:`Photometry.n_reordered`.

Several files (:func:`read_event`)
    Each file is normalised to its own baseline, then ``combine="all"`` merges every point sorted
    by time (``observatory`` codes index ``observatories``) and ``combine="main"`` keeps the file
    with the most usable points (or the one named by ``main=``). Space-based files (a name
    containing ``spitzer``, or listed in ``space=``) see the event from elsewhere (parallax):
    excluded by default with a note, included with ``include_space=True``. Per-file
    normalisation keeps each observatory's own blending: curves from different bands are not a
    single ``F(t)``.

No pickle is used anywhere; files are read as text.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_REFERENCE_EPOCH", "DROP_REASONS", "KINDS", "TIME_SYSTEMS", "FileSummary",
    "Photometry", "ShippedEvent", "estimate_baseline_flux", "from_mulens_data", "infer_kind",
    "infer_time_system", "read_event", "read_file", "read_shipped_event", "shipped_data_dir",
    "shipped_events",
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


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSummary:
    """How one source (file or MulensData) was read.

    ``baseline`` is in the source's own units (a magnitude for ``kind="mag"``, a flux for
    ``kind="flux"``, after ``flux_offset``); ``n_points`` counts the points kept from it.
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


def _canonical_system(name: str) -> str | None:
    key = re.sub(r"\s+", "", str(name)).upper()
    key = key.replace("−", "-")
    for alias, canon in _ALIASES.items():
        if key == alias.upper():
            return canon
    return key if key in TIME_SYSTEMS else None


def _check_time_system(name: str) -> str:
    canon = _canonical_system(name)
    if canon is None:
        valid = ", ".join([*TIME_SYSTEMS, *_ALIASES])
        raise ValueError(f"unknown time_system {name!r}; valid: {valid}")
    return canon


def _check_choice(what: str, value: Any, valid: Sequence[str]) -> str:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(map(repr, valid))}")
    return value


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
        When the median time is in none of the ranges of the rule (module docstring).
    """
    t = float(np.median(times))
    if hint is not None and (exact := _canonical_system(hint)) is not None:
        if _JD_RANGE[0] <= t + TIME_SYSTEMS[exact] <= _JD_RANGE[1]:
            return exact  # e.g. a column named "HJD-2450000"; "HJD" over 8171.2 is a frame hint
    frame = _frame_hint(hint)
    if t > 2_400_000:
        return "JD" if frame in ("JD", "MJD") else (frame or "HJD")
    if 2_000 <= t <= 12_000:
        return f"{'JD' if frame in ('JD', 'MJD') else (frame or 'HJD')}-2450000"
    if 40_000 <= t <= 70_000:
        return f"{frame}-2400000" if frame in ("HJD", "BJD") else "MJD"
    raise ValueError(
        f"{source}: cannot infer the time system from times {np.min(times):.6g}..."
        f"{np.max(times):.6g} (median {t:.6g}); the rule knows > 2,400,000 (full JD/HJD/BJD), "
        f"2,000-12,000 (minus 2450000) and 40,000-70,000 (MJD); give time_system= one of "
        f"{', '.join(TIME_SYSTEMS)}"
    )


def infer_kind(
    values: np.ndarray, errors: np.ndarray, column_name: str | None = None, units: str | None = None
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

    Returns
    -------
    str
        ``"mag"`` or ``"flux"``.
    """
    for text in (column_name, units):
        low = (text or "").lower()
        if "mag" in low:
            return "mag"
        if "flux" in low or "count" in low:
            return "flux"
    lo, hi = np.percentile(values, [5, 95])
    return "mag" if 5.0 <= lo and hi <= 30.0 and float(np.median(errors)) < 0.5 else "flux"


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


@dataclass
class _Table:
    names: list[str] | None
    meta: dict[str, str]
    rows: list[tuple[int, str, list[str]]]  # (line number, raw line, tokens)
    pipes: list[int] | None


def _parse_text(path: Path) -> _Table:
    names: list[str] | None = None
    comment_names: list[str] | None = None
    meta: dict[str, str] = {}
    rows: list[tuple[int, str, list[str]]] = []
    pipes: list[int] | None = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
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
            if not rows and pipes is None and _to_float(tokens[0]) is None:
                names = tokens  # text header line (the last one before the data wins)
                comment_names = None
                continue
            rows.append((lineno, line, tokens))
    if names is None and comment_names is not None and rows:
        if len(comment_names) == len(rows[0][2]):
            names = comment_names
    return _Table(names, meta, rows, pipes)


def _resolve_columns(
    columns: Sequence[int | str], names: list[str] | None, source: str
) -> list[int]:
    if isinstance(columns, str | bytes) or len(columns) != 3:
        raise ValueError(
            f"{source}: columns must be 3 items (time, value, error), indices or header names; "
            f"got {columns!r}"
        )
    out = []
    for c in columns:
        if isinstance(c, bool) or not isinstance(c, int | np.integer | str):
            raise ValueError(f"{source}: column {c!r} must be an int index or a header name")
        if isinstance(c, str):
            if not names:
                raise ValueError(
                    f"{source}: column {c!r} requested by name but the file has no header line "
                    "naming its columns; give column indices"
                )
            low = [n.lower() for n in names]
            if c.lower() not in low:
                raise ValueError(f"{source}: no column named {c!r}; columns are {names}")
            out.append(low.index(c.lower()))
        else:
            if c < 0:
                raise ValueError(f"{source}: column index {c} must be >= 0")
            out.append(int(c))
    return out


def _cells(row: tuple[int, str, list[str]], n_names: int, pipes: list[int] | None) -> list[str]:
    _, line, tokens = row
    if pipes is None or len(tokens) == n_names or len(pipes) < 2:
        return tokens
    cells = [line[a:b] for a, b in zip(pipes[:-1], pipes[1:], strict=True)]
    return [c.strip() for c in cells]


def _table_arrays(
    table: _Table, idx: list[int], source: str, on_bad_line: str, dropped: Counter
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_names = len(table.names) if table.names else 0
    what = ("time", "value", "error")
    out: list[tuple[float, float, float]] = []
    lines: list[int] = []
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
                problem = (
                    f"{k} column {ci} holds {cells[ci]!r}, not a number; data lines must hold "
                    "numbers (comment lines start with '#')"
                )
                break
            vals.append(v)
        if problem is not None:
            if on_bad_line == "drop":
                dropped["bad_line"] += 1
                continue
            raise ValueError(f"{source}, line {lineno}: {problem} (or on_bad_line='drop')")
        out.append((vals[0], vals[1], vals[2]))
        lines.append(lineno)
    arr = np.asarray(out, dtype=np.float64).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2], np.asarray(lines, dtype=np.int64)


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
    dropped: Counter,
    time_hint: str | None,
    value_name: str | None,
    units: str | None,
    time_system: str | None,
    kind: str | None,
    baseline_mag: float | None,
    baseline_flux: float | None,
    flux_offset: float,
    reference_epoch: float,
    strict: bool,
    on_duplicate: str,
    min_points: int,
) -> _Part:
    _check_choice("on_duplicate", on_duplicate, _ON_DUPLICATE)
    if kind is not None:
        _check_choice("kind", kind, KINDS)
    system = _check_time_system(time_system) if time_system is not None else None
    if baseline_mag is not None and baseline_flux is not None:
        raise ValueError(f"{source}: give baseline_mag or baseline_flux, not both")

    def loc(i: int) -> str:
        return f"{source}, {label} {where[i]}"

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

    if t.size < min_points:
        lost = f" after dropping {dict(dropped)}" if dropped else ""
        raise ValueError(
            f"{source}: {t.size} usable points{lost}, fewer than min_points={min_points}"
        )

    system_inferred = system is None
    if system is None:
        system = infer_time_system(t, time_hint, source)
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
    if kind is None:
        kind = "mag" if baseline_mag is not None else "flux" if baseline_flux is not None else None
        kind = kind or infer_kind(v, e, value_name, units)
    notes: list[str] = []
    if kind == "mag":
        if baseline_flux is not None:
            raise ValueError(f"{source}: magnitude input takes baseline_mag, not baseline_flux")
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
        f = v + flux_offset
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
        if not baseline_flux > 0:
            raise ValueError(f"{source}: baseline_flux={baseline_flux!r} must be > 0")
        flux = f / baseline_flux
        flux_err = e / baseline_flux
        baseline = float(baseline_flux)
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
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Public readers
# --------------------------------------------------------------------------------------------


def _read_part(
    path: Path,
    *,
    columns: Sequence[int | str],
    time_system: str | None,
    kind: str | None,
    baseline_mag: float | None,
    baseline_flux: float | None,
    flux_offset: float,
    reference_epoch: float,
    strict: bool,
    on_bad_line: str,
    on_duplicate: str,
    min_points: int,
    observatory: str | None = None,
) -> _Part:
    _check_choice("on_bad_line", on_bad_line, _ON_BAD_LINE)
    source = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"photometry file not found: {source}")
    table = _parse_text(path)
    idx = _resolve_columns(columns, table.names, source)
    dropped: Counter = Counter()
    t, v, e, lines = _table_arrays(table, idx, source, on_bad_line, dropped)
    names = table.names or []
    col_names = tuple(names[i] if i < len(names) else f"col{i}" for i in idx)
    meta = table.meta
    time_hint = meta.get("TIME_REFERENCE_FRAME") or (col_names[0] if table.names else None)
    units = meta.get("VALUE_UNITS") or meta.get("MAXIMUM_VALUE_UNITS")
    return _normalise(
        t, v, e, lines, source=source, label="line",
        observatory=observatory or _observatory_name(path), columns=col_names, dropped=dropped,
        time_hint=time_hint, value_name=col_names[1] if table.names else None, units=units,
        time_system=time_system, kind=kind, baseline_mag=baseline_mag,
        baseline_flux=baseline_flux, flux_offset=flux_offset, reference_epoch=reference_epoch,
        strict=strict, on_duplicate=on_duplicate, min_points=min_points,
    )  # fmt: skip


def read_file(
    path: str | Path,
    *,
    columns: Sequence[int | str] = (0, 1, 2),
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
    columns : sequence of 3 int or str
        Time, value and error columns: indices, or names from the header line.
    time_system : str, optional
        A key of :data:`TIME_SYSTEMS` (or alias ``HJD'``, ``BJD_TDB``); inferred when omitted.
    kind : {"mag", "flux"}, optional
        Inferred when omitted (see :func:`infer_kind`).
    baseline_mag, baseline_flux : float, optional
        Known baseline (magnitude, or flux in the file's units after ``flux_offset``); estimated
        with :func:`estimate_baseline_flux` when omitted.
    flux_offset : float
        Added to flux values first (e.g. the reference flux of difference photometry).
    reference_epoch : float
        Full Julian date of output time 0.
    strict : bool
        Error instead of dropping non-finite values and non-positive errors.
    on_bad_line, on_duplicate : {"error", "drop"}
        What to do with non-numeric data lines and repeated times.
    min_points : int
        Fewest usable points accepted.
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
    ValueError
        Bad content or options; the message names the file, line and valid choices.
    """
    path = Path(path)
    part = _read_part(
        path, columns=columns, time_system=time_system, kind=kind, baseline_mag=baseline_mag,
        baseline_flux=baseline_flux, flux_offset=flux_offset, reference_epoch=reference_epoch,
        strict=strict, on_bad_line=on_bad_line, on_duplicate=on_duplicate,
        min_points=min_points,
    )  # fmt: skip
    return _combine(
        [part], name=name or part.summary.observatory, combine="all", main=None,
        reference_epoch=reference_epoch, excluded=[], notes=[],
    )  # fmt: skip


def _per_file(value: Any, path: Path, observatory: str) -> Any:
    if isinstance(value, Mapping):
        for key in (path.name, observatory, str(path)):
            if key in value:
                return value[key]
        return value.get("*")
    return value


def _list_sources(paths_or_directory: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(paths_or_directory, str | Path):
        p = Path(paths_or_directory)
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and not _SKIP_FILE.search(f.name))
            if not files:
                raise FileNotFoundError(f"no photometry files in directory {p}")
            return files
        return [p]
    return [Path(p) for p in paths_or_directory]


def read_event(
    paths_or_directory: str | Path | Iterable[str | Path],
    *,
    combine: str = "all",
    main: str | None = None,
    include_space: bool = False,
    space: Iterable[str] = (),
    name: str | None = None,
    reference_epoch: float = DEFAULT_REFERENCE_EPOCH,
    columns: Sequence[int | str] | Mapping[str, Sequence[int | str]] = (0, 1, 2),
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
        A directory (every file except README* and hidden ones, in name order) or files.
    combine : {"all", "main"}
        ``"all"``: every point, sorted by time, ``observatory`` code per point; ``"main"``: the
        file with the most usable points (first in order on ties) or the one named by ``main``.
    main : str, optional
        Observatory name (file name without suffixes) or file name kept by ``combine="main"``.
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
        ``"*"`` for the rest) to the value for that file.
    strict, on_bad_line, on_duplicate, min_points
        As in :func:`read_file`, for every file.

    Returns
    -------
    Photometry
        Each file normalised to its own baseline; exclusions in ``excluded`` and ``notes``.
    """
    _check_choice("combine", combine, _COMBINE)
    paths = _list_sources(paths_or_directory)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"photometry file(s) not found: {', '.join(missing)}")
    space = tuple(space)
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
        parts.append(
            _read_part(
                path, columns=_per_file(columns, path, obs) or (0, 1, 2),
                time_system=_per_file(time_system, path, obs), kind=_per_file(kind, path, obs),
                baseline_mag=_per_file(baseline_mag, path, obs),
                baseline_flux=_per_file(baseline_flux, path, obs),
                flux_offset=_per_file(flux_offset, path, obs) or 0.0,
                reference_epoch=reference_epoch, strict=strict, on_bad_line=on_bad_line,
                on_duplicate=on_duplicate, min_points=min_points, observatory=obs,
            )
        )  # fmt: skip
    if name is None:
        src = paths_or_directory
        name = Path(src).name if isinstance(src, str | Path) and Path(src).is_dir() else None
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
        Known baseline (applies to every dataset); estimated per dataset when omitted.
    reference_epoch, strict, on_duplicate, min_points : as in :func:`read_file`

    Returns
    -------
    Photometry
        One observatory per dataset used; ``source_files`` hold the datasets' names.
    """
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
        parts.append(
            _normalise(
                t, v, e, where, source=source, label="point", observatory=label,
                columns=("time", fmt, f"err_{fmt}"), dropped=dropped, time_hint=None,
                value_name=fmt, units=None, time_system=time_system, kind=fmt,
                baseline_mag=baseline_mag if fmt == "mag" else None,
                baseline_flux=baseline_flux if fmt == "flux" else None, flux_offset=0.0,
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
