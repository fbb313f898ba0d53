"""Tests of microlens.photometry.files: real photometry files and MulensData in baseline-flux
units."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from microlens.photometry import files as ph

# a PhotometryWarning nobody expected fails the test: every warning is asserted where it is due
pytestmark = pytest.mark.filterwarnings("error::microlens.photometry.files.PhotometryWarning")
K = math.log(10.0) / 2.5
SYSTEMS = {  # as written by a caller -> canonical name, offset to full JD
    "JD": ("JD", 0.0),
    "HJD": ("HJD", 0.0),
    "HJD'": ("HJD-2450000", 2450000.0),
    "HJD-2400000": ("HJD-2400000", 2400000.0),
    "BJD_TDB": ("BJD", 0.0),
    "MJD": ("MJD", 2400000.5),
}
FORMATS = ("whitespace", "comma", "header", "ipac")


def pspl(t, t0, u0, te):
    u = np.sqrt(u0**2 + ((t - t0) / te) ** 2)
    return (u * u + 2) / (u * np.sqrt(u * u + 4))


def write_lc(path: Path, fmt: str, t, v, e, time_name="time", value_name="mag", extra=True):
    """Write columns in one of FORMATS; values written with repr (exact float round trip)."""
    rows = [
        (repr(float(a)), repr(float(b)), repr(float(c)), "7.5")
        for a, b, c in zip(t, v, e, strict=True)
    ]
    if not extra:
        rows = [r[:3] for r in rows]
    names = (time_name, value_name, f"{value_name}_err", "extra")[: len(rows[0])]
    if fmt == "whitespace":
        lines = ["# synthetic light curve", "# columns: time value error extra"]
        lines += ["  ".join(r) for r in rows]
    elif fmt == "comma":
        lines = ["# synthetic", *(",".join(r) for r in rows)]
    elif fmt == "header":
        lines = ["Synthetic light curve of a test event", " ".join(names)]
        lines += [" ".join(r) for r in rows]
    elif fmt == "ipac":
        w = 24
        lines = ['\\STAR_ID = "TEST-1"', '\\DATA_CATEGORY = "Photometric light curve"']
        lines.append("|" + "|".join(f"{n:>{w - 1}}" for n in names) + "|")
        lines.append("|" + "|".join(f"{'double':>{w - 1}}" for _ in names) + "|")
        lines += [" " + " ".join(f"{x:>{w - 1}}" for x in r) for r in rows]
    else:
        raise AssertionError(fmt)
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic(n=60, seed=0, base_mag=18.0):
    rng = np.random.default_rng(seed)
    jd = 2457000.0 + np.sort(rng.uniform(0.0, 300.0, n))
    flux = 0.6 * pspl(jd, 2457150.0, 0.2, 20.0) + 0.4
    err_m = rng.uniform(0.01, 0.05, n)
    mag = base_mag - 2.5 * np.log10(flux)
    return jd, flux, mag, err_m


# --------------------------------------------------------------------------------------------
# Round trips: every format x every time system x mag/flux
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mag", "flux"])
@pytest.mark.parametrize("system", list(SYSTEMS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt, system, kind):
    canon, offset = SYSTEMS[system]
    jd, flux, mag, err_m = synthetic()
    t_file = jd - offset
    if kind == "mag":
        v, e, given = mag, err_m, {"baseline_mag": 18.0}
        want_flux = 10 ** (-0.4 * (mag - 18.0))
        want_err = want_flux * K * err_m
    else:
        v, e, given = 2000.0 * flux, 2000.0 * flux * K * err_m, {"baseline_flux": 2000.0}
        want_flux, want_err = v / 2000.0, e / 2000.0
    named = fmt in ("header", "ipac")
    suffix = {"whitespace": "dat", "comma": "csv", "header": "txt", "ipac": "tbl"}[fmt]
    path = write_lc(tmp_path / f"lc.{suffix}", fmt, t_file, v, e, time_name=system, value_name=kind)
    # header and IPAC files name the time column after the system: inferred from the name
    kw = {} if named else {"time_system": system}
    p = ph.read_file(path, **given, **kw)
    assert p.time_system == canon
    assert p.time_system_inferred is named
    assert p.kind == kind and p.kind_inferred
    assert p.reference_epoch == ph.DEFAULT_REFERENCE_EPOCH
    truth = t_file + offset
    np.testing.assert_allclose(p.absolute_times(), truth, rtol=0, atol=1e-6)
    np.testing.assert_allclose(p.flux, want_flux, rtol=1e-9)
    np.testing.assert_allclose(p.flux_err, want_err, rtol=1e-9)
    for a in (p.times, p.flux, p.flux_err):
        assert a.dtype == np.float64
    assert np.all(np.diff(p.times) > 0)
    assert len(p) == 60 and p.observatories == ("lc",) and np.all(p.observatory == 0)
    assert p.dropped == {}


@pytest.mark.parametrize(
    ("values", "hint", "expected"),
    [
        (2457001.5, None, "HJD"),
        (2457001.5, "Geocentric JD", "JD"),
        (2457001.5, "Heliocentric JD", "HJD"),
        (2457001.5, "BJD_TDB", "BJD"),
        (7001.5, None, "HJD-2450000"),
        (7001.5, "BJD", "BJD-2450000"),
        (7001.5, "HJD", "HJD-2450000"),  # a column named HJD over HJD' values: a frame hint
        (57001.5, None, "MJD"),
        (57001.5, "HJD", "HJD-2400000"),
        (57001.5, "HJD-2400000", "HJD-2400000"),
    ],
)
def test_time_system_rule(values, hint, expected):
    t = values + np.arange(20.0)
    assert ph.infer_time_system(t, hint) == expected


def test_time_system_rule_rejects_unknown_range(tmp_path):
    jd, flux, mag, err = synthetic()
    path = write_lc(tmp_path / "days.dat", "whitespace", jd - jd[0], mag, err)
    with pytest.raises(ValueError, match=r"days\.dat: cannot infer the time system.*time_system="):
        ph.read_file(path)
    # absolute times outside JD 2,400,000..2,500,000 are refused
    with pytest.raises(ValueError, match=r"outside the valid 2400000\.\.2500000"):
        ph.read_file(
            write_lc(tmp_path / "x.dat", "whitespace", jd - jd[0] + 100, mag, err),
            time_system="HJD",
        )


def test_ipac_frame_keyword_and_blank_cells(tmp_path):
    """NASA Exoplanet Archive style: JD column, frame in a keyword, blank trailing cells."""
    jd, flux, mag, err = synthetic(n=30)
    w = 20
    names = ["JD", "RELATIVE_MAGNITUDE", "MAGNITUDE_UNCERTAINTY", "RELATIVE_FLUX", "FLUX_UNC"]
    lines = ['\\TIME_REFERENCE_FRAME = "Heliocentric JD"', '\\COMMENT = ""']
    lines.append("|" + "|".join(f"{n:>{w - 1}}" for n in names) + "|")
    for k, (a, b, c) in enumerate(zip(jd, mag, err, strict=True)):
        cells = [f"{a:.7f}", f"{b:.4f}", "" if k == 5 else f"{c:.4f}", "", ""]
        lines.append(" " + " ".join(f"{x:>{w - 1}}" for x in cells))
    path = tmp_path / "MOA_test.tbl"
    path.write_text("\n".join(lines) + "\n")
    p = ph.read_file(path, baseline_mag=18.0)
    assert p.time_system == "HJD" and p.time_system_inferred
    assert p.kind == "mag" and p.files[0].columns[:2] == ("JD", "RELATIVE_MAGNITUDE")
    assert p.dropped == {"non_finite": 1} and len(p) == 29  # the blank error cell
    np.testing.assert_allclose(p.absolute_times(), np.delete(np.round(jd, 7), 5), atol=1e-6)


def test_columns_by_name_and_index(tmp_path):
    jd, flux, mag, err = synthetic(n=20)
    path = tmp_path / "named.txt"
    rows = [f"{e:.4f} {float(m)!r} {float(t)!r}" for t, m, e in zip(jd, mag, err, strict=True)]
    path.write_text("err mag HJD\n" + "\n".join(rows) + "\n")
    by_name = ph.read_file(path, columns=("HJD", "mag", "err"), baseline_mag=18.0)
    by_index = ph.read_file(path, columns=(2, 1, 0), baseline_mag=18.0)
    np.testing.assert_array_equal(by_name.flux, by_index.flux)
    np.testing.assert_allclose(by_name.absolute_times(), jd, atol=1e-6)
    with pytest.raises(ValueError, match=r"named\.txt: no column named 'time'.*\['err', 'mag'"):
        ph.read_file(path, columns=("time", "mag", "err"))
    bare = write_lc(tmp_path / "bare.dat", "comma", jd, mag, err)
    with pytest.raises(ValueError, match=r"bare\.dat: column 'mag' requested by name"):
        ph.read_file(bare, columns=(0, "mag", 2))


def test_kind_rule():
    v = np.linspace(15, 19, 50)
    assert ph.infer_kind(v, np.full(50, 0.02)) == "mag"
    # values in the magnitude range are not overruled by large errors: magnitudes (a faint
    # source) up to a median error of 2; beyond, both readings are plausible: refused
    assert ph.infer_kind(v, np.full(50, 0.9)) == "mag"
    with pytest.raises(ValueError, match=r"cannot tell magnitudes from flux.*kind='mag'"):
        ph.infer_kind(v, np.full(50, 3.0), source="faint.dat")
    assert ph.infer_kind(v * 100, np.full(50, 0.02)) == "flux"
    assert ph.infer_kind(v, np.full(50, 0.02), column_name="Relative_Flux") == "flux"
    assert ph.infer_kind(v * 100, np.full(50, 9.0), units="mag") == "mag"


# --------------------------------------------------------------------------------------------
# Baseline estimate
# --------------------------------------------------------------------------------------------


def _noisy_pspl(seed, t0, te, n=500, sigma=0.01):
    rng = np.random.default_rng(seed)
    t = 2457000.0 + np.sort(rng.uniform(0, 1000, n))
    f_true = 0.7 * pspl(t, t0, 0.1, te) + 0.3
    f_err = sigma * np.sqrt(f_true)
    return t, f_true + rng.standard_normal(n) * f_err, f_err, f_true


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_baseline_with_30_percent_of_points_in_event(tmp_path, seed):
    te = 75.0  # |u| < 2 covers 4 * t_E / 1000 d = 30 % of the points
    t, f, f_err, f_true = _noisy_pspl(seed, 2457500.0, te)
    in_event = pspl(t, 2457500.0, 0.1, te) > pspl(np.array([2 * te]), 0.0, 0.1, te)[0]
    assert 0.25 < in_event.mean() < 0.35
    mag = 17.0 - 2.5 * np.log10(f)
    p = ph.read_file(write_lc(tmp_path / "e.dat", "whitespace", t, mag, f_err / f / K))
    est_flux_of_truth = 10 ** (-0.4 * (p.baseline_mag[0] - 17.0))
    assert abs(est_flux_of_truth - 1) < 0.01
    assert p.files[0].baseline_inferred
    # a pure median would be fooled: show the test can fail
    assert abs(np.median(f) - 1) > 0.01


@pytest.mark.parametrize("seed", [4, 5])
def test_baseline_curve_starting_mid_event(tmp_path, seed):
    t, f, f_err, f_true = _noisy_pspl(seed, 2456990.0, 120.0, n=300)
    assert f_true[0] > 3  # the first point is near the peak
    p = ph.read_file(write_lc(tmp_path / "m.csv", "comma", t, 3000 * f, 3000 * f_err))
    assert p.kind == "flux"
    assert abs(p.files[0].baseline / 3000 - 1) < 0.01
    np.testing.assert_allclose(np.median(p.flux[-50:]), 1.0, atol=0.01)


def test_baseline_flat_curve_is_its_mean():
    rng = np.random.default_rng(7)
    f = 5.0 + 0.05 * rng.standard_normal(1000)
    assert abs(ph.estimate_baseline_flux(f) - 5.0) < 0.01


def test_difference_flux_is_refused_with_advice(tmp_path):
    t, f, f_err, _ = _noisy_pspl(8, 2457500.0, 20.0, n=200)
    path = write_lc(tmp_path / "diff.dat", "whitespace", t, 1000 * (f - 1), 1000 * f_err)
    with pytest.raises(ValueError, match=r"diff\.dat: the baseline flux estimate .*difference"):
        ph.read_file(path)
    p = ph.read_file(path, flux_offset=1000.0)
    assert abs(p.files[0].baseline / 1000 - 1) < 0.01


# --------------------------------------------------------------------------------------------
# Several files of one event
# --------------------------------------------------------------------------------------------


def _two_sites(tmp_path, n_a=80, n_b=50, spitzer=False):
    rng = np.random.default_rng(11)
    out = []
    for name, n, base in (("OGLE", n_a, 17.0), ("KMTC", n_b, 19.0)):
        t = 2457000.0 + np.sort(rng.uniform(0, 400, n))
        f = 0.5 * pspl(t, 2457200.0, 0.3, 15.0) + 0.5
        out.append(write_lc(tmp_path / f"{name}.dat", "whitespace", t, base - 2.5 * np.log10(f),
                            np.full(n, 0.01)))  # fmt: skip
    if spitzer:
        t = 2457190.0 + np.arange(20.0)
        out.append(write_lc(tmp_path / "spitzer_ch1.dat", "whitespace", t, np.full(20, 16.0),
                            np.full(20, 0.01)))  # fmt: skip
    return out


def test_combine_all_keeps_observatory_per_point(tmp_path):
    a, b = _two_sites(tmp_path)
    p = ph.read_event(tmp_path, baseline_mag={"OGLE.dat": 17.0, "KMTC": 19.0})
    assert p.name == tmp_path.name
    assert p.observatories == ("KMTC", "OGLE")  # directory in name order
    assert len(p) == 130 and np.all(np.diff(p.times) > 0)
    assert p.baseline_mag == (19.0, 17.0)
    for code, path in enumerate((b, a)):
        single = ph.read_file(path, baseline_mag=p.baseline_mag[code])
        mask = p.observatory == code
        np.testing.assert_array_equal(p.times[mask], single.times)
        np.testing.assert_array_equal(p.flux[mask], single.flux)
    # per-file inferred baselines: each near its own truth
    q = ph.read_event([a, b])
    assert q.observatories == ("OGLE", "KMTC")
    np.testing.assert_allclose(q.baseline_mag, (17.0, 19.0), atol=0.01)


def test_combine_main_policy(tmp_path):
    a, b = _two_sites(tmp_path)
    p = ph.read_event([a, b], combine="main")
    assert p.observatories == ("OGLE",) and len(p) == 80
    assert (str(b), "combine='main' keeps one observatory") in p.excluded
    q = ph.read_event([a, b], combine="main", main="KMTC")
    assert q.observatories == ("KMTC",) and len(q) == 50
    with pytest.raises(ValueError, match=r"main='CTIO' is none of the observatories"):
        ph.read_event([a, b], combine="main", main="CTIO")
    with pytest.raises(ValueError, match=r"unknown combine 'best'; valid: 'all', 'main'"):
        ph.read_event([a, b], combine="best")


def test_identical_times_across_files_drop_later(tmp_path):
    t = 2457000.0 + np.arange(15.0)
    mag, err = 18 + 0.01 * np.sin(t), np.full(15, 0.01)
    a = write_lc(tmp_path / "a.dat", "whitespace", t, mag, err)
    b = write_lc(tmp_path / "b.dat", "whitespace", np.r_[t[:3], t[3:] + 0.5], mag, err)
    p = ph.read_event([a, b])
    assert p.dropped == {"duplicate_time_across_files": 3}
    assert len(p) == 27 and np.all(np.diff(p.times) > 0)
    assert np.all(p.observatory[:3] == 0)  # the earlier-listed file keeps the shared times
    assert np.bincount(p.observatory).tolist() == [15, 12]


def test_space_based_files_excluded_by_default(tmp_path):
    a, b, s = _two_sites(tmp_path, spitzer=True)
    p = ph.read_event(tmp_path)
    assert "spitzer_ch1" not in p.observatories
    assert p.excluded[0][0] == str(s) and "parallax" in p.excluded[0][1]
    assert any("spitzer_ch1.dat: excluded" in n for n in p.notes)
    q = ph.read_event(tmp_path, include_space=True)
    assert "spitzer_ch1" in q.observatories and len(q) == len(p) + 20
    r = ph.read_event(tmp_path, space=["KMTC.dat"])
    assert r.observatories == ("OGLE",)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


def _lines(tmp_path, name, body_rows, header="# t mag err"):
    path = tmp_path / name
    path.write_text("\n".join([header, *body_rows]) + "\n")
    return path


def _good_rows(n=12, start=7000.0):
    return [f"{start + i:.5f} {18 + 0.01 * (i % 3):.3f} 0.010" for i in range(n)]


def test_non_numeric_line_error_and_drop(tmp_path):
    rows = _good_rows()
    rows.insert(4, "7004.50000 18.0xx 0.010")  # file line 6
    path = _lines(tmp_path, "bad.dat", rows)
    with pytest.raises(ValueError, match=r"bad\.dat, line 6: value column 1 holds '18\.0xx'"):
        ph.read_file(path)
    with pytest.warns(ph.PhotometryWarning, match=r"bad\.dat: dropped 1 of 13 points.*bad_line 1"):
        p = ph.read_file(path, on_bad_line="drop")
    assert p.dropped == {"bad_line": 1} and len(p) == 12
    short = _lines(tmp_path, "short.dat", [*_good_rows(), "7100.0 18.1"])
    with pytest.raises(ValueError, match=r"short\.dat, line 14: has 2 columns but the error"):
        ph.read_file(short)
    text = _lines(tmp_path, "text.dat", [*_good_rows(), "end of data"])
    with pytest.raises(ValueError, match=r"text\.dat, line 14: time column 0 holds 'end'"):
        ph.read_file(text)


def test_non_finite_and_bad_errors(tmp_path):
    rows = _good_rows(14)
    rows[2] = "7002.0 nan 0.01"  # line 4
    rows[5] = "7005.0 18.0 inf"  # line 7
    rows[7] = "7007.0 18.0 0.0"  # line 9
    rows[9] = "7009.0 18.0 -0.02"  # line 11
    path = _lines(tmp_path, "nan.dat", rows)
    with pytest.warns(
        ph.PhotometryWarning,
        match=r"nan\.dat: dropped 4 of 14 points \(29%.*non_finite 2, non_positive_error 2.*"
        r"strict=True",
    ):
        p = ph.read_file(path)
    assert p.dropped == {"non_finite": 2, "non_positive_error": 2} and len(p) == 10
    assert np.all(p.flux_err > 0) and np.all(np.isfinite(p.flux))
    with pytest.raises(ValueError, match=r"nan\.dat, line 4: time=7002\.0, value=nan.*strict"):
        ph.read_file(path, strict=True)
    rows[2], rows[5] = _good_rows(14)[2], _good_rows(14)[5]
    with pytest.raises(ValueError, match=r"line 9: .*error=0\.0; strict=True requires errors > 0"):
        ph.read_file(_lines(tmp_path, "zero.dat", rows), strict=True)


def test_unsorted_times_are_sorted_and_counted(tmp_path):
    rows = _good_rows(12)
    rows[3], rows[8] = rows[8], rows[3]
    p = ph.read_file(_lines(tmp_path, "unsorted.dat", rows))
    assert np.all(np.diff(p.times) > 0) and p.n_reordered == 2 and p.dropped == {}
    np.testing.assert_allclose(p.times, 7000.0 + np.arange(12.0))


def test_duplicate_times_in_one_file(tmp_path):
    rows = _good_rows(12)
    rows[6] = rows[2].replace("18.0", "18.2")  # same time as line 4, on line 8
    path = _lines(tmp_path, "dup.dat", rows)
    with pytest.raises(ValueError, match=r"dup\.dat: duplicate time 7002\.0 on lines 4 and 8"):
        ph.read_file(path)
    with pytest.warns(ph.PhotometryWarning, match=r"dup\.dat: dropped 1 of 12.*duplicate_time 1"):
        p = ph.read_file(path, on_duplicate="drop")
    assert p.dropped == {"duplicate_time": 1} and len(p) == 11


def test_too_few_points_and_missing_file(tmp_path):
    rows = _good_rows(9) + ["7050.0 nan 0.01"]
    with pytest.raises(
        ValueError,
        match=r"few\.dat: 9 usable points after dropping "
        r"\{'non_finite': 1\}, fewer than min_points=10",
    ):
        ph.read_file(_lines(tmp_path, "few.dat", rows))
    with pytest.warns(ph.PhotometryWarning, match=r"few\.dat: dropped 1 of 10"):
        assert len(ph.read_file(_lines(tmp_path, "few.dat", rows), min_points=5)) == 9
    with pytest.raises(FileNotFoundError, match=r"nowhere\.dat"):
        ph.read_file(tmp_path / "nowhere.dat")
    with pytest.raises(FileNotFoundError, match=r"gone\.dat"):
        ph.read_event([tmp_path / "few.dat", tmp_path / "gone.dat"])


def test_unknown_option_names(tmp_path):
    path = _lines(tmp_path, "ok.dat", _good_rows())
    with pytest.raises(ValueError, match=r"unknown time_system 'TJD'; valid: JD, HJD, BJD.*MJD"):
        ph.read_file(path, time_system="TJD")
    with pytest.raises(ValueError, match=r"unknown kind 'magnitude'; valid: 'mag', 'flux'"):
        ph.read_file(path, kind="magnitude")
    with pytest.raises(ValueError, match=r"unknown on_bad_line 'skip'; valid: 'error', 'drop'"):
        ph.read_file(path, on_bad_line="skip")
    assert ph.read_file(path, time_system="hjd'").time_system == "HJD-2450000"


# --------------------------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------------------------


def test_result_is_frozen_and_converts_to_float32(tmp_path):
    p = ph.read_file(_lines(tmp_path, "r.dat", _good_rows()), baseline_mag=18.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "other"
    with pytest.raises(ValueError, match="read-only"):
        p.flux[0] = 2.0
    t32, f32, e32 = p.to_arrays()
    assert t32.dtype == f32.dtype == e32.dtype == np.float32
    np.testing.assert_allclose(t32, p.times, rtol=1e-7)
    t0, _, _ = p.to_arrays(origin=p.times[0])
    assert t0[0] == 0.0 and t0[-1] == 11.0
    np.testing.assert_allclose(p.absolute_times(), 2457000.0 + np.arange(12.0))


# --------------------------------------------------------------------------------------------
# MulensModel input
# --------------------------------------------------------------------------------------------


def test_from_mulens_data_mag_flux_bad_and_list():
    mm = pytest.importorskip("MulensModel")
    jd, flux, mag, err = synthetic(n=40)
    bad = np.zeros(40, bool)
    bad[[3, 30]] = True
    d_mag = mm.MulensData([jd, mag, err], phot_fmt="mag", bad=bad, plot_properties={"label": "A"})
    p = ph.from_mulens_data(d_mag, baseline_mag=18.0)
    assert p.dropped == {"bad_flag": 2} and len(p) == 38 and p.name == "A"
    assert p.time_system == "HJD" and p.time_system_inferred and p.kind == "mag"
    np.testing.assert_allclose(p.absolute_times(), jd[~bad], atol=1e-6)
    np.testing.assert_allclose(p.flux, flux[~bad], rtol=1e-9)
    np.testing.assert_allclose(p.flux_err, flux[~bad] * K * err[~bad], rtol=1e-9)
    assert len(ph.from_mulens_data(d_mag, include_bad=True, baseline_mag=18.0)) == 40

    jd2 = jd + 0.25
    d_flux = mm.MulensData([jd2, 500 * flux, 5 * flux], phot_fmt="flux", telescope="B")
    both = ph.from_mulens_data([d_mag, d_flux], baseline_mag=18.0, baseline_flux=500.0)
    assert both.observatories == ("A", "B") and both.kind == "mixed" and len(both) == 78
    assert np.all(np.diff(both.times) > 0)
    np.testing.assert_allclose(both.flux[both.observatory == 1], flux, rtol=1e-9)
    main = ph.from_mulens_data([d_mag, d_flux], combine="main")
    assert main.observatories == ("B",)  # 40 usable points against 38
    with pytest.raises(TypeError, match=r"item 0 is ndarray, not MulensData"):
        ph.from_mulens_data([jd])


# --------------------------------------------------------------------------------------------
# Events shipped with MulensModel
# --------------------------------------------------------------------------------------------

PUBLISHED = {"MB08310": 2, "OB03235": 2, "OB05086": 1, "OB08092": 2, "OB140939": 1, "OB161195": 2}
AUTHORS = {
    "MB08310": "Janczak", "OB03235": "Bond", "OB05086": "Wyrzykowski", "OB08092": "Poleski",
    "OB140939": "Yee", "OB161195": "Shvartzvald",
}  # fmt: skip


@pytest.fixture(scope="module")
def events():
    pytest.importorskip("MulensModel")
    return ph.shipped_events()


def test_shipped_events_table(events):
    assert list(events) == sorted(PUBLISHED) and "KB180003" not in events
    for name, ev in events.items():
        assert ev.published_class == PUBLISHED[name]
        assert AUTHORS[name] in ev.reference and "adsabs" in ev.reference
        on_disk = {p.name for p in ev.directory.iterdir() if "readme" not in p.name.lower()}
        assert set(ev.files) | {f for f, _ in ev.excluded_files} == on_disk  # every file judged
        assert not any("spitzer" in f.lower() for f in ev.files)
    assert "q ≈ 4e-5" in events["OB161195"].published_note
    assert "triple lens" in events["OB08092"].published_note


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_every_shipped_event_reads(events, name):
    p = ph.read_shipped_event(name)
    ev = events[name]
    assert p.name == name and len(p) >= 250
    assert p.time_system_inferred and p.kind == "mag"
    assert np.all(np.diff(p.times) > 0) and np.all(p.flux_err > 0)
    assert np.all(np.isfinite(p.flux))
    span = p.times[-1] - p.times[0]
    assert 150 < span < 3000
    assert 2_451_000 < p.absolute_times()[0] < 2_460_000
    assert {f for f, _ in ev.excluded_files} <= {Path(s).name for s, _ in p.excluded}
    for code in range(len(p.observatories)):
        f = p.flux[p.observatory == code]
        e = p.flux_err[p.observatory == code]
        at_base = np.abs(f - 1) < 3 * e
        assert at_base.mean() > 0.3  # a large share of points at the baseline
        assert abs(np.median(f[at_base]) - 1) < 0.03
        assert np.quantile(f, 0.1) < 1 < np.quantile(f, 0.7)  # baseline at the faint end
        assert f.max() > 1.3  # each observatory sees the event


def test_shipped_event_options(events):
    p = ph.read_shipped_event("OB140939", include_space=True)
    assert p.observatories == ("ob140939_OGLE", "ob140939_Spitzer")
    q = ph.read_shipped_event("OB161195", combine="main")
    assert q.observatories == ("KCT01I",)
    # why OB03235's MOA file is excluded: it is difference photometry
    with pytest.raises(ValueError, match=r"OB03235_MOA\.tbl\.txt: .*difference photometry"):
        ph.read_file(events["OB03235"].directory / "OB03235_MOA.tbl.txt")
    with pytest.raises(ValueError, match=r"unknown shipped event 'KB180003'; valid: MB08310"):
        ph.read_shipped_event("KB180003")


# --------------------------------------------------------------------------------------------
# Nothing guessed quietly: the cases users reported
# --------------------------------------------------------------------------------------------


def _table(tmp_path, name, header, rows):
    path = tmp_path / name
    path.write_text("\n".join(([header] if header else []) + rows) + "\n")
    return path


def _mag_rows(n=40, fmt="{t:.5f} {m:.4f} {e:.4f}", err=0.02, t0=2457000.0, seed=3):
    jd, _, mag, _ = synthetic(n=n, seed=seed)
    jd = jd - 2457000.0 + t0
    rng = np.random.default_rng(seed)
    e = np.full(n, err) * rng.uniform(0.8, 1.2, n)
    return jd, mag, e, [fmt.format(t=a, m=b, e=c) for a, b, c in zip(jd, mag, e, strict=True)]


def test_header_naming_the_columns_is_used(tmp_path):
    """flux,flux_err,HJD used to be read by position (time = flux): now by the names."""
    jd, flux, _, _ = synthetic(n=50)
    f, fe = 2000.0 * flux, np.full(50, 15.0)
    rows = [f"{float(a)!r},{float(b)!r},{float(c)!r}" for a, b, c in zip(f, fe, jd, strict=True)]
    p = ph.read_file(_table(tmp_path, "named.csv", "flux,flux_err,HJD", rows))
    np.testing.assert_allclose(p.absolute_times(), jd, atol=1e-6)
    assert p.kind == "flux" and p.n_reordered == 0 and p.files[0].columns == (
        "HJD", "flux", "flux_err")
    np.testing.assert_allclose(p.flux * p.files[0].baseline, f, rtol=1e-12)
    assert any("columns from the header names" in c for c in p.choices)
    # suffixed and case-varied names, columns in any order
    rows = [f"{c:.5f} {float(b)!r} {a - 2450000:.6f}"
            for a, b, c in zip(jd, flux, fe / 2000, strict=True)]
    q = ph.read_file(_table(tmp_path, "suffix.dat", "# SIGMA Mag HJD-2450000", rows),
                     kind="flux")
    assert q.files[0].columns == ("HJD-2450000", "Mag", "SIGMA")
    assert q.time_system == "HJD-2450000"
    np.testing.assert_allclose(q.absolute_times(), jd, atol=1e-5)


def test_kmtnet_header_with_flux_and_magnitude_columns(tmp_path):
    jd, mag, e, _ = _mag_rows(n=40, t0=8000.0)
    rows = [f"{a:.5f} {-100 + 5 * k:.4f} 300.0 {b:.4f} {c:.5f} 4.1 900.0"
            for k, (a, b, c) in enumerate(zip(jd, mag, e, strict=True))]
    header = "# HJD \\Delta_flux flux_err mag mag_err fwhm sky"
    p = ph.read_file(_table(tmp_path, "KMTC01_I.pysis", header, rows))
    assert p.kind == "mag" and p.files[0].columns == ("HJD", "mag", "mag_err")
    assert any("magnitude column preferred over flux" in c and "Delta_flux" in c
               for c in p.choices), p.choices
    np.testing.assert_allclose(p.flux_err / p.flux, K * np.round(e, 5), rtol=1e-9)
    # the flux column on request, by name
    q = ph.read_file(_table(tmp_path, "KMTC01_I.pysis", header, rows),
                     columns=("HJD", "\\Delta_flux", "flux_err"), flux_offset=1000.0)
    assert q.kind == "flux" and q.files[0].columns[1] == "\\Delta_flux"
    # two magnitude columns: the first is read, with a warning naming both
    amb = _table(tmp_path, "amb.dat", "HJD mag_aper mag_psf mag_err",
                 [f"{a:.5f} {b:.4f} {b + 0.01:.4f} {c:.4f}"
                  for a, b, c in zip(jd, mag, e, strict=True)])
    with pytest.warns(ph.PhotometryWarning, match=r"amb\.dat: the header names 2 mag columns "
                      r"\['mag_aper', 'mag_psf'\].*columns="):
        r = ph.read_file(amb)
    assert r.files[0].columns == ("HJD", "mag_aper", "mag_err")


def test_header_roles_that_do_not_fit_are_refused(tmp_path):
    jd, mag, e, rows = _mag_rows()
    with pytest.raises(ValueError, match=r"nt\.dat: the header .* names no time column.*columns="):
        ph.read_file(_table(tmp_path, "nt.dat", "when mag mag_err", rows))
    with pytest.raises(ValueError, match=r"ne\.dat: .*no error column for the mag column"):
        ph.read_file(_table(tmp_path, "ne.dat", "HJD mag flux_err", rows))
    # explicit columns that contradict the header's names
    path = _table(tmp_path, "named.dat", "HJD mag mag_err", rows)
    with pytest.raises(ValueError, match=r"takes column 2 'mag_err' as the value, but its header "
                       r"name says it is a error of mag column"):
        ph.read_file(path, columns=(0, 2, 1))
    # a header naming no role at all: by position, said so
    p = ph.read_file(_table(tmp_path, "abc.dat", "a b c", rows))
    assert p.files[0].columns == ("a", "b", "c") and p.kind == "mag"
    assert any("by position" in c for c in p.choices)


def test_time_error_value_layout_is_refused(tmp_path):
    jd, mag, e, _ = _mag_rows()
    rows = [f"{a:.5f} {c:.4f} {b:.4f}" for a, b, c in zip(jd, mag, e, strict=True)]
    path = _table(tmp_path, "swapped.dat", None, rows)
    with pytest.raises(ValueError, match=r"swapped\.dat: the value column 'col1' .* looks like an "
                       r"error column and the error column like magnitudes.*columns=\(0, 2, 1\)"):
        ph.read_file(path)
    p = ph.read_file(path, columns=(0, 2, 1))
    np.testing.assert_allclose(p.flux_err / p.flux, K * np.round(e, 4), rtol=1e-9)
    # flux laid out time, error, flux: the same rule
    flux_rows = [f"{a:.5f} 20.0 {2000 + 10 * np.sin(a):.3f}" for a in jd]
    with pytest.raises(ValueError, match=r"looks like an error column"):
        ph.read_file(_table(tmp_path, "fswap.dat", None, flux_rows))


def test_magnitudes_with_large_errors_are_not_read_as_flux(tmp_path):
    jd, mag, e, rows = _mag_rows(err=0.7)
    with pytest.warns(ph.PhotometryWarning, match=r"faint\.dat: read as magnitudes.*kind='flux'"):
        p = ph.read_file(_table(tmp_path, "faint.dat", None, rows))
    assert p.kind == "mag" and p.flux.max() > 1.3  # the event stays a peak, not a dip
    assert any("large for magnitudes" in c for c in p.choices)
    _, _, _, rows = _mag_rows(err=3.0)
    path = _table(tmp_path, "either.dat", None, rows)
    with pytest.raises(ValueError, match=r"either\.dat: cannot tell magnitudes from flux.*"
                       r"give kind='mag' or kind='flux'"):
        ph.read_file(path)
    with pytest.warns(ph.PhotometryWarning, match=r"median magnitude error"):
        assert ph.read_file(path, kind="mag").kind == "mag"
    assert ph.read_file(path, kind="flux").kind == "flux"


@pytest.mark.parametrize(("start", "stop"), [(2017.1, 2019.8), (1998.2, 1999.9)])
def test_decimal_years_are_refused(tmp_path, start, stop):
    t = np.linspace(start, stop, 40)
    rows = [f"{a:.6f} {18 + 0.01 * (k % 3):.3f} 0.010" for k, a in enumerate(t)]
    path = _table(tmp_path, "years.dat", None, rows)
    with pytest.raises(ValueError, match=r"years\.dat: times .* could be decimal years.*"
                       r"time_system=.*2451545\.0 \+ 365\.25"):
        ph.read_file(path)
    named = _table(tmp_path, "named_years.dat", "year mag err", rows)
    with pytest.raises(ValueError, match=r"time column 'year' holds decimal years"):
        ph.read_file(named)
    with pytest.raises(ValueError, match=r"unknown time_system 'year'.*decimal years"):
        ph.read_file(path, time_system="year")


def test_time_system_choice_is_recorded(tmp_path):
    jd, mag, e, rows = _mag_rows(t0=8000.0)  # a long HJD' curve: days, not years
    p = ph.read_file(_table(tmp_path, "hjd.dat", None, rows))
    assert p.time_system == "HJD-2450000"
    assert any("time_system 'HJD-2450000': median time" in c and "by convention" in c
               for c in p.choices), p.choices
    # near 2000 but spanning more than 200 units: days (HJD'), not years
    t = 1950.0 + np.linspace(0, 400, 40)
    rows = [f"{a:.5f} {18 + 0.01 * (k % 3):.3f} 0.010" for k, a in enumerate(t)]
    assert ph.read_file(_table(tmp_path, "long.dat", None, rows)).time_system == "HJD-2450000"
    # a header naming the frame resolves the short case
    short = [f"{2017 + 0.05 * k:.5f} {18 + 0.01 * (k % 3):.3f} 0.010" for k in range(40)]
    assert ph.read_file(_table(tmp_path, "h.dat", "HJD mag err", short)).time_system == (
        "HJD-2450000")


BAD_OPTIONS = [
    ({"baseline_mag": math.nan}, ValueError, r"baseline_mag=nan must be a finite number"),
    ({"baseline_mag": -5}, ValueError, r"baseline_mag=-5 is outside the valid 0\.\.40"),
    ({"baseline_mag": "19"}, TypeError, r"baseline_mag must be a number.*'19' \(str\)"),
    ({"baseline_mag": True}, TypeError, r"baseline_mag must be a number"),
    ({"baseline_flux": 0.0}, ValueError, r"baseline_flux=0\.0 must be > 0"),
    ({"baseline_flux": math.inf}, ValueError, r"baseline_flux=inf must be a finite"),
    ({"reference_epoch": math.nan}, ValueError, r"reference_epoch=nan must be a finite"),
    ({"reference_epoch": "2450000"}, TypeError, r"reference_epoch must be a number"),
    ({"reference_epoch": -1.0}, ValueError, r"reference_epoch=-1\.0 is outside"),
    ({"columns": (0, 0, 0)}, ValueError, r"must name 3 different columns"),
    ({"columns": (0, 1)}, ValueError, r"columns must be 3 items"),
    ({"columns": "012"}, TypeError, r"columns must be 3 items"),
    ({"columns": (0, 1.5, 2)}, TypeError, r"column 1\.5 must be an int index or a header name"),
    ({"columns": (0, -1, 2)}, ValueError, r"column index -1 must be >= 0"),
    ({"min_points": -3}, ValueError, r"min_points=-3 must be >= 1"),
    ({"min_points": 2.5}, TypeError, r"min_points must be an int"),
    ({"strict": "no"}, TypeError, r"strict must be True or False; got 'no' \(str\)"),
    ({"strict": 1}, TypeError, r"strict must be True or False"),
    ({"kind": "magnitude"}, ValueError, r"unknown kind 'magnitude'; valid: 'mag', 'flux'"),
    ({"kind": 1}, TypeError, r"kind must be 'mag', 'flux' or None"),
    ({"time_system": 2450000}, TypeError, r"time_system must be a str"),
    ({"on_duplicate": True}, ValueError, r"unknown on_duplicate True"),
    ({"flux_offset": math.nan}, ValueError, r"flux_offset=nan must be a finite"),
    ({"flux_offset": None}, TypeError, r"flux_offset must be a number"),
    ({"name": 5}, TypeError, r"name must be a str or None"),
    ({"baseline_mag": 18.0, "baseline_flux": 5.0}, ValueError, r"not both"),
    ({"kind": "flux", "baseline_mag": 18.0}, ValueError, r"kind='flux' takes baseline_flux="),
    ({"baseline_mag": {"ok.dat": 18.0}}, TypeError, r"per-file mappings are for read_event"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_OPTIONS)
def test_every_option_is_validated(tmp_path, options, error, message):
    path = _lines(tmp_path, "ok.dat", _good_rows())
    with pytest.raises(error, match=message):
        ph.read_file(path, **options)
    if not isinstance(next(iter(options.values())), dict):
        with pytest.raises(error, match=message):
            ph.read_event([path], **options)


def test_kind_mag_on_values_that_cannot_be_magnitudes(tmp_path):
    rows = [f"{7000 + k}.0 {v} 10.0" for k, v in enumerate([1e206, "inf"] + [1500.0 + k
                                                                             for k in range(20)])]
    path = _table(tmp_path, "flux.dat", None, rows)
    with pytest.raises(ValueError, match=r"flux\.dat: the values .*median 1510\) cannot be "
                       r"magnitudes .*kind='mag' was given.*kind='flux'"):
        ph.read_file(path, kind="mag")
    negative = _table(tmp_path, "neg.dat", None, [f"{7000 + k}.0 {-9 - 0.01 * k:.3f} 0.01"
                                                   for k in range(20)])
    with pytest.raises(ValueError, match=r"neg\.dat: .*cannot be magnitudes"):
        ph.read_file(negative, kind="mag")
    # a placeholder magnitude among real ones, and a header that says mag over flux values
    rows = _good_rows(20)
    rows[5] = "7005.00000 99.999 0.010"
    with pytest.raises(ValueError, match=r"sentinel\.dat, line 7: value 99\.999 is .* mag from "
                       r"the median.*nan"):
        ph.read_file(_lines(tmp_path, "sentinel.dat", rows))
    lying = _table(tmp_path, "lying.dat", "HJD mag mag_err",
                   [f"{7000 + k}.0 {1500.0 + k} 10.0" for k in range(20)])
    with pytest.raises(ValueError, match=r"lying\.dat: .*cannot be magnitudes.*value column name "
                       r"'mag'"):
        ph.read_file(lying)


def test_options_without_effect_warn(tmp_path):
    path = _lines(tmp_path, "ok.dat", _good_rows())
    with pytest.warns(ph.PhotometryWarning, match=r"ok\.dat: flux_offset=100\.0 has no effect on "
                      r"magnitudes"):
        ph.read_file(path, flux_offset=100.0)
    a, b = _two_sites(tmp_path)
    with pytest.warns(ph.PhotometryWarning, match=r"main='KMTC' has no effect with "
                      r"combine='all'.*combine='main'"):
        p = ph.read_event([a, b], main="KMTC")
    assert p.observatories == ("OGLE", "KMTC")


def test_per_file_mappings_must_name_files(tmp_path):
    a, b = _two_sites(tmp_path)
    with pytest.raises(ValueError, match=r"baseline_mag= has key\(s\) \['OGEL'\] matching none of "
                       r"the files \(OGLE\.dat, KMTC\.dat\)"):
        ph.read_event([a, b], baseline_mag={"OGEL": 17.0, "KMTC": 19.0})
    with pytest.raises(ValueError, match=r"baseline_mag for OGLE\.dat=-5 is outside"):
        ph.read_event([a, b], baseline_mag={"OGLE": -5, "*": 19.0})
    p = ph.read_event([a, b], baseline_mag={"OGLE": 17.0, "*": 19.0})
    assert p.baseline_mag == (17.0, 19.0)


def test_read_event_argument_types(tmp_path):
    a, b = _two_sites(tmp_path)
    with pytest.raises(TypeError, match=r"paths_or_directory must be a folder, a file or a list"):
        ph.read_event(None)
    with pytest.raises(TypeError, match=r"each file must be a str or Path; got 3"):
        ph.read_event([a, 3])
    with pytest.raises(ValueError, match=r"no files given"):
        ph.read_event([])
    with pytest.raises(TypeError, match=r"space must be a list.*space=\['KMTC'\]"):
        ph.read_event([a, b], space="KMTC")
    with pytest.raises(TypeError, match=r"include_space must be True or False"):
        ph.read_event([a, b], include_space="yes")
    with pytest.raises(TypeError, match=r"name must be a str"):
        ph.read_shipped_event(3)


def test_many_dropped_points_warn_few_stay_counted(tmp_path):
    rows = _good_rows(40)
    for k in range(0, 40, 5):  # 8 of 40 errors <= 0 (20 %)
        rows[k] = rows[k].replace("0.010", "0.000" if k % 2 else "-0.010")
    path = _lines(tmp_path, "zeros.dat", rows)
    with pytest.warns(ph.PhotometryWarning, match=r"zeros\.dat: dropped 8 of 40 points \(20%, "
                      r"more than 5%\): non_positive_error 8\..*strict=True"):
        p = ph.read_file(path)
    assert p.dropped == {"non_positive_error": 8} and len(p) == 32
    with pytest.raises(ValueError, match=r"zeros\.dat, line 2: .*strict=True requires errors > 0"):
        ph.read_file(path, strict=True)
    rows = _good_rows(40)
    rows[7] = rows[7].replace("0.010", "0.000")  # 1 of 40: counted, no warning
    assert ph.read_file(_lines(tmp_path, "one.dat", rows)).dropped == {"non_positive_error": 1}


def test_messages_say_what_the_file_looks_like(tmp_path):
    binary = tmp_path / "image.fits"
    binary.write_bytes(b"SIMPLE  =                    T" + bytes(range(256)) * 8)
    with pytest.raises(ValueError, match=r"image\.fits is not a text table \(binary content\)"):
        ph.read_file(binary)
    gz = tmp_path / "lc.dat.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00" + bytes(100))
    with pytest.raises(ValueError, match=r"lc\.dat\.gz is not a text table \(gzip"):
        ph.read_file(gz)
    iso = _table(tmp_path, "iso.csv", "date,mag,err",
                 [f"2019-03-{k + 1:02d}T02:03:04, 17.2, 0.01" for k in range(12)])
    with pytest.raises(ValueError, match=r"iso\.csv, line 2 \(the first data line\): time column "
                       r"0 holds '2019-03-01T02:03:04'.*ISO dates are not read: convert them "
                       r"to JD"):
        ph.read_file(iso)
    with pytest.raises(ValueError, match=r"iso\.csv, line 2 \(the first data line\).*no data line "
                       r"of the file could be read"):
        ph.read_file(iso, on_bad_line="drop")
    notes = _table(tmp_path, "notes.txt", None, ["Observed with the 1.3 m telescope.",
                                                 "Seeing was poor on two nights."])
    with pytest.raises(ValueError, match=r"notes\.txt is not a photometry table: no data line.*"
                       r"line 1: 'Observed with"):
        ph.read_file(notes)
    with pytest.raises(IsADirectoryError, match=r"is a directory: use read_event for a folder"):
        ph.read_file(tmp_path)


def test_event_folder_skips_files_that_are_not_tables(tmp_path):
    a, b = _two_sites(tmp_path)
    _table(tmp_path, "notes.txt", None, ["Observed with the 1.3 m telescope."])
    (tmp_path / "finder.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.warns(ph.PhotometryWarning) as record:
        p = ph.read_event(tmp_path)
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "finder.png is not a text table (binary content)" in messages[0]
    assert "notes.txt is not a photometry table" in messages[1]
    assert all(m.startswith("skipped ") and "pass the files as a list" in m for m in messages)
    assert p.observatories == ("KMTC", "OGLE") and len(p) == 130
    assert {Path(s).name for s, _ in p.excluded} == {"notes.txt", "finder.png"}
    # named explicitly, the same file is an error
    with pytest.raises(ValueError, match=r"notes\.txt is not a photometry table"):
        ph.read_event([a, tmp_path / "notes.txt"])


def test_difference_flux_with_offset_stays_valid(tmp_path):
    t, f, f_err, _ = _noisy_pspl(9, 2457500.0, 20.0, n=200)
    diff = 1000 * (f - 1)  # negative values, errors larger than many values
    err = np.full(200, 30.0)
    assert (diff < 0).any() and (np.abs(diff) < err).mean() > 0.3
    path = write_lc(tmp_path / "dia.dat", "whitespace", t, diff, err)
    p = ph.read_file(path, flux_offset=1000.0)
    assert p.kind == "flux" and len(p) == 200 and p.dropped == {}
    np.testing.assert_allclose(p.flux, (diff + 1000.0) / p.files[0].baseline, rtol=1e-12)


def test_truncated_last_line_warns(tmp_path):
    rows = _good_rows(20)
    path = tmp_path / "cut.dat"
    path.write_text("\n".join(rows)[:-2])  # "0.010" -> "0.0" on the last line, no line end
    with pytest.warns(ph.PhotometryWarning, match=r"cut\.dat, line 20: the last line has no line "
                      r"end .*looks truncated"):
        ph.read_file(path)
    path.write_text("\n".join(rows))  # complete, only the final line end missing: silent
    assert len(ph.read_file(path)) == 20


# --------------------------------------------------------------------------------------------
# Regression: what read correctly before these rules reads the same
# --------------------------------------------------------------------------------------------

SHIPPED_GOLDEN = {  # event -> (points, baseline magnitudes), as read before the rules above
    "MB08310": (2862, (18.096,)),
    "OB03235": (285, (19.301,)),
    "OB05086": (640, (16.316,)),
    "OB08092": (383, (13.929,)),
    "OB140939": (485, (15.396,)),
    "OB161195": (10216, (18.72, 18.722, 18.722, 18.71, 18.712, 18.708, 18.671, 18.6717, 18.645)),
}
REAL_GOLDEN = {  # OGLE EWS 2025 file -> (points, baseline I magnitude), as read before
    "blg-1099_phot.dat": (63, 20.07899815793297),
    "blg-0896_phot.dat": (806, 15.917),
    "blg-0374_phot.dat": (4596, 16.228),
    "blg-0001_phot.dat": (265, 19.889499884870748),
    "blg-1038_phot.dat": (325, 16.118),
}
REAL_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "real" / "ogle_ews_2025"


@pytest.mark.parametrize("name", sorted(SHIPPED_GOLDEN))
def test_shipped_events_read_as_before(events, name):
    n, baselines = SHIPPED_GOLDEN[name]
    p = ph.read_shipped_event(name)
    assert len(p) == n and p.dropped == {}
    np.testing.assert_allclose(p.baseline_mag, baselines, rtol=0, atol=1e-9)
    for code, path in enumerate(p.source_files):  # each point as the file holds it
        f = ph.read_file(path, columns=(0, 1, 2), kind="mag", baseline_mag=baselines[code])
        mask = p.observatory == code
        np.testing.assert_array_equal(p.times[mask], f.times)
        np.testing.assert_array_equal(p.flux[mask], f.flux)


@pytest.mark.parametrize("name", sorted(REAL_GOLDEN))
def test_real_ogle_files_read_as_before(name):
    # shared/ lies beside the repository (CI keeps a copy at the same place): missing is an error
    assert REAL_DIR.is_dir(), f"{REAL_DIR} is missing: the real-data regression needs shared/"
    n, base = REAL_GOLDEN[name]
    path = REAL_DIR / "photometry" / name
    hjd, mag, err = np.loadtxt(path, usecols=(0, 1, 2), unpack=True)
    inferred = ph.read_file(path)
    given = ph.read_file(path, time_system="HJD", kind="mag")
    for p in (inferred, given):
        assert len(p) == n == hjd.size and p.dropped == {} and p.n_reordered == 0
        assert p.time_system == "HJD" and p.kind == "mag"
        assert p.baseline_mag[0] == pytest.approx(base, abs=1e-9)
        np.testing.assert_allclose(p.absolute_times(), hjd, rtol=0, atol=1e-6)
        np.testing.assert_allclose(p.flux, 10 ** (-0.4 * (mag - base)), rtol=1e-9)
        np.testing.assert_allclose(p.flux_err, p.flux * K * err, rtol=1e-9)
    assert any("median time" in c and "full date" in c for c in inferred.choices)
    np.testing.assert_array_equal(inferred.flux, given.flux)
