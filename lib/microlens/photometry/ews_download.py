"""Download a season of OGLE Early Warning System events into the EWS folder layout.

OGLE publishes each season's events at ``<base_url>/<year>/`` (Udalski 2003, AcA 53, 291; the
OGLE-IV survey: Udalski et al. 2015, AcA 65, 1): a table of all events ``lenses.par`` (first
column the event, e.g. ``2025-BLG-0001``), the season's page ``ews.html`` linking each event,
and per event ``blg-NNNN/phot.dat`` and ``blg-NNNN/params.dat``. :func:`download_season` writes
them as ``photometry/blg-NNNN_phot.dat`` and ``params/blg-NNNN_params.dat``, which
:func:`microlens.photometry.ews.read_folder` reads. Only :mod:`urllib` is used; any URL scheme it
knows works (``file://`` for a local mirror). Cite the two papers above where you show results on
the data, and follow the publication terms on OGLE's EWS pages.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from microlens.core.paths import atomic_path

__all__ = ["OGLE_EWS_URL", "download_season", "event_names", "season_url"]

OGLE_EWS_URL = "https://ogle.astrouw.edu.pl/ogle4/ews"
"""OGLE-IV EWS pages: ``<OGLE_EWS_URL>/<year>/blg-NNNN/phot.dat`` (the same files are served
under ``https://www.astrouw.edu.pl/ogle/ogle4/ews``; pass that as ``base_url`` if one is
unreachable)."""

INDEX_FILES = ("lenses.par", "ews.html")
"""Where a season's event list is read from, in this order."""

_USER_AGENT = "microlens (research software; EWS season download)"
_EVENT = re.compile(r"^(?:OGLE-)?(?:(\d{4})-)?([A-Za-z]+)-(\d{4})$")
_PAGE_EVENT = re.compile(r"\b(blg|gd|lmc|smc)-(\d{4})\b", re.IGNORECASE)


class DownloadError(OSError):
    """A URL could not be fetched, or what came back is not what the EWS serves."""


def season_url(year: int, base_url: str = OGLE_EWS_URL) -> str:
    """``<base_url>/<year>``, the folder of one season's pages."""
    return f"{base_url.rstrip('/')}/{year}"


def _fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP error {exc.code} ({exc.reason}) fetching {url}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"could not fetch {url}: {exc.reason}") from None
    except (TimeoutError, OSError) as exc:
        raise DownloadError(f"could not fetch {url}: {exc}") from None


def _not_found(exc: DownloadError) -> bool:
    text = str(exc)
    return "HTTP error 404" in text or "No such file" in text or "Errno 2]" in text


def _normalise_event(name: object, year: int) -> str:
    """``blg-0001``, ``2025-BLG-0001`` or ``OGLE-2025-BLG-0001`` -> ``blg-0001``."""
    m = _EVENT.match(name.strip()) if isinstance(name, str) else None
    if m is None:
        raise ValueError(f"event name {name!r} is not an EWS event; valid forms: 'blg-0001', "
                         f"'{year}-BLG-0001', 'OGLE-{year}-BLG-0001'")
    if m.group(1) is not None and int(m.group(1)) != year:
        raise ValueError(f"event {name!r} belongs to season {m.group(1)}, not {year}")
    return f"{m.group(2).lower()}-{m.group(3)}"


def event_names(index: str, year: int) -> list[str]:
    """The events (``blg-NNNN``) an index lists, sorted, each once.

    ``lenses.par``: the first word of each line that is an event name (header lines are
    skipped); ``ews.html``: every ``blg-NNNN`` (or ``gd-``, ``lmc-``, ``smc-``) the page names.
    """
    names: set[str] = set()
    for line in index.splitlines():
        words = line.split()
        if words and _EVENT.match(words[0]):
            names.add(_normalise_event(words[0], year))
    if not names:
        names = {f"{a.lower()}-{b}" for a, b in _PAGE_EVENT.findall(index)}
    return sorted(names)


