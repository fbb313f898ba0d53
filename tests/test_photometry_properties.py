"""Property tests of the photometry reader: valid tables read back exactly; corruptions give the
documented error, warning or count, never a silent different answer."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlens.photometry import files as ph

K = math.log(10.0) / 2.5
FMT = {"time": "{:.5f}", "mag": "{:.4f}", "flux": "{:.3f}", "err_mag": "{:.4f}",
       "err_flux": "{:.3f}"}  # fmt: skip
TIME_NAMES = ("HJD", "hjd", "JD", "BJD", "time", "t", "HJD-2450000", "Time_HJD")
VALUE_NAMES = {"mag": ("mag", "I_mag", "Magnitude", "MAG"), "flux": ("flux", "Flux", "counts")}
ERROR_NAMES = {"mag": ("err", "mag_err", "sigma", "e_mag", "Error", "MAGNITUDE_UNCERTAINTY"),
               "flux": ("flux_err", "err", "sigma", "uncertainty", "e_flux")}  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


_counter = itertools.count()


def _write(folder, text: str, suffix: str = ".dat"):
    path = folder / f"lc{next(_counter)}{suffix}"
    path.write_text(text)
    return path


@st.composite
def light_curves(draw, kind=None):
    """Columns of a valid light curve: full-JD times, values and errors (as written)."""
    kind = kind or draw(st.sampled_from(ph.KINDS))
    n = draw(st.integers(15, 60))
    steps = draw(st.lists(st.integers(100, 400_000), min_size=n, max_size=n))  # 1e-5 d
    times = 2457000.0 + np.cumsum(steps) * 1e-5 + draw(st.integers(0, 3000))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    t0 = times[0] + rng.uniform(0, times[-1] - times[0])
    u = np.hypot(rng.uniform(0.05, 1.0), (times - t0) / rng.uniform(3, 60))
    magnification = (u * u + 2) / (u * np.sqrt(u * u + 4))
    if kind == "mag":
        values = rng.uniform(14, 21) - 2.5 * np.log10(magnification)
        errors = rng.uniform(0.005, 0.2, n)
    else:
        base = rng.uniform(500, 5000)
        values = base * magnification
        errors = rng.uniform(0.002, 0.03, n) * values
    cols = {"time": times, kind: values, f"err_{kind}": errors}
    # what the file holds: the written decimals
    written = {k: np.array([float(FMT[k].format(x)) for x in v]) for k, v in cols.items()}
    return kind, written


def _rows(order, columns, sep=" "):
    return [sep.join(FMT[k].format(columns[k][i]) for k in order)
            for i in range(len(columns["time"]))]


def _check_same(p, kind, cols, time_offset=0.0):
    t, v, e = cols["time"], cols[kind], cols[f"err_{kind}"]
    assert len(p) == t.size and p.dropped == {} and p.kind == kind
    np.testing.assert_allclose(p.absolute_times(), t, rtol=0, atol=2e-6)
    if kind == "mag":
        np.testing.assert_allclose(p.flux, 10 ** (-0.4 * (v - p.baseline_mag[0])), rtol=1e-9)
        np.testing.assert_allclose(p.flux_err, p.flux * K * e, rtol=1e-9)
    else:
        base = p.files[0].baseline
        np.testing.assert_allclose(p.flux, v / base, rtol=1e-12)
        np.testing.assert_allclose(p.flux_err, e / base, rtol=1e-12)


def _read_quietly(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ph.PhotometryWarning)
        return ph.read_file(path, **kw)


# --------------------------------------------------------------------------------------------
# Valid tables read back the same arrays
# --------------------------------------------------------------------------------------------


@given(curve=light_curves(), sep=st.sampled_from([" ", ",", "\t", "   "]))
def test_headerless_tables_read_back(folder, curve, sep):
    kind, cols = curve
    path = _write(folder, "\n".join(_rows(("time", kind, f"err_{kind}"), cols, sep)) + "\n")
    _check_same(_read_quietly(path), kind, cols)


@given(curve=light_curves(), data=st.data())
def test_named_columns_in_any_order_read_back(folder, curve, data):
    kind, cols = curve
    order = data.draw(st.permutations(["time", kind, f"err_{kind}", "fwhm"]))
    time_name = data.draw(st.sampled_from(TIME_NAMES))
    names = {"time": time_name, kind: data.draw(st.sampled_from(VALUE_NAMES[kind])),
             f"err_{kind}": data.draw(st.sampled_from(ERROR_NAMES[kind])), "fwhm": "fwhm"}
    offset = 2450000.0 if time_name == "HJD-2450000" else 0.0
    written = dict(cols, time=cols["time"] - offset, fwhm=np.full(cols["time"].size, 4.2))
    fmt = dict(FMT, fwhm="{:.2f}")
    sep = data.draw(st.sampled_from([" ", ","]))
    header = sep.join(names[k] for k in order)
    if data.draw(st.booleans()):
        header = "# " + header
    rows = [sep.join(fmt[k].format(written[k][i]) for k in order)
            for i in range(cols["time"].size)]
    path = _write(folder, "\n".join([header, *rows]) + "\n")
    p = _read_quietly(path)
    _check_same(p, kind, cols)
    assert p.files[0].columns == (names["time"], names[kind], names[f"err_{kind}"])


# --------------------------------------------------------------------------------------------
# Corruptions: each gives its documented outcome
# --------------------------------------------------------------------------------------------


def _plain(cols, kind):
    return _rows(("time", kind, f"err_{kind}"), cols)


@given(curve=light_curves(), data=st.data())
def test_non_finite_cell_is_counted_warned_or_refused(folder, curve, data):
    kind, cols = curve
    rows = [r.split() for r in _plain(cols, kind)]
    n = len(rows)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, 2))
    rows[i][j] = data.draw(st.sampled_from(["nan", "inf", "-inf", "NaN", "null"]))
    path = _write(folder, "\n".join(" ".join(r) for r in rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = ph.read_file(path)
    assert p.dropped == {"non_finite": 1} and len(p) == n - 1
    loud = [w for w in caught if issubclass(w.category, ph.PhotometryWarning)]
    assert len(loud) == (1 if 1 / n > ph.DROP_WARNING_FRACTION else 0)
    if loud:
        assert "non_finite 1" in str(loud[0].message) and "strict=True" in str(loud[0].message)
    with pytest.raises(ValueError, match=rf"line {i + 1}: .*strict=True requires finite"):
        ph.read_file(path, strict=True)


@given(curve=light_curves(), data=st.data())
def test_non_positive_errors_are_counted_warned_or_refused(folder, curve, data):
    kind, cols = curve
    rows = [r.split() for r in _plain(cols, kind)]
    n = len(rows)
    bad = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 10))
    for i in bad:
        rows[i][2] = data.draw(st.sampled_from(["0", "0.0", "-0.01", "-1e-3"]))
    path = _write(folder, "\n".join(" ".join(r) for r in rows) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = ph.read_file(path)
    assert p.dropped == {"non_positive_error": len(bad)} and len(p) == n - len(bad)
    warned = any(issubclass(w.category, ph.PhotometryWarning) for w in caught)
    assert warned == (len(bad) / n > ph.DROP_WARNING_FRACTION)
    with pytest.raises(ValueError, match=r"strict=True requires errors > 0"):
        ph.read_file(path, strict=True)


@given(curve=light_curves())
def test_reversed_times_give_the_sorted_curve(folder, curve):
    kind, cols = curve
    path = _write(folder, "\n".join(reversed(_plain(cols, kind))) + "\n")
    p = _read_quietly(path)
    _check_same(p, kind, cols)
    assert p.n_reordered == len(p) - 1
    assert any("times sorted" in c for c in p.choices)


@given(curve=light_curves(), data=st.data())
def test_repeated_time_is_refused(folder, curve, data):
    kind, cols = curve
    rows = _plain(cols, kind)
    i, j = sorted(data.draw(st.lists(st.integers(0, len(rows) - 1), min_size=2, max_size=2,
                                     unique=True)))
    rows[j] = rows[i].split()[0] + " " + " ".join(rows[j].split()[1:])
    path = _write(folder, "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=rf"duplicate time .* on lines {i + 1} and {j + 1}"):
        ph.read_file(path)


@given(curve=light_curves(), data=st.data())
def test_swapped_columns_under_a_header_are_refused(folder, curve, data):
    kind, cols = curve
    names = ("HJD", kind, f"{kind}_err")
    layout = data.draw(st.sampled_from([("time", f"err_{kind}", kind), (kind, "time",
                                                                        f"err_{kind}")]))
    rows = _rows(layout, cols)
    path = _write(folder, "\n".join([" ".join(names), *rows]) + "\n")
    refused = (r"looks like an error column|cannot infer the time system|cannot be magnitudes|"
               r"outside the valid|duplicate time|decimal years|like full Julian dates")
    with pytest.raises(ValueError, match=refused):
        ph.read_file(path)


@given(curve=light_curves(kind="mag"), data=st.data())
def test_truncated_file_errs_warns_or_reads_the_complete_lines(folder, curve, data):
    kind, cols = curve
    text = "\n".join(_plain(cols, kind)) + "\n"
    cut = data.draw(st.integers(1, len(text) - 1))
    truncated = text[:cut]
    path = _write(folder, truncated)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            p = ph.read_file(path)
        except ValueError:
            return  # too few points, or a last line missing columns: refused
    if any(issubclass(w.category, ph.PhotometryWarning) for w in caught):
        return  # said: the file looks truncated (or dropped points)
    complete = [line for line in truncated.split("\n") if line in text.split("\n") and line]
    k = len(complete)
    assert text.startswith("\n".join(complete))
    want = {key: v[:k] for key, v in cols.items()}
    _check_same(p, kind, want)


WRONG_OPTIONS = {
    "columns": st.one_of(st.text(max_size=3), st.integers(), st.just((0, 0, 1)),
                         st.tuples(st.integers(-5, -1), st.just(1), st.just(2)),
                         st.lists(st.integers(0, 5), max_size=2)),
    "time_system": st.one_of(st.integers(), st.floats(), st.text("xyzq019 ", max_size=4)),
    "kind": st.one_of(st.integers(), st.text(max_size=5).filter(lambda s: s not in ph.KINDS)),
    "baseline_mag": st.one_of(st.text(max_size=3), st.booleans(), st.just(math.nan),
                              st.floats(max_value=-0.01), st.floats(min_value=40.01)),
    "baseline_flux": st.one_of(st.text(max_size=3), st.booleans(), st.floats(max_value=0.0),
                               st.just(math.inf)),
    "flux_offset": st.one_of(st.text(max_size=3), st.none(), st.just(math.nan),
                             st.lists(st.floats(), max_size=2)),
    "reference_epoch": st.one_of(st.text(max_size=3), st.just(math.nan), st.floats(max_value=-1)),
    "strict": st.one_of(st.integers(), st.text(max_size=3), st.none()),
    "on_bad_line": st.one_of(st.integers(), st.text(max_size=5).filter(
        lambda s: s not in ("error", "drop"))),
    "on_duplicate": st.one_of(st.none(), st.text(max_size=5).filter(
        lambda s: s not in ("error", "drop"))),
    "min_points": st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3),
                            st.booleans()),
    "name": st.one_of(st.integers(), st.lists(st.text(max_size=2), max_size=2)),
}


@given(data=st.data(), option=st.sampled_from(sorted(WRONG_OPTIONS)))
def test_wrong_option_values_are_refused(folder, data, option):
    value = data.draw(WRONG_OPTIONS[option])
    path = folder / "valid.dat"
    if not path.exists():
        path.write_text("\n".join(f"{7000 + k}.0 {18 + 0.01 * (k % 3):.3f} 0.010"
                                  for k in range(20)) + "\n")
    with pytest.raises((TypeError, ValueError), match="column" if option == "columns" else option):
        ph.read_file(path, **{option: value})
