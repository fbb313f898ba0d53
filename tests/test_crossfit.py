"""Cross-fitting by star: folds of an EWS folder, fold folders of links, rows restricted to
some stars, the threshold chosen on validation baselines and the merged cross-fitted report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import write_ews_event

from microlens.photometry import ews
from microlens.realdata.benchmark import run_benchmark
from microlens.realdata.benchmark.crossfit import (
    FOLD_FILE,
    baseline_scores,
    choose_threshold,
    crossfit_report,
    fold_folder,
    restrict,
    star_folds,
)
from microlens.realdata.benchmark.summary import probability

T0 = 2459000.0


def write_star(root, k, *, ra=None, n=200):
    """Event ``blg-000k``: daily points, a 2-mag Gaussian brightening peaking at day 150 and
    OGLE's fit peaking there; its own coordinates unless ``ra`` is given."""
    name = f"blg-{k:04d}"
    rng = np.random.default_rng(k)
    hjd = T0 + np.arange(n) + 0.1 * rng.random(n)
    mag = 18.0 - 2.0 * np.exp(-0.5 * ((hjd - T0 - 150.0) / 3.0) ** 2) \
        + 0.02 * rng.standard_normal(n)
    write_ews_event(root, name, hjd, mag, 0.02, ra=ra or f"17:{10 + k:02d}:00.00",
                    dec="17:19:44.68", fit={"tmax": T0 + 150.0, "tau": 20.0, "umin": 0.1,
                                            "i0": 18.0})
    return name


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Eight stars; blg-0008 is blg-0001's star seen in another field."""
    root = tmp_path_factory.mktemp("ews")
    for k in range(1, 8):
        write_star(root, k)
    write_star(root, 8, ra="17:11:00.00")  # same coordinates as blg-0001
    return root


class ScoreModel(torch.nn.Module):
    """A causal fake model: P(lensing) = sigmoid(max excess / error - 5) so far."""

    kind = "transformer"

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def predict_proba(self, times, flux, flux_err, mask=None, *, check_intervals=True):
        s = torch.cummax((torch.as_tensor(flux) - 1) / torch.as_tensor(flux_err), dim=1).values
        p = torch.sigmoid(s.double() - 5.0)
        return torch.stack([1 - p, 0.6 * p, 0.4 * p], dim=-1).float()


def rows_with(baselines, events=()):
    """Minimal benchmark rows: final answers [1 - p, p, 0] of baselines and events."""
    rows = [{"name": f"b{i}", "star": f"b{i}", "event": None,
             "baseline": {"final": [1 - p, p, 0.0]}} for i, p in enumerate(baselines)]
    rows += [{"name": f"e{i}", "star": f"e{i}", "baseline": None,
              "event": {"final": [1 - p, p, 0.0]}} for i, p in enumerate(events)]
    return rows


def test_star_folds_are_seeded_disjoint_and_keep_a_star_whole(folder):
    folds = star_folds(folder, seed=13)
    stars = {ev.star for ev in ews.read_folder(folder)}
    assert len(stars) == 7  # blg-0008 is blg-0001's star
    assert sorted(len(f) for f in folds) == [3, 4]
    assert set(folds[0]) | set(folds[1]) == stars and not set(folds[0]) & set(folds[1])
    assert folds == star_folds(folder, seed=13)
    assert any(star_folds(folder, seed=s) != folds for s in range(1, 6))
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2; got 1"):
        star_folds(folder, seed=0, n_folds=1)
    with pytest.raises(ValueError, match="n_folds = 9 but .* only 7 stars"):
        star_folds(folder, seed=0, n_folds=9)


def test_fold_folder_links_the_files_of_its_stars(folder, tmp_path):
    events = ews.read_folder(folder)
    star = next(ev.star for ev in events if ev.name == "blg-0001")
    other = next(ev.star for ev in events if ev.name == "blg-0004")
    out = fold_folder(folder, [star, other], tmp_path / "f0", record={"seed": 13, "fold": 0})
    linked = ews.read_folder(out)
    assert [ev.name for ev in linked] == ["blg-0001", "blg-0004", "blg-0008"]
    assert [ev.star for ev in linked] == [star, other, star]
    assert (out / "photometry" / "blg-0004_phot.dat").is_symlink()
    assert (out / "params" / "blg-0004_params.dat").read_text() == \
        (folder / "params" / "blg-0004_params.dat").read_text()
    record = json.loads((out / FOLD_FILE).read_text())
    assert record["seed"] == 13 and record["events"] == ["blg-0001", "blg-0004", "blg-0008"]
    with pytest.raises(FileExistsError, match="f0 exists"):
        fold_folder(folder, [star], out)
    with pytest.raises(ValueError, match="1 star.* not in .*: nowhere"):
        fold_folder(folder, ["nowhere"], tmp_path / "f1")
    assert not (tmp_path / "f1").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["f0"]  # no half-written folder


