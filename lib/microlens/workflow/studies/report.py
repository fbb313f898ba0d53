"""A study's results: ``summary.csv``, the study figures and ``figures/index.html``.

Everything here reads what the cells recorded (``cell.json`` and the notebooks' JSON files), so
it runs after a study and again on its own (``python -m microlens.workflow.studies figures``)
without re-simulating or retraining.

A study whose cells train different model kinds (``02_train``'s ``model_kind``, as
``studies/models.yaml``) also gets the model comparison
(:mod:`microlens.evaluation.model_comparison`): ``model_comparison.csv``, ``.json`` and ``.md`` (one
row per kind and one for the classical peer), the figure ``model_comparison`` and the table on the
index page. Its inference and streaming costs are measured here, on one thread, the first time (then
kept in each cell's ``model_costs.json``).
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from microlens.core.paths import atomic_path, resolve_path
from microlens.core.tables import write_table
from microlens.workflow.notebooks import NOTEBOOKS
from microlens.workflow.studies.definition import BASE_CELL, StudyError
from microlens.workflow.studies.runner import (
    CELL_RECORD,
    is_finished,
    partial_dir,
    read_json,
    study_dir,
)

SUMMARY_FILE = "summary.csv"
FIGURE_DIR = "figures"
COMPARISON_STEM = "model_comparison"
"""``model_comparison.{csv,json,md}`` in the study folder (studies that compare model kinds)."""


def _per_second(seconds) -> float | None:
    return 1.0 / seconds if isinstance(seconds, (int, float)) and seconds > 0 else None


def study_record(study_name: str, outputs=None) -> dict:
    """The ``study.json`` a run wrote (cells, their grid values and parameters)."""
    root = study_dir(study_name, outputs)
    record = read_json(root / "study.json")
    if record is None:
        ran = ", ".join(studies_with_outputs(outputs)) or "none yet"
        raise StudyError(f"{root / 'study.json'} not found: study {study_name!r} has no "
                         f"outputs (studies with outputs: {ran})")
    return record


def studies_with_outputs(outputs=None) -> list[str]:
    """Studies that have been run under ``outputs`` (they have a ``study.json``)."""
    root = resolve_path(outputs or "outputs")
    return sorted(p.parent.name for p in root.glob("*/study.json"))


def cell_location(root: Path, cell: str, key: str | None = None) -> tuple[Path, dict | None]:
    """The folder of a cell and its ``cell.json`` (None if never run): the finished folder,
    unless an unfinished one belongs to the current ``key`` and the finished one does not
    (a changed cell whose rerun failed or is running)."""
    folders = [root / cell, partial_dir(root / cell)]
    records = [read_json(folder / CELL_RECORD) for folder in folders]
    if key is not None and (records[1] or {}).get("key") == key and (
            (records[0] or {}).get("key") != key):
        return folders[1], records[1]
    for folder, record in zip(folders, records, strict=True):
        if record is not None:
            return folder, record
    return folders[0], None


def summary_rows(study_name: str, outputs=None) -> list[dict]:
    """One row per cell of the study: its grid values, status, headline metrics and paths.

    Metrics come from the cell's ``evaluation_summary.json`` (``headline``), the training record
    and the simulation record; throughputs are events per second (one thread, the
    transformer's full pass over an event, or the peer's fit).
    """
    record = study_record(study_name, outputs)
    root = study_dir(study_name, outputs)
    rows = []
    for cell in record["cells"]:
        folder, info = cell_location(root, cell["cell"], cell["key"])
        status = (info or {}).get("status", "not run")
        if status == "complete" and not is_finished(info, cell["key"]):
            status = "stale"  # finished with parameters the study no longer has
        row = {"cell": cell["cell"], "status": status}
        row.update({key: cell["values"].get(key, "") for key in record["grid_keys"]})
        if status in ("complete", "stale"):
            evaluation = read_json(folder / NOTEBOOKS["03_evaluate"].record) or {}
            headline = evaluation.get("headline", {})
            training = read_json(folder / NOTEBOOKS["02_train"].record) or {}
            simulation = read_json(folder / NOTEBOOKS["01_simulate"].record) or {}
            row["n_test_events"] = evaluation.get("n_events")
            # the labels the model was trained with (runs from before the policy: physical);
            # the headline scores it against both label sets whatever it was
            row["label_policy"] = ((training.get("config") or {}).get("label_policy")
                                   or evaluation.get("label_policy") or "physical")
            # microlens.evaluation.evaluate.headline decides them
            for key, value in headline.items():
                if key.endswith("_seconds_per_event"):  # as a throughput
                    row[key.replace("_seconds_per_event", "_events_per_second")] = (
                        _per_second(value))
                else:
                    row[key] = value
            row["binary_detectable_fraction"] = (simulation.get("detectability") or {}).get(
                "binary_detectable_fraction")
            for key in ("val_accuracy", "epochs_run", "train_events_per_second"):
                row[key] = training.get(key)
            row["cell_seconds"] = info.get("seconds")
            row["dataset_dir"] = simulation.get("dataset_dir") or evaluation.get("dataset")
            row["run_dir"] = training.get("run_dir") or evaluation.get("run_dir")
        elif status == "failed":
            row["error"] = f"{info.get('failed_notebook')}: {info.get('error')}"
        row["cell_dir"] = str(folder)
        rows.append(row)
    return rows


def write_summary(study_name: str, outputs=None) -> Path:
    """Write ``outputs/<study>/summary.csv`` (one row per cell; empty where not measured)."""
    rows = summary_rows(study_name, outputs)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return write_table(study_dir(study_name, outputs), Path(SUMMARY_FILE).stem, rows,
                       columns)[0]


def read_summary(study_name: str, outputs=None) -> list[dict]:
    """``summary.csv`` as a list of dicts (numbers as floats, empty cells as None)."""
    path = study_dir(study_name, outputs) / SUMMARY_FILE
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    text_columns = {"cell", "status", "error", "cell_dir", "dataset_dir", "run_dir"}
    for row in rows:
        for key, value in row.items():
            if value == "":
                row[key] = None
            elif key not in text_columns:
                try:
                    row[key] = float(value)
                except ValueError:
                    pass  # a text grid value
    return rows


def cell_kinds(record: dict) -> dict[str, str]:
    """Cell name -> the model kind its ``02_train`` trains (empty for a study without it)."""
    if "02_train" not in record.get("notebooks", []):
        return {}
    default = NOTEBOOKS["02_train"].defaults().get("model_kind", "transformer")
    return {c["cell"]: (c.get("parameters", {}).get("02_train") or {}).get("model_kind", default)
            for c in record["cells"]}


def compares_models(record: dict) -> bool:
    """Whether a study's cells train more than one model kind and evaluate them (03)."""
    return "03_evaluate" in record.get("notebooks", []) and len(
        set(cell_kinds(record).values())) > 1


