"""The few-label learning curve: a pretrained encoder against training from scratch.

Labels are what real surveys lack (a few hundred confirmed binary events against millions of
light curves), so the question of self-supervised pretraining (:mod:`microlens.training.pretrain`)
is whether a classifier whose encoder first learned to reconstruct masked fluxes on unlabelled
curves learns binaries from fewer labels than the same classifier trained from scratch.

The ``pretraining`` study (``studies/pretraining.yaml``) answers it on one data set and one
split: each cell trains kind ``transformer`` (from scratch) or kind ``masked`` (the same
network, its encoder pretrained on the training split's curves without their labels) on a
fixed random subset of ``max_train_events`` labelled training events (the same subset for both
arms: the subset is drawn from the run's ``seed``), and ``03_evaluate`` scores it on the whole
test split. This module turns the finished cells into one row per (arm, labels):

* the labelled events and their fraction of the training split;
* accuracy, recall of detectable binaries (binarity Δχ² > 100) and of the rest, PSPL events
  called binary, each with its 95 % Wilson interval (the intervals are those of the test
  sample; the spread over label subsets is not in them);
* training minutes and the pretraining minutes the run started from;

and the classical peer's row from the cell that evaluated it (the peer uses no labels). The
table goes to ``<study>/learning_curve.{csv,json,md}`` and the figure ``learning_curve``
(:func:`microlens.reports.study.learning_curve_figure`) to ``<study>/figures``.

Quick use::

    from microlens.workflow.learning_curve import learning_curve_rows
    rows = learning_curve_rows("pretraining")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from microlens.core.paths import resolve_path
from microlens.core.tables import write_table
from microlens.evaluation.model_comparison import PEER, comparison_row, peer_row
from microlens.workflow.notebooks import NOTEBOOKS

LEARNING_CURVE_STEM = "learning_curve"
"""``learning_curve.{csv,json,md}`` in the study folder."""
ARMS = {"transformer": "from scratch", "masked": "pretrained"}
"""The two arms of the curve: the model kind of a cell -> its name in the table."""
RATES = ("accuracy", "detectable_binary_recall", "other_binary_recall", "pspl_called_binary")
"""The rates of each row (each with ``_low`` and ``_high``)."""
COLUMNS = ("arm", "model", "labelled_events", "label_fraction", *RATES, "n_test_events",
           "train_minutes", "pretrain_minutes", "cell", "run_dir")
"""The columns of the table (rates also have ``_low`` and ``_high`` in the CSV)."""


def _training_events(run_dir: Path) -> int | None:
    """Events of the run's training split (its ``config.json``'s dataset manifest)."""
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    train = ((config.get("dataset_manifest") or {}).get("split_counts") or {}).get("train")
    if isinstance(train, dict):  # events per class
        return int(sum(train.values()))
    return train


def learning_curve_row(cell_dir, *, cell: str | None = None,
                       max_train_events: int = 0) -> dict:
    """One point of the curve from a finished cell (``03_evaluate``'s summary in ``cell_dir``).

    Parameters
    ----------
    cell_dir : path
        The cell folder.
    cell : str, optional
        Its name in the table (default: the folder name).
    max_train_events : int
        The cell's ``02_train`` subset size (0: the whole training split).

    Returns
    -------
    dict
        Every column of :data:`COLUMNS`, rates with their intervals.
    """
    row = comparison_row(cell_dir, cell=cell, measure=False)
    kind = row["model"]
    if kind not in ARMS:
        raise ValueError(f"cell {row['cell']!r} trains kind {kind!r}; the learning curve "
                         f"compares {', '.join(ARMS)}")
    run_dir = resolve_path(row["run_dir"])
    split = _training_events(run_dir)
    labelled = min(max_train_events, split) if max_train_events and split else (
        max_train_events or split)
    out = {"arm": ARMS[kind], "model": kind, "labelled_events": labelled,
           "label_fraction": labelled / split if labelled and split else None}
    for name in RATES:
        for suffix in ("", "_low", "_high"):
            out[name + suffix] = row.get(name + suffix)
    for name in ("n_test_events", "train_minutes", "pretrain_minutes", "cell", "run_dir"):
        out[name] = row.get(name)
    return out


def learning_curve_rows(cells: Sequence[tuple[Path, dict]]) -> tuple[list[dict], dict | None]:
    """The finished cells of a study as points of the curve, sorted by arm then labels, and
    the classical peer's row (None when no cell evaluated it).

    Parameters
    ----------
    cells : sequence of (folder, cell record)
        Each finished cell's folder and its entry of ``study.json`` (its ``cell`` name and
        ``parameters``); cells whose kind is not one of :data:`ARMS` are left out.
    """
    rows, peer = [], None
    for folder, cell in cells:
        train = cell.get("parameters", {}).get("02_train") or {}
        if train.get("model_kind", "transformer") not in ARMS:
            continue
        rows.append(learning_curve_row(folder, cell=cell["cell"],
                                       max_train_events=int(train.get("max_train_events", 0))))
        if peer is None:
            evaluation = _read(Path(folder) / NOTEBOOKS["03_evaluate"].record)
            peer = peer_row(evaluation, cell["cell"])
    order = list(ARMS.values())
    rows.sort(key=lambda r: (order.index(r["arm"]), r["labelled_events"] or 0))
    return rows, peer


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def is_learning_curve(record: dict) -> bool:
    """Whether a study's cells form a learning curve: both arms (:data:`ARMS`) trained, at more
    than one number of labelled events."""
    kinds, sizes = set(), set()
    for cell in record.get("cells", []):
        train = (cell.get("parameters") or {}).get("02_train") or {}
        kinds.add(train.get("model_kind", "transformer"))
        sizes.add(int(train.get("max_train_events", 0)))
    return set(ARMS) <= kinds and len(sizes) > 1


def _format(row: dict, name: str) -> str:
    value = row.get(name)
    if value is None:
        return "n/a"
    if name in RATES:
        low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
        interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
        return f"{value:.3f}{interval}"
    if name == "label_fraction":
        return f"{100 * value:.0f} %" if value >= 0.1 else f"{100 * value:.1f} %"
    if name in ("train_minutes", "pretrain_minutes"):
        return f"{value:.1f}"
    return str(value)


MARKDOWN_COLUMNS = (("arm", "arm"), ("labelled_events", "labelled events"),
                    ("label_fraction", "labels"), ("accuracy", "accuracy"),
                    ("detectable_binary_recall", "recall, binaries Δχ² > 100"),
                    ("other_binary_recall", "recall, binaries Δχ² ≤ 100"),
                    ("pspl_called_binary", "PSPL called binary"),
                    ("train_minutes", "training min"), ("pretrain_minutes", "pretraining min"))


def markdown_table(rows: Sequence[dict], peer: dict | None = None) -> str:
    """The curve as a markdown table (the peer's row last, with no labels)."""
    lines = ["| " + " | ".join(h for _, h in MARKDOWN_COLUMNS) + " |",
             "|" + "---|" * len(MARKDOWN_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row, c) for c, _ in MARKDOWN_COLUMNS) + " |")
    if peer is not None:
        cells = [PEER, "0", "none"] + [_format(peer, c) for c, _ in MARKDOWN_COLUMNS[3:7]]
        lines.append("| " + " | ".join(cells + ["n/a", "n/a"]) + " |")
    return "\n".join(lines)


