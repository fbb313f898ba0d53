"""Tests of microlens.photometry: real photometry files and MulensData in baseline-flux units."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from microlens import photometry as ph

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