def model_comparison_rows(study_name: str, outputs=None, measure: bool = True
                          ) -> tuple[list[dict], dict]:
    """The comparison rows of a study that compares model kinds: one per finished cell (in the
    study's order), then the classical peer's (from the first finished cell that evaluated it;
    every cell evaluates it on the same test events).

    Returns
    -------
    rows : list of dict
        :func:`microlens.evaluation.model_comparison.comparison_row` and
        :func:`~microlens.evaluation.model_comparison.peer_row`.
    extra : dict
        ``study``, ``peer_cell`` (where the peer row comes from), ``peer_accuracy_by_cell``
        (the same number in every cell unless something differs), ``skipped`` (cells not
        finished with the study's current parameters, or whose row could not be read).
    """
    from microlens.evaluation.model_comparison import comparison_row, peer_row

    record = study_record(study_name, outputs)
    root = study_dir(study_name, outputs)
    rows, peer, peer_accuracy, skipped = [], None, {}, []
    for cell in record["cells"]:
        folder, info = cell_location(root, cell["cell"], cell["key"])
        if not is_finished(info, cell["key"]):
            skipped.append(cell["cell"])
            continue
        try:
            rows.append(comparison_row(folder, cell=cell["cell"], measure=measure))
        except (OSError, KeyError, ValueError) as exc:
            skipped.append(f"{cell['cell']} ({type(exc).__name__}: {exc})")
            continue
        evaluation = read_json(folder / NOTEBOOKS["03_evaluate"].record) or {}
        found = peer_row(evaluation, cell["cell"])
        if found is not None:
            peer_accuracy[cell["cell"]] = found["accuracy"]
            peer = peer or found
    if peer is not None:
        rows.append(peer)
    return rows, {"study": study_name, "peer_cell": peer["cell"] if peer else None,
                  "peer_accuracy_by_cell": peer_accuracy, "skipped": skipped}


