"""Cross-fitting by star: folds of an EWS folder, thresholds chosen on validation stars.

A model trained on injections into the real baselines of some stars must be scored on other
stars. This module gives the pieces of a cross-fitted benchmark:

* :func:`star_folds` splits the stars of an EWS folder
(:attr:`microlens.photometry.ews.EwsEvent.star`,
  so the events of one star seen in two fields stay together) into folds, in an order drawn
  from a recorded seed;
* :func:`fold_folder` writes an EWS-layout folder of symbolic links to one fold's files (the
  ``baselines`` of an injection data set made from that fold's stars only);
* :func:`restrict` keeps the rows of some stars of a benchmark record and recomputes every
  figure (:func:`microlens.realdata.benchmark.summary.summarise`);
* :func:`choose_threshold` picks the threshold on the final P(lensing) that calls at most a
  given share of baselines lensing, on baselines of stars *other* than the scored ones (the
  validation stars of the training data set);
* :func:`crossfit_report` merges the folds: each fold's rows scored by the model that never
  saw its stars, each at the threshold chosen on that model's validation stars.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from microlens.realdata.benchmark.summary import (
    MAX_LOG_ODDS,
    _answered,
    combine_reports,
    lensing_log_odds,
    operating_point,
    probability,
    share,
    summarise,
)

FOLD_FILE = "fold.json"
"""The record of a fold folder: source folder, seed, fold, stars and events."""


def star_folds(folder: str | os.PathLike, seed: int, n_folds: int = 2) -> list[list[str]]:
    """Split the stars of an EWS folder into ``n_folds`` folds of (almost) equal size.

    Parameters
    ----------
    folder : path
        A folder in the EWS layout (:func:`microlens.photometry.ews.read_folder`).
    seed : int
        The seed of the order (``numpy.random.default_rng(seed)`` permutes the sorted stars).
    n_folds : int
        Number of folds, at least 2 and at most the number of stars.

    Returns
    -------
    list of list of str
        Each fold's stars, sorted; every star in exactly one fold.

    Raises
    ------
    ValueError
        For ``n_folds`` below 2 or above the number of stars (naming both).
    """
    from microlens.photometry import ews

    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ValueError(f"star_folds: n_folds must be an integer >= 2; got {n_folds!r}")
    stars = sorted({ev.star for ev in ews.read_folder(folder)})
    if n_folds > len(stars):
        raise ValueError(f"star_folds: n_folds = {n_folds} but {folder} holds only "
                         f"{len(stars)} stars")
    order = np.random.default_rng(seed).permutation(len(stars))
    return [sorted(stars[i] for i in part) for part in np.array_split(order, n_folds)]


def fold_folder(folder: str | os.PathLike, stars: Iterable[str],
                destination: str | os.PathLike, *, record: Mapping | None = None) -> Path:
    """Write an EWS-layout folder of symbolic links to the files of the events of ``stars``.

    The folder is built under a temporary name beside ``destination`` and renamed into place,
    so it is either complete or absent. ``fold.json`` (:data:`FOLD_FILE`) records the source
    folder, the stars, the events and ``record`` (e.g. the seed and fold number).

    Parameters
    ----------
    folder : path
        The source folder in the EWS layout.
    stars : iterable of str
        Stars (:attr:`microlens.photometry.ews.EwsEvent.star`) whose events are linked.
    destination : path
        The new folder; it must not exist.
    record : mapping, optional
        JSON-ready entries added to ``fold.json``.

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    FileExistsError
        When ``destination`` exists.
    ValueError
        When a star is not in the folder (naming it) or no star is given.
    """
    from microlens.photometry import ews

    events = ews.read_folder(folder)
    wanted = set(stars)
    if not wanted:
        raise ValueError("fold_folder: no stars given")
    unknown = sorted(wanted - {ev.star for ev in events})
    if unknown:
        raise ValueError(f"fold_folder: {len(unknown)} star(s) not in {folder}: "
                         f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    destination = Path(destination)
    if destination.exists():
        raise FileExistsError(f"fold_folder: {destination} exists; remove it or choose another")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        (tmp / "photometry").mkdir()
        (tmp / "params").mkdir()
        names = []
        for ev in events:
            if ev.star not in wanted:
                continue
            names.append(ev.name)
            src = Path(ev.photometry_file).resolve()
            (tmp / "photometry" / src.name).symlink_to(src)
            if ev.params_file is not None:
                src = Path(ev.params_file).resolve()
                (tmp / "params" / src.name).symlink_to(src)
        entry = {"source": str(Path(folder).resolve()), "stars": sorted(wanted),
                 "events": names, **dict(record or {})}
        (tmp / FOLD_FILE).write_text(json.dumps(entry, indent=1))
        tmp.rename(destination)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return destination


def restrict(record: Mapping, stars: Iterable[str]) -> dict:
    """The benchmark record with only the rows of ``stars``, every figure recomputed.

    ``counts`` keeps only what the rows say (``scored_stars``, ``event_segments``,
    ``baseline_segments``, ``timed_events``); ``rules["threshold"]`` is cleared (a threshold
    is applied per fold by :func:`crossfit_report`).

    Raises
    ------
    ValueError
        For a record without its rows.
    """
    if "events" not in record or "rules" not in record:
        raise ValueError("restrict needs the full benchmark record (with 'events' and "
                         "'rules'), not the printed summary")
    wanted = set(stars)
    rows = [row for row in record["events"] if row["star"] in wanted]
    rules = {**record["rules"], "threshold": None}
    counts = {"scored_stars": len(rows),
              "event_segments": sum(row["event"] is not None for row in rows),
              "baseline_segments": sum(row["baseline"] is not None for row in rows),
              "timed_events": sum(bool(row["event"] and row["event"].get("timing"))
                                  for row in rows)}
    out = {key: value for key, value in record.items()
           if key not in ("events", "excluded", "counts", "rules")}
    out.update(summarise(rows, rules))
    out.update(events=rows, excluded=[], counts=counts, rules=rules)
    return out


def baseline_scores(rows: Sequence[dict]) -> np.ndarray:
    """The final log-odds of lensing (:func:`~microlens.realdata.benchmark.summary.
    lensing_log_odds`) of every answered baseline segment of ``rows``."""
    return np.array([lensing_log_odds(b["final"]) for b in _answered(rows, "baseline")],
                    dtype=float)


def choose_threshold(rows: Sequence[dict], max_false_alarm: float = 0.03) -> float:
    """The lowest threshold on the final log-odds of lensing that calls at most
    ``max_false_alarm`` of the baselines of ``rows`` lensing (a baseline is called when its
    score >= threshold). A log-odds score, not P(lensing): confident answers differ where
    P(lensing) is 1 to float64's last digit (:func:`~microlens.realdata.benchmark.summary.
    probability` converts it).

    Raises
    ------
    ValueError
        For ``max_false_alarm`` outside [0, 1) or rows without a scored baseline.
    """
    if not (isinstance(max_false_alarm, int | float) and 0 <= max_false_alarm < 1):
        raise ValueError(f"choose_threshold: max_false_alarm must be in [0, 1); got "
                         f"{max_false_alarm!r}")
    scores = np.sort(baseline_scores(rows))[::-1]
    if scores.size == 0:
        raise ValueError("choose_threshold: no baseline segment with a model answer among the "
                         "rows (give rows of a run with a model)")
    allowed = int(math.floor(max_false_alarm * scores.size + 1e-9))
    if allowed >= scores.size:
        return -MAX_LOG_ODDS
    return float(np.nextafter(scores[allowed], math.inf))


def argmax_point(rows: Sequence[dict]) -> dict:
    """Events and baselines called lensing by the top class (no threshold)."""
    def called(part):
        answered = _answered(rows, part)
        return share(sum(int(np.argmax(x["final"])) > 0 for x in answered), len(answered))
    return {"events_found": called("event"), "baselines_lensing": called("baseline")}


def crossfit_report(records: Sequence[Mapping], scored: Sequence[Iterable[str]],
                    validation: Sequence[Iterable[str]], max_false_alarm: float = 0.03) -> dict:
    """Merge cross-fitted folds: fold ``k``'s record scores the stars ``scored[k]`` at the
    threshold chosen on the baselines of ``validation[k]``.

    Parameters
    ----------
    records : sequence of dict
        Full benchmark records, one per model (each may hold more stars than it scores).
    scored : sequence of iterables of str
        The stars each record scores (never seen by its model; disjoint across folds).
    validation : sequence of iterables of str
        The stars each record's threshold is chosen on (disjoint from its scored stars).
    max_false_alarm : float
        Share of validation baselines called lensing at the chosen threshold.

    Returns
    -------
    dict
        The merged record (:func:`~microlens.realdata.benchmark.summary.combine_reports` of the
        scored rows) with ``crossfit``: per fold the threshold, the validation share at it and
        the scored operating point; ``operating_point`` (counts of all folds, each at its own
        threshold) and ``argmax_point``.

    Raises
    ------
    ValueError
        For folds of different lengths, scored stars shared by two folds or with their own
        validation stars (naming one).
    """
    if not (len(records) == len(scored) == len(validation)) or not records:
        raise ValueError(f"crossfit_report: give as many records ({len(records)}), scored "
                         f"({len(scored)}) and validation ({len(validation)}) star sets, "
                         "at least one")
    scored = [set(s) for s in scored]
    validation = [set(v) for v in validation]
    seen: set[str] = set()
    for k, (s, v) in enumerate(zip(scored, validation, strict=True)):
        both = s & v
        if both:
            raise ValueError(f"crossfit_report: fold {k} scores star {sorted(both)[0]} that "
                             "its threshold is chosen on")
        again = s & seen
        if again:
            raise ValueError(f"crossfit_report: star {sorted(again)[0]} is scored in two folds")
        seen |= s
    folds, parts = [], []
    found = called = n_found = n_called = 0
    for record, s, v in zip(records, scored, validation, strict=True):
        part = restrict(record, s)
        val_rows = restrict(record, v)["events"]
        threshold = choose_threshold(val_rows, max_false_alarm)
        point = operating_point(part["events"], log_odds_threshold=threshold)
        folds.append({"run_dir": record.get("run_dir"), "threshold": probability(threshold),
                      "log_odds_threshold": threshold,
                      "validation_stars": len(v), "scored_stars": len(part["events"]),
                      "validation_baselines_lensing": operating_point(
                          val_rows, log_odds_threshold=threshold)["baselines_lensing"],
                      "operating_point": point})
        found += point["events_found"]["count"]
        n_found += point["events_found"]["of"]
        called += point["baselines_lensing"]["count"]
        n_called += point["baselines_lensing"]["of"]
        parts.append(part)
    merged = combine_reports(parts)
    merged["crossfit"] = {"max_false_alarm": max_false_alarm, "folds": folds}
    merged["operating_point"] = {"threshold": [f["threshold"] for f in folds],
                                 "log_odds_threshold": [f["log_odds_threshold"] for f in folds],
                                 "events_found": share(found, n_found),
                                 "baselines_lensing": share(called, n_called)}
    merged["argmax_point"] = argmax_point(merged["events"])
    return merged


def write_folds(folder: str | os.PathLike, out: str | os.PathLike, *, n_folds: int = 2,
                seed: int = 13) -> list[Path]:
    """Split ``folder``'s stars into folds (:func:`star_folds`) and write ``out/fold<k>``
    (:func:`fold_folder`) for each: the ``baselines`` of an injection set made from one fold's
    stars, while the benchmark scores the others (it leaves a run's training stars out).

    A fold folder already written with the same source, seed, number of folds and stars is
    kept (an interrupted call resumes); one written otherwise is an error naming it.

    Returns
    -------
    list of Path
        The fold folders, in order.
    """
    from microlens.core.paths import project_relative, resolve_path

    folds = star_folds(resolve_path(folder), seed=seed, n_folds=n_folds)
    paths = []
    for k, stars in enumerate(folds):
        path = resolve_path(out) / f"fold{k}"
        record = {"seed": seed, "fold": k, "n_folds": n_folds}
        if path.exists():
            try:
                made = json.loads((path / FOLD_FILE).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                made = {}
            wanted = {**record, "stars": sorted(stars),
                      "source": str(resolve_path(folder).resolve())}
            if any(made.get(key) != value for key, value in wanted.items()):
                raise FileExistsError(
                    f"{path} exists and is not fold {k} of {n_folds} of "
                    f"{project_relative(folder)} with seed {seed}: remove it or choose "
                    "another --out")
        else:
            fold_folder(folder, stars, path, record=record)
        paths.append(path)
    return paths


def main(argv: list[str]) -> int:
    """``python -m microlens.realdata.benchmark.crossfit FOLDER --out DIR [--folds N] [--seed S]``:
    split the stars of an EWS folder into folds and write ``DIR/fold<k>`` (links to the
    files) for each; prints each fold's folder, stars and events as JSON."""
    import argparse

    from microlens.core.cli import TerminalHelpFormatter

    parser = argparse.ArgumentParser(prog="python -m microlens.realdata.benchmark.crossfit",
                                     description=main.__doc__,
                                     formatter_class=TerminalHelpFormatter)
    parser.add_argument("folder", help="a folder in the EWS layout")
    parser.add_argument("--out", required=True, help="where the fold folders go")
    parser.add_argument("--folds", type=int, default=2, help="number of folds (default 2)")
    parser.add_argument("--seed", type=int, default=13, help="seed of the split (default 13)")
    args = parser.parse_args(argv)
    paths = write_folds(args.folder, args.out, n_folds=args.folds, seed=args.seed)
    summary = []
    for path in paths:
        made = json.loads((path / FOLD_FILE).read_text(encoding="utf-8"))
        summary.append({"folder": str(path), "stars": len(made["stars"]),
                        "events": len(made["events"])})
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    import sys

    from microlens.core.cli import command_line

    sys.exit(command_line(main)())