def paired_difference(run_a, run_b, *, dataset=None, n_bootstrap: int = 2000,
                      seed: int = 0) -> dict:
    """Accuracy of run ``a`` minus that of run ``b`` on the same test events, paired.

    Both runs' final answers on the test split of ``dataset`` (default: their own data set's)
    (:func:`~microlens.evaluation.predictions.
    run_predictions`, cached beside each run) are compared event by event: the difference with a
    95 % paired bootstrap interval (events resampled with replacement, ``n_bootstrap`` times,
    from ``seed``), and McNemar's exact test on the events exactly one run gets right (a
    two-sided binomial test of the discordant pairs). Pairing removes the variation the two
    runs share (hard and easy events), so it is tighter than comparing two Wilson intervals.

    Returns
    -------
    dict
        ``difference``, ``low``, ``high``, ``only_a`` and ``only_b`` (events only that run gets
        right), ``mcnemar_p`` and ``n_events``.

    Raises
    ------
    ValueError
        When the runs were not scored on the same test events.
    """
    import numpy as np
    from scipy.stats import binomtest

    from microlens.evaluation.predictions import run_predictions

    a, _ = run_predictions(run_a, dataset)
    b, _ = run_predictions(run_b, dataset)
    if not np.array_equal(a.rows, b.rows):
        raise ValueError(f"{run_a} and {run_b} were not scored on the same test events "
                         f"({a.rows.size} and {b.rows.size} events)")
    right_a = a.final().argmax(axis=1) == a.labels
    right_b = b.final().argmax(axis=1) == b.labels
    diff = right_a.astype(np.float64) - right_b.astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, diff.size, size=(n_bootstrap, diff.size))
    boot = diff[draws].mean(axis=1)
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {"difference": float(diff.mean()), "low": float(np.quantile(boot, 0.025)),
            "high": float(np.quantile(boot, 0.975)), "only_a": only_a, "only_b": only_b,
            "mcnemar_p": float(p), "n_events": int(diff.size)}