def write_model_comparison(study_name: str, outputs=None, measure: bool = True) -> list[Path]:
    """``model_comparison.{csv,json,md}`` of a study that compares model kinds (nothing for
    another study, or before any cell finished); returns the files written."""
    from microlens.evaluation.model_comparison import write_comparison

    if not compares_models(study_record(study_name, outputs)):
        return []
    rows, extra = model_comparison_rows(study_name, outputs, measure=measure)
    if not rows:
        return []
    return write_comparison(rows, study_dir(study_name, outputs), COMPARISON_STEM, extra)


def write_study_learning_curve(study_name: str, outputs=None) -> list[Path]:
    """``learning_curve.{csv,json,md}`` of a study whose cells form a few-label learning curve
    (:func:`microlens.workflow.learning_curve.is_learning_curve`: kinds ``transformer`` and
    ``masked`` at
    several ``max_train_events``); nothing for another study or before a cell finished."""
    from microlens.workflow.learning_curve import (
        is_learning_curve,
        learning_curve_rows,
        write_learning_curve,
    )

    record = study_record(study_name, outputs)
    if not is_learning_curve(record):
        return []
    root = study_dir(study_name, outputs)
    finished = []
    for cell in record["cells"]:
        folder, info = cell_location(root, cell["cell"], cell["key"])
        if is_finished(info, cell["key"]):
            finished.append((folder, cell))
    rows, peer = learning_curve_rows(finished)
    return write_learning_curve(rows, peer, root) if rows else []


def read_model_comparison(study_name: str, outputs=None) -> list[dict]:
    """The rows of ``model_comparison.json`` (empty when the study has none)."""
    found = read_json(study_dir(study_name, outputs) / f"{COMPARISON_STEM}.json")
    return list((found or {}).get("rows", []))


def _sweep_labels(record: dict, cell: dict) -> tuple[str, str]:
    """The panel (keys of the grid entry that made the cell) and tick label (their values)."""
    grid = record["grid"][cell["sweep"]] if record["grid"] else {}
    keys = list(grid)
    if not keys:
        return "cell", cell["cell"]
    return " × ".join(keys), ", ".join(str(cell["values"][k]) for k in keys)


def study_figures(study_name: str, outputs=None) -> dict:
    """The study figures: metrics against the swept parameters, and early detection of every
    finished cell (from ``summary.csv`` and the cells' evaluation summaries)."""
    from microlens.reports.study import (
        learning_curve_figure,
        model_comparison_figure,
        study_early_detection_figure,
        study_metrics_figure,
    )
    from microlens.workflow.learning_curve import read_learning_curve

    record = study_record(study_name, outputs)
    root = study_dir(study_name, outputs)
    summary = {row["cell"]: row for row in read_summary(study_name, outputs)}
    metric_rows, curves = [], []
    for cell in record["cells"]:
        row = summary.get(cell["cell"])
        if row is None or row["status"] != "complete" or row.get("accuracy") is None:
            continue
        sweep, x = _sweep_labels(record, cell)
        metric_rows.append({**row, "sweep": sweep, "x": x})
        evaluation = read_json(root / cell["cell"] / NOTEBOOKS["03_evaluate"].record) or {}
        by_fraction = evaluation.get("early_detection", {}).get("by_fraction")
        if by_fraction:
            peer = sorted((p["fraction"], p["accuracy"]) for p in
                          (evaluation.get("classical_peer") or {}).get("fractions", []))
            curves.append({"cell": cell["cell"], "fraction": by_fraction["fraction"],
                           "accuracy": by_fraction["accuracy"],
                           "peer_fraction": [p[0] for p in peer],
                           "peer_accuracy": [p[1] for p in peer]})
    if not metric_rows:
        return {}
    name = record["study"]
    comparing = compares_models(record)
    figures = {
        "study_metrics": study_metrics_figure(
            metric_rows, title=f"Study {name}: test accuracy and binary recall",
            model_label="model" if comparing else "transformer"),
        "study_early_detection": study_early_detection_figure(
            curves, title=f"Study {name}: early detection in every cell"),
    }
    comparison = read_model_comparison(study_name, outputs) if comparing else []
    if comparison:
        figures["model_comparison"] = model_comparison_figure(
            comparison, title=f"Study {name}: model kinds on one data set, beside the "
                              "classical peer")
    curve, peer = read_learning_curve(root)
    if curve:
        figures["learning_curve"] = learning_curve_figure(
            curve, peer, title=f"Study {name}: pretrained encoder against training from "
                               "scratch, by labelled events")
    return figures


