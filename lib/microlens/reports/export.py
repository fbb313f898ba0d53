"""Saving figures: interactive HTML always, static PNG/PDF through kaleido and Chromium."""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from microlens.core.paths import atomic_path

STATIC_FORMATS = ("png", "pdf", "svg", "jpeg", "webp")
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class StaticExportWarning(UserWarning):
    """Static figure export (PNG/PDF through kaleido) was skipped or failed."""


DEFAULT_FORMATS = ("html", "png", "pdf")
"""Interactive HTML for exploring, PNG for slides and notebooks, PDF for a thesis."""

_warned_no_browser = False


def find_browser() -> str | None:
    """A Chromium-family browser for kaleido: ``$BROWSER_PATH`` if it exists, else the first
    of chromium, chromium-browser, google-chrome on ``PATH``; None when there is none."""
    env = os.environ.get("BROWSER_PATH")
    if env and Path(env).is_file():
        return env
    for name in BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _tmp(path: Path) -> Path:
    """A temporary name that keeps the real suffix (kaleido checks it against the format)."""
    return path.parent / f".{path.stem}.{os.getpid()}.tmp{path.suffix}"


def save_figure(fig: go.Figure, path, formats: Sequence[str] = DEFAULT_FORMATS, *,
                include_plotlyjs: bool | str = "directory", scale: float = 2.0) -> list[Path]:
    """Write a figure as HTML and, when a browser is available, as static images.

    Each file is written under a temporary name and renamed, so no reader sees half a file.
    HTML is always written (even if ``formats`` omits it). Static formats (png, pdf, svg, ...)
    go through kaleido, which needs Chromium (found by :func:`find_browser` and handed to
    kaleido through ``BROWSER_PATH`` when that is unset); without one they
    are skipped with a single :class:`StaticExportWarning` per process, and an export error
    is a warning too: saving never raises for a missing or broken browser.

    Parameters
    ----------
    fig : go.Figure
    path : path
        Target without suffix (``outputs/quick/gallery`` -> ``gallery.html``, ``gallery.png``);
        a trailing known suffix such as ``.html`` is dropped. Parent directories are created.
    formats : sequence of str
        Formats to write (default html, png and pdf).
    include_plotlyjs : bool or str
        Passed to ``write_html``: ``'directory'`` (default: small files sharing one
        ``plotly.min.js`` copied beside them, viewable offline), ``'cdn'`` (load plotly.js from
        the web) or True (self-contained, ~5 MB each).
    scale : float
        Pixel scale of raster images.

    Returns
    -------
    list of Path
        The files written.
    """
    base = Path(path)
    if base.suffix.lstrip(".").lower() in ("html", *STATIC_FORMATS):
        base = base.with_suffix("")
    return save_figures({base.name: fig}, base.parent, formats,
                        include_plotlyjs=include_plotlyjs, scale=scale)


def save_figures(figures: dict[str, go.Figure], directory, formats: Sequence[str] = DEFAULT_FORMATS,
                 *, include_plotlyjs: bool | str = "directory", scale: float = 2.0) -> list[Path]:
    """Write several figures (``{name: figure}``) into ``directory`` as :func:`save_figure`
    does, with one kaleido call for all static images (much faster than one call each).

    Returns
    -------
    list of Path
        The files written, figure by figure.
    """
    global _warned_no_browser
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    formats = [f.lower().lstrip(".") for f in formats]
    unknown = sorted(set(formats) - {"html", *STATIC_FORMATS})
    if unknown:
        raise ValueError(f"unknown figure format(s) {unknown}; valid: html, "
                         f"{', '.join(STATIC_FORMATS)}")
    written = []
    for name, fig in figures.items():
        html_path = directory / f"{name}.html"
        with atomic_path(html_path) as tmp:
            fig.write_html(tmp, include_plotlyjs=include_plotlyjs, full_html=True)
        written.append(html_path)

    static = [f for f in dict.fromkeys(formats) if f != "html"]
    if not static or not figures:
        return written
    browser = find_browser()
    if browser is None:
        if not _warned_no_browser:
            _warned_no_browser = True
            warnings.warn(
                "no Chromium found (set BROWSER_PATH or install chromium): static figures "
                f"({', '.join(static)}) are skipped; HTML is still written",
                StaticExportWarning, stacklevel=3)
        return written
    os.environ.setdefault("BROWSER_PATH", browser)
    jobs = [(fig, directory / f"{name}.{fmt}", fmt) for name, fig in figures.items()
            for fmt in static]
    tmps = [_tmp(target) for _, target, _ in jobs]
    try:
        pio.write_images([fig for fig, _, _ in jobs], tmps, format=[f for _, _, f in jobs],
                         scale=scale)
        for tmp_file, (_, target, _) in zip(tmps, jobs, strict=True):
            os.replace(tmp_file, target)
            written.append(target)
    except Exception as exc:  # a broken browser must not lose the run
        warnings.warn(f"static export of {', '.join(figures)} ({', '.join(static)}) failed: "
                      f"{exc}", StaticExportWarning, stacklevel=3)
    finally:
        for tmp_file in tmps:
            tmp_file.unlink(missing_ok=True)
    return written