def pretraining_gain(rows: Sequence[dict], *, paired: bool = True) -> list[dict]:
    """What pretraining changed at each number of labelled events both arms have: accuracy
    and PSPL-called-binary of the pretrained arm minus those of the arm from scratch, whether
    the accuracies' 95 % Wilson intervals overlap, and (``paired``) the paired accuracy
    difference on the same test events (:func:`paired_difference`)."""
    scratch = {r["labelled_events"]: r for r in rows if r["model"] == "transformer"}
    out = []
    for row in rows:
        other = scratch.get(row["labelled_events"])
        if row["model"] != "masked" or other is None or None in (row["accuracy"],
                                                                 other["accuracy"]):
            continue
        overlap = (row["accuracy_low"] is None or other["accuracy_low"] is None
                   or (row["accuracy_low"] <= other["accuracy_high"]
                       and other["accuracy_low"] <= row["accuracy_high"]))
        entry = {"labelled_events": row["labelled_events"],
                 "accuracy_gain": row["accuracy"] - other["accuracy"],
                 "intervals_overlap": bool(overlap)}
        if row.get("pspl_called_binary") is not None and other.get(
                "pspl_called_binary") is not None:
            entry["pspl_called_binary_change"] = (row["pspl_called_binary"]
                                                  - other["pspl_called_binary"])
        if paired:
            entry["paired"] = paired_difference(row["run_dir"], other["run_dir"])
        out.append(entry)
    return out


def gain_table(gain: Sequence[dict]) -> str:
    """The gains as a markdown table (paired columns when measured)."""
    lines = ["| labelled events | accuracy gain | paired 95 % interval | McNemar p | "
             "events only pretrained / only scratch get right | PSPL called binary, change |",
             "|---|---|---|---|---|---|"]
    for g in gain:
        paired = g.get("paired") or {}
        interval = (f"[{paired['low']:+.3f}, {paired['high']:+.3f}]" if paired else "n/a")
        p = f"{paired['mcnemar_p']:.3g}" if paired else "n/a"
        split = f"{paired['only_a']} / {paired['only_b']}" if paired else "n/a"
        change = g.get("pspl_called_binary_change")
        lines.append(f"| {g['labelled_events']} | {g['accuracy_gain']:+.3f} | {interval} | {p} "
                     f"| {split} | {'n/a' if change is None else f'{change:+.3f}'} |")
    return "\n".join(lines)


def write_learning_curve(rows: Sequence[dict], peer: dict | None, directory) -> list[Path]:
    """``learning_curve.{csv,json,md}`` in ``directory``; returns the three paths."""
    columns = [c for name in COLUMNS for c in
               ((name, f"{name}_low", f"{name}_high") if name in RATES else (name,))]
    notes = [
        "Both arms train the same network on the same labelled subset (drawn from the run's "
        "seed); the pretrained arm's encoder first learned to reconstruct masked fluxes of the "
        "training split's curves without their labels.",
        "Intervals: 95 % Wilson on the test split (the spread over label subsets is not in "
        "them); the gains below also pair the two arms' answers event by event.",
    ]
    gain = pretraining_gain(rows)
    return write_table(
        directory, LEARNING_CURVE_STEM, rows, columns,
        json={"rows": list(rows), "peer": peer, "pretraining_gain": gain, "notes": notes},
        markdown=markdown_table(rows, peer) + "\n\n" + "\n".join(f"- {n}" for n in notes)
        + "\n\nWhat pretraining changed (pretrained minus from scratch; paired: the same "
        "test events, bootstrap interval and McNemar's exact test):\n\n"
        + gain_table(gain) + "\n")


def read_learning_curve(directory) -> tuple[list[dict], dict | None]:
    """The rows and peer of ``<directory>/learning_curve.json`` (empty when there is none)."""
    found = _read(resolve_path(directory) / f"{LEARNING_CURVE_STEM}.json")
    return list(found.get("rows", [])), found.get("peer")


__all__ = ["ARMS", "COLUMNS", "LEARNING_CURVE_STEM", "RATES", "gain_table",
           "is_learning_curve", "learning_curve_row", "learning_curve_rows", "markdown_table",
           "paired_difference", "pretraining_gain", "read_learning_curve",
           "write_learning_curve"]