def test_write_folds_writes_every_fold_resumes_and_refuses_a_foreign_folder(folder, tmp_path,
                                                                           capsys):
    from microlens.realdata.benchmark.crossfit import main, write_folds

    paths = write_folds(folder, tmp_path / "folds", n_folds=2, seed=5)
    assert [p.name for p in paths] == ["fold0", "fold1"]
    stars = [{ev.star for ev in ews.read_folder(p)} for p in paths]
    assert not stars[0] & stars[1]
    assert stars[0] | stars[1] == {ev.star for ev in ews.read_folder(folder)}
    assert [sorted(s) for s in stars] == star_folds(folder, seed=5, n_folds=2)
    (paths[1] / FOLD_FILE).unlink()  # as if interrupted before fold 1 was finished
    import shutil

    shutil.rmtree(paths[1])
    assert write_folds(folder, tmp_path / "folds", n_folds=2, seed=5) == paths
    assert main([str(folder), "--out", str(tmp_path / "folds"), "--seed", "5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["stars"] for p in printed] == [len(s) for s in stars]
    with pytest.raises(FileExistsError, match="fold0 exists and is not fold 0 of 2 .* seed 6"):
        write_folds(folder, tmp_path / "folds", n_folds=2, seed=6)


def test_choose_threshold_calls_at_most_the_given_share():
    rows = rows_with(np.linspace(0.0, 0.99, 100), events=[0.5])
    t = choose_threshold(rows, 0.03)  # a log-odds score
    assert np.sum(baseline_scores(rows) >= t) == 3 and probability(t) <= 0.96 + 1e-12
    assert np.sum(baseline_scores(rows) >= choose_threshold(rows, 0.0)) == 0
    tied = rows_with([0.9] * 10 + [0.1] * 90)
    assert np.sum(baseline_scores(tied) >= choose_threshold(tied, 0.05)) == 0
    # answers whose P(lensing) is 1 to the last digit still order by their log-odds
    confident = rows_with([0.5] * 100)
    for i, row in enumerate(confident):  # P(lensing) 1.0 in float64 for all: P(no event) orders
        row["baseline"]["final"] = [1e-20 if i < 3 else 1e-12, 1.0, 0.0]
    t = choose_threshold(confident, 0.03)
    assert np.sum(baseline_scores(confident) >= t) == 3  # though every P(lensing) is 1.0
    with pytest.raises(ValueError, match="max_false_alarm must be in \\[0, 1\\); got 1.5"):
        choose_threshold(rows, 1.5)
    with pytest.raises(ValueError, match="no baseline segment"):
        choose_threshold(rows_with([], events=[0.3]))


def test_crossfit_report_scores_each_fold_at_its_own_validation_threshold(folder):
    record = run_benchmark(folder, ScoreModel(), peer=None)
    stars = sorted({r["star"] for r in record["events"]})
    a, b = stars[:3], stars[3:]
    part = restrict(record, a)
    assert sorted({r["star"] for r in part["events"]}) == a
    assert part["counts"]["scored_stars"] == 3
    assert part["metrics"]["model"]["events_lensing"]["of"] == 3
    # fold 0 scores a and takes its threshold on b; fold 1 the other way round
    merged = crossfit_report([record, record], [a, b], [b, a])
    assert merged["folds"] == 2 and len(merged["events"]) == len(record["events"])
    assert merged["metrics"] == record["metrics"]
    for fold, val in zip(merged["crossfit"]["folds"], (b, a), strict=True):
        val_rows = restrict(record, val)["events"]
        assert fold["log_odds_threshold"] == choose_threshold(val_rows, 0.03)
        assert fold["threshold"] == probability(fold["log_odds_threshold"])
        assert fold["validation_baselines_lensing"]["count"] == 0  # 3 % of <= 4 baselines
    point = merged["operating_point"]
    assert point["events_found"]["of"] == len(record["events"])
    assert point["events_found"]["count"] == sum(
        f["operating_point"]["events_found"]["count"] for f in merged["crossfit"]["folds"])
    assert merged["argmax_point"]["events_found"]["of"] == len(record["events"])
    with pytest.raises(ValueError, match="scores star .* that its threshold is chosen on"):
        crossfit_report([record], [a], [a])
    with pytest.raises(ValueError, match="is scored in two folds"):
        crossfit_report([record, record], [a, a], [b, b])
    with pytest.raises(ValueError, match="as many records"):
        crossfit_report([record], [a, b], [b, a])