def _season_events(year: int, base_url: str, timeout: float, destination: Path) -> list[str]:
    tried = []
    for index in INDEX_FILES:
        url = f"{season_url(year, base_url)}/{index}"
        try:
            data = _fetch(url, timeout)
        except DownloadError as exc:
            tried.append(str(exc))
            continue
        names = event_names(data.decode("utf-8", "replace"), year)
        if names:
            with atomic_path(destination / index) as tmp:
                tmp.write_bytes(data)
            return names
        tried.append(f"{url} lists no event")
    raise DownloadError(f"no event list for season {year}: {'; '.join(tried)}; give the "
                        "events yourself (events=['blg-0001', ...])")


def _looks_like(data: bytes, what: str) -> bool:
    text = data[:4096].decode("utf-8", "replace")
    if what == "phot":
        first = next((ln.split() for ln in text.splitlines() if ln.strip()), [])
        return bool(first) and re.match(r"[+-]?\d", first[0]) is not None
    return "Tmax" in data.decode("utf-8", "replace")


def download_season(
    year: int,
    destination: str | os.PathLike,
    *,
    base_url: str = OGLE_EWS_URL,
    events: list[str] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> dict:
    """Fetch one EWS season's ``phot.dat`` and ``params.dat`` files into the EWS layout.

    Resumable: a file already in ``destination`` is complete (each is written to a temporary
    name and renamed when it has fully arrived) and is not fetched again, so running the same
    call after an interruption fetches only what is missing.

    Parameters
    ----------
    year : int
        The season (OGLE-IV: 2011 on).
    destination : path
        Folder to fill: ``photometry/<name>_phot.dat``, ``params/<name>_params.dat`` and the
        index the event list came from.
    base_url : str
        Where the seasons are (:data:`OGLE_EWS_URL`); ``file:///path`` reads a local mirror.
    events : list of str, optional
        Events to fetch (``blg-0001``, ``2025-BLG-0001`` or ``OGLE-2025-BLG-0001``); default:
        all the season's index lists (``lenses.par``, else the links of ``ews.html``).
    progress : bool
        Print a line per 50 events and a summary to standard error.
    timeout : float
        Seconds to wait for each URL.

    Returns
    -------
    dict
        ``events`` (names), ``downloaded`` and ``skipped`` (file counts), ``missing_params``
        (events whose ``params.dat`` does not exist: they are read without a fit).

    Raises
    ------
    DownloadError
        A URL failed (the message names it) or served something that is not an EWS file.
        Files fetched before the failure stay; run the call again to resume.
    ValueError
        A bad year or event name.
    """
    if isinstance(year, bool) or not isinstance(year, int) or not 1992 <= year <= 2100:
        raise ValueError(f"year must be a season such as 2025 (1992..2100); got {year!r}")
    if not isinstance(base_url, str) or "://" not in base_url:
        raise ValueError(f"base_url must be a URL such as {OGLE_EWS_URL!r} or "
                         f"'file:///path/to/mirror'; got {base_url!r}")
    destination = Path(destination).expanduser()
    destination.mkdir(parents=True, exist_ok=True)
    if events is None:
        names = _season_events(year, base_url, timeout, destination)
    else:
        if isinstance(events, str):
            raise TypeError("events must be a list of event names, not one string")
        names = sorted({_normalise_event(e, year) for e in events})
    season = season_url(year, base_url)
    done = {"downloaded": 0, "skipped": 0}
    missing_params = []
    for i, name in enumerate(names, start=1):
        for what, folder, suffix, required in (("phot", "photometry", "_phot.dat", True),
                                               ("params", "params", "_params.dat", False)):
            target = destination / folder / f"{name}{suffix}"
            if target.is_file():
                done["skipped"] += 1
                continue
            url = f"{season}/{name}/{what}.dat"
            try:
                data = _fetch(url, timeout)
            except DownloadError as exc:
                if not required and _not_found(exc):
                    missing_params.append(name)
                    continue
                raise
            if not _looks_like(data, what):
                raise DownloadError(f"{url} is not an EWS {what}.dat (starts "
                                    f"{data[:60]!r}); nothing was written for it")
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            done["downloaded"] += 1
        if progress and (i % 50 == 0 or i == len(names)):
            print(f"EWS {year}: {i}/{len(names)} events", file=sys.stderr)
    if progress:
        print(f"EWS {year}: {done['downloaded']} files fetched, {done['skipped']} already "
              f"there, {len(missing_params)} events without params.dat -> {destination}",
              file=sys.stderr)
    return {"events": names, **done, "missing_params": missing_params}