def _figure_sources(folder: Path) -> dict[str, str]:
    """Figure name -> the notebook that drew it, from the records in a cell folder."""
    sources = {}
    for notebook in NOTEBOOKS.values():
        for name in (read_json(folder / notebook.record) or {}).get("figures", []):
            sources[name] = notebook.name
    return sources


def _figure_card(href_base: str, folder: Path, name: str, caption: str) -> str:
    link = f"{href_base}{quote(name)}.html"
    if (folder / f"{name}.png").is_file():
        view = (f'<img loading="lazy" src="{href_base}{quote(name)}.png" '
                f'alt="{html.escape(name)}">')
    else:  # no static export (no Chromium): the interactive figure, scaled down
        view = (f'<div class="frame"><iframe loading="lazy" src="{link}" '
                f'title="{html.escape(name)}"></iframe></div>')
    return (f'<figure><a href="{link}">{view}</a><figcaption><a href="{link}">'
            f"{html.escape(name)}</a> · {caption}</figcaption></figure>")


def _format(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) > 1 else f"{value:.3f}"
    return html.escape("" if value is None else str(value))


INDEX_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222} h2{border-bottom:1px solid
#ccc;padding-top:.6em} .grid{display:flex;flex-wrap:wrap;gap:14px} figure{margin:0;width:420px}
figure img,.frame{width:420px;height:300px;object-fit:contain;border:1px solid #ddd}
.frame{overflow:hidden;position:relative} .frame
iframe{width:1120px;height:800px;border:0;transform:scale(.375);transform-origin:0 0;
  pointer-events:none}
.table{overflow-x:auto}
figcaption{font-size:.85em;color:#555}
table{border-collapse:collapse;font-size:.85em}
td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}
.failed{color:#b00}
"""
INDEX_COLUMNS = ("cell", "status", "n_test_events", "accuracy", "binary_recall", "macro_f1",
                 "macro_auc", "ece_after", "accuracy_at_50pct", "peer_accuracy",
                 "peer_binary_recall", "binary_detectable_fraction")


def _comparison_html(study_name: str, outputs=None) -> list[str]:
    """The model comparison table of the index page (nothing for a study without one)."""
    from microlens.evaluation.model_comparison import MARKDOWN_COLUMNS, format_value, table_notes

    rows = read_model_comparison(study_name, outputs)
    if not rows:
        return []
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in MARKDOWN_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(row, c))}</td>"
                         for c, _ in MARKDOWN_COLUMNS) + "</tr>" for row in rows)
    files = ", ".join(f'<a href="../{COMPARISON_STEM}.{ext}">{COMPARISON_STEM}.{ext}</a>'
                      for ext in ("csv", "json", "md"))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in table_notes(rows))
    return [f"<h2>Model comparison</h2><p>{files}</p>",
            f"<div class=table><table><tr>{head}</tr>{body}</table></div><ul>{notes}</ul>"]


def write_index(study_name: str, outputs=None) -> Path:
    """Write ``outputs/<study>/figures/index.html``: the summary table, the study figures and
    every cell's figures (a PNG preview where there is one), each captioned with its source."""
    record = study_record(study_name, outputs)
    root = study_dir(study_name, outputs)
    figure_dir = root / FIGURE_DIR
    rows = read_summary(study_name, outputs)
    head = "".join(f"<th>{c}</th>" for c in INDEX_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{_format(row.get(c))}</td>" for c in INDEX_COLUMNS) + "</tr>"
        for row in rows)
    parts = [f"<h1>Study {html.escape(record['study'])}</h1>",
             f"<p>{html.escape(record.get('description', ''))}</p>",
             f"<p>Notebooks: {' → '.join(record['notebooks'])}. Table: "
             f'<a href="../{SUMMARY_FILE}">{SUMMARY_FILE}</a>.</p>',
             f"<div class=table><table><tr>{head}</tr>{body}</table></div>",
             *_comparison_html(study_name, outputs),
             "<h2>Study figures</h2><div class=grid>"]
    for path in sorted(figure_dir.glob("*.html")):
        if path.name != "index.html":
            parts.append(_figure_card("", figure_dir, path.stem,
                                      f"study {html.escape(record['study'])}"))
    parts.append("</div>")
    keys = {cell["cell"]: cell["key"] for cell in record["cells"]}
    for row in rows:
        folder, info = cell_location(root, row["cell"], keys.get(row["cell"]))
        values = ", ".join(f"{k}={v}" for k, v in (info or {}).get("values", {}).items())
        status = row["status"]
        parts.append(f"<h2 id=\"{html.escape(row['cell'])}\">Cell {html.escape(row['cell'])}"
                     f"</h2><p class=\"{'failed' if status == 'failed' else ''}\">"
                     f"{html.escape(values or BASE_CELL)} · {html.escape(status)}"
                     + (f" · {html.escape(row['error'])}" if row.get("error") else "")
                     + f" · <a href=\"../{quote(folder.name)}/\">folder</a>"
                     + "".join(f" · <a href=\"../{quote(folder.name)}/{quote(n['executed'])}\">"
                               f"{html.escape(n['notebook'])}</a>"
                               for n in (info or {}).get("notebooks", []))
                     + "</p>")
        if status != "complete":
            continue
        sources = _figure_sources(folder)
        parts.append("<div class=grid>")
        for path in sorted(folder.glob("*.html"), key=lambda p: (sources.get(p.stem, "~"),
                                                                  p.stem)):
            caption = (f"cell {html.escape(row['cell'])}"
                       + (f", {sources[path.stem]}" if path.stem in sources else ""))
            parts.append(_figure_card(f"../{quote(folder.name)}/", folder, path.stem, caption))
        parts.append("</div>")
    page = ("<!doctype html><html><head><meta charset=\"utf-8\"><title>Study "
            f"{html.escape(record['study'])}</title><style>{INDEX_STYLE}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    path = figure_dir / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


def build_study_report(study_name: str, outputs=None,
                       formats: Sequence[str] | None = None) -> list[Path]:
    """``summary.csv``, the study figures and the index of one study; returns the files."""
    from microlens.reports.export import DEFAULT_FORMATS, save_figures

    written = [write_summary(study_name, outputs)]
    written += write_model_comparison(study_name, outputs)
    written += write_study_learning_curve(study_name, outputs)
    figures = study_figures(study_name, outputs)
    if figures:
        written += save_figures(figures, study_dir(study_name, outputs) / FIGURE_DIR,
                                formats or DEFAULT_FORMATS)
    written.append(write_index(study_name, outputs))
    return written


def rebuild_study_figures(study_name: str, outputs=None, formats: Sequence[str] | None = None,
                          progress: bool = True) -> tuple[list[Path], list[str]]:
    """Rebuild every figure of a study from its recorded outputs (``./run_all.sh figures``):
    each finished cell's notebook figures, then the study figures, summary and index.

    Nothing is simulated, trained or re-run; cells that did not finish are left as they are.
    ``formats`` None keeps the formats each notebook recorded (study figures: html, png, pdf).
    A cell whose figures cannot be rebuilt (its data set or run was deleted, say) is reported
    and the others go on.

    Returns
    -------
    written : list of Path
        The files written; the last is the index.
    problems : list of str
        One line per cell that could not be rebuilt.
    """
    from tqdm.auto import tqdm

    from microlens.workflow.figures import rebuild_figures

    record = study_record(study_name, outputs)
    root = study_dir(study_name, outputs)
    written, problems = [], []
    finished = [c["cell"] for c in record["cells"]
                if (read_json(root / c["cell"] / CELL_RECORD) or {}).get("status") == "complete"]
    for cell in tqdm(finished, desc=f"figures {study_name}", unit="cell", disable=not progress):
        try:
            written += rebuild_figures(root / cell, formats=formats)
        except (OSError, KeyError, ValueError) as exc:
            problems.append(f"{cell}: {type(exc).__name__}: {exc}")
    return written + build_study_report(study_name, outputs, formats), problems


__all__ = ["COMPARISON_STEM", "build_study_report", "cell_kinds", "compares_models",
           "model_comparison_rows", "read_model_comparison", "read_summary",
           "rebuild_study_figures", "studies_with_outputs", "study_figures", "study_record",
           "summary_rows", "write_index", "write_model_comparison", "write_study_learning_curve",
           "write_summary"]
