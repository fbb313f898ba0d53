"""EWS folders: params parsing, coordinates, duplicate stars, the fit rules, event and baseline
segment ends, segments, the shipped subset, make_subset and the download helper (file:// URLs).
"""

from __future__ import annotations

import json
import math
import tarfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlens.core.removal import UnsafeDeleteError
from microlens.photometry import ews, ews_download
from microlens.photometry.ews_download import DownloadError, event_names

PARAMS = """OGLE-2025-BLG-{num}

Field          BLG573.32
StarNo         126732
RA(J2000.0)    {ra}
Dec(J2000.0)   {dec}
Remarks{pad}

  Tmax   {tmax:.3f}     0.097
  tau         {tau:.3f}     6.007
  umin         {umin:.3f}     0.009
  Amax        {amax:.3f}     1.528
  Dmag         1.442     0.141
  fbl          {fbl:.3f}     {fbl_err:.3f}
  I_bl        {ibl:.3f}     0.004
  I0          {i0:.3f}     0.131
"""


def write_params(folder, name, *, ra="18:06:27.06", dec="-31:11:48.8", tmax=2460852.523,
                 tau=64.775, umin=0.078, amax=12.806, fbl=0.235, fbl_err=0.028, ibl=18.662):
    i0 = ibl - 2.5 * math.log10(fbl)
    path = folder / "params" / f"{name}_params.dat"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PARAMS.format(num=name[-4:], pad=" " * 8, ra=ra, dec=dec, tmax=tmax,
                                  tau=tau, umin=umin, amax=amax, fbl=fbl, fbl_err=fbl_err,
                                  ibl=ibl, i0=i0))
    return path


def write_phot(folder, name, hjd, mag, err):
    path = folder / "photometry" / f"{name}_phot.dat"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{t:.5f} {m:.3f} {e:.3f} 5.00 300.0" for t, m, e in zip(hjd, mag, err, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def flat_phot(folder, name, n=60, start=2460000.0, step=1.0, mag=18.662, err=0.02):
    hjd = start + step * np.arange(n)
    return write_phot(folder, name, hjd, np.full(n, mag), np.full(n, err))


@pytest.fixture
def folder(tmp_path):
    """Four events: a duplicate-star pair (0.5 arcsec apart, two fields), a degenerate fit and
    one without params."""
    root = tmp_path / "ews"
    for name in ("blg-0001", "blg-0002", "blg-0003", "blg-0004"):
        flat_phot(root, name)
    write_params(root, "blg-0001", ra="17:19:44.68", dec="-27:43:21.4")
    write_params(root, "blg-0002", ra="17:19:44.70", dec="-27:43:21.6")  # ~0.36" away
    write_params(root, "blg-0003", ra="17:20:00.00", dec="-27:43:21.4", umin=0.0, amax=99999.0)
    return root


# -- params and coordinates -------------------------------------------------------------------


def test_params_fields_and_coordinates(tmp_path):
    fit, header = ews.parse_params(write_params(tmp_path, "blg-0795"))
    assert header["ra_deg"] == pytest.approx(15 * (18 + 6 / 60 + 27.06 / 3600))
    assert header["dec_deg"] == pytest.approx(-(31 + 11 / 60 + 48.8 / 3600))
    assert (header["field"], header["star_no"]) == ("BLG573.32", 126732)
    assert (fit.tmax, fit.tau, fit.umin, fit.amax, fit.fbl) == (2460852.523, 64.775, 0.078,
                                                                12.806, 0.235)
    assert not fit.fbl_fixed and not fit.degenerate
    assert fit.baseline_mag == fit.i_bl == 18.662
    assert fit.source_mag == fit.i0 == pytest.approx(18.662 - 2.5 * math.log10(0.235), abs=1e-3)
    assert fit.errors["tau"] == 6.007
    fixed, _ = ews.parse_params(write_params(tmp_path, "blg-0001", fbl=1.0, fbl_err=0.0))
    assert fixed.fbl_fixed
    _, south = ews.parse_params(write_params(tmp_path, "blg-0002", dec="-00:30:00.0"))
    assert south["dec_deg"] == -0.5  # the sign of a declination within a degree of 0


@given(ra=st.floats(0, 359.999), dec=st.floats(-89.999, 89.999))
def test_sexagesimal_round_trip(ra, dec):
    h, rest = divmod(ra / 15 * 3600, 3600)
    m, s = divmod(rest, 60)
    d, drest = divmod(abs(dec) * 3600, 3600)
    dm, ds = divmod(drest, 60)
    ra_text = f"{int(h):02d}:{int(m):02d}:{s:05.2f}".replace("60.00", "59.99")
    dec_text = f"{'-' if dec < 0 else '+'}{int(d):02d}:{int(dm):02d}:{ds:04.1f}".replace(
        "60.0", "59.9")
    got_ra = ews._sexagesimal(ra_text, hours=True, where="x")
    got_dec = ews._sexagesimal(dec_text, hours=False, where="x")
    assert abs(got_ra - ra) * 3600 * math.cos(math.radians(dec)) < 0.16  # 0.01 s of time
    assert abs(got_dec - dec) * 3600 < 0.11


@pytest.mark.parametrize("edit, message", [
    (("  tau         64.775     6.007", "  tau         64.7x5     6.007"), r"line 10: expected"),
    (("  umin         0.078     0.009\n", ""), r"missing fit row\(s\) umin"),
    (("18:06:27.06", "18h06m27s"), r"line 5: '18h06m27s' is not a sexagesimal"),
    (("-31:11:48.8", "-31:71:48.8"), r"line 6: .* out of range"),
    (("Remarks", "Comment"), r"line 7: unknown row 'Comment'; valid rows: Field"),
])
def test_malformed_params_name_file_and_line(tmp_path, edit, message):
    path = write_params(tmp_path, "blg-0001")
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(ValueError, match=message) as info:
        ews.parse_params(path)
    assert str(path) in str(info.value)


# -- folders and rules -----------------------------------------------------------------------


def test_folder_rules(folder):
    events = ews.read_folder(folder)
    assert [e.name for e in events] == ["blg-0001", "blg-0002", "blg-0003", "blg-0004"]
    a, b, c, d = events
    assert a.duplicate_of is None and b.duplicate_of == "blg-0001" and a.star == b.star
    assert a.star == f"{a.ra_deg:.5f}{a.dec_deg:+.5f}" == "259.93617-27.72261"
    assert c.duplicate_of is None and c.star != a.star  # 200" away: another star
    assert c.fit.degenerate and not a.fit.degenerate
    assert d.fit is None and d.params_file is None and d.star == "blg-0004"
    phot = ews.read_photometry(d)
    assert len(phot) == 60 and phot.name == "blg-0004"
    assert any("time_system 'HJD' given" in ch for ch in phot.choices)
    assert ews.exclusion_reasons(a) == ()
    assert ews.exclusion_reasons(b) == ("duplicate of blg-0001",)
    assert ews.exclusion_reasons(c) == ("degenerate fit",)
    assert ews.exclusion_reasons(d, phot) == ("no params file",)
    assert ews.baseline_end(c, phot) == ews.baseline_end(d, phot) == 0
    assert ews.event_end(d, phot) == len(phot)


def test_bad_folders_say_what_is_wrong(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ews.read_folder(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder in the EWS layout"):
        ews.read_folder(tmp_path / "file.txt")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no photometry/ folder \(it holds notes.txt\)"):
        ews.read_folder(tmp_path / "other")
    (tmp_path / "other" / "photometry").mkdir()
    with pytest.raises(ValueError, match="holds no <name>_phot.dat file"):
        ews.read_folder(tmp_path / "other")
    write_params(folder, "blg-0009")
    with pytest.raises(ValueError, match="params file.* without a photometry file: blg-0009"):
        ews.read_folder(folder)


def test_event_end_points_in_and_peak_after_data(tmp_path):
    flat_phot(tmp_path, "blg-0001", n=100, start=2460000.0)
    write_params(tmp_path, "blg-0001", tmax=2460050.0, tau=10.0)
    flat_phot(tmp_path, "blg-0002", n=10, start=2460000.0)
    write_params(tmp_path, "blg-0002", tmax=2460050.0, tau=10.0)
    (ev, late) = ews.read_folder(tmp_path)
    phot = ews.read_photometry(ev)
    assert ews.event_end(ev, phot) == 71  # HJD 2460000..2460070 <= Tmax + 2 tau
    assert ews.points_in(phot, 2460040.0, 2460050.0) == 11
    assert ews.points_per_night(phot) == 1.0 and ews.median_interval(phot) == pytest.approx(1)
    assert not ews.peaks_after_data(ev, phot)
    late_phot = ews.read_photometry(late)
    assert ews.peaks_after_data(late, late_phot)
    assert "peak after the last observation" in ews.exclusion_reasons(late, late_phot)


# -- baseline segments -----------------------------------------------------------------------


def _hand_snr(hjd, err_mag, *, tmax, tau, umin, fbl):
    """The S/N OGLE's fit predicts, written out: flux errors of a flat curve at its baseline."""
    u = np.sqrt(umin**2 + ((hjd - tmax) / tau) ** 2)
    a = (u**2 + 2) / (u * np.sqrt(u**2 + 4))
    sigma_f = err_mag * math.log(10) / 2.5  # baseline flux 1
    return np.sqrt(np.cumsum((fbl * (a - 1) / sigma_f) ** 2))


def test_baseline_end_by_hand(tmp_path):
    hjd = 2460000.0 + np.arange(200) * 0.5
    write_phot(tmp_path, "blg-0001", hjd, np.full(200, 18.662), np.full(200, 0.01))
    write_params(tmp_path, "blg-0001", tmax=2460080.0, tau=8.0, umin=0.1, fbl=0.4, fbl_err=0.01)
    (ev,) = ews.read_folder(tmp_path)
    phot = ews.read_photometry(ev)
    assert phot.baseline_mag[0] == pytest.approx(18.662, abs=1e-9)
    assert ews.source_flux(ev, phot) == pytest.approx(0.4, rel=1e-3)  # fbl of the baseline
    hand = _hand_snr(hjd, 0.01, tmax=2460080.0, tau=8.0, umin=0.1, fbl=0.4)
    np.testing.assert_allclose(ews.predicted_snr(ev, phot), hand, rtol=2e-3)
    n = ews.baseline_end(ev, phot)
    assert 0 < n < 160 and hand[n - 1] < 2.0 <= hand[n]
    assert ews.baseline_end(ev, phot, max_snr=5.0) > n
    with pytest.raises(ValueError, match="max_snr must be a finite number > 0; got 0"):
        ews.baseline_end(ev, phot, max_snr=0)


@given(tau=st.floats(2, 80), umin=st.floats(0.005, 1.2), fbl=st.floats(0.05, 1.0),
       err=st.floats(0.003, 0.2), max_snr=st.floats(0.5, 10))
def test_baseline_segment_never_reaches_the_predicted_signal(tau, umin, fbl, err, max_snr):
    fit = ews.EwsFit(tmax=2460300.0, tau=tau, umin=umin, amax=0.0, fbl=fbl, fbl_fixed=False,
                     i0=18.0 - 2.5 * math.log10(fbl), degenerate=False, i_bl=18.0)
    event = ews.EwsEvent(name="x", photometry_file=None, params_file=None, fit=fit, ra_deg=None,
                         dec_deg=None, field=None, star_no=None, star="x")
    phot = _synthetic_photometry(np.arange(400) * 1.0, err, baseline_mag=18.0)
    cum = ews.predicted_snr(event, phot)
    n = ews.baseline_end(event, phot, max_snr=max_snr)
    assert n == 0 or cum[n - 1] < max_snr
    assert n == len(phot) or cum[n] >= max_snr


def _synthetic_photometry(days, err_mag, baseline_mag):
    from microlens.photometry.files import Photometry

    n = len(days)

    def ro(a):
        a.setflags(write=False)
        return a

    return Photometry(
        times=ro(np.asarray(days, float) + 10300.0), flux=ro(np.ones(n)),
        flux_err=ro(np.full(n, err_mag * math.log(10) / 2.5)),
        observatory=ro(np.zeros(n, np.int64)), observatories=("x",),
        reference_epoch=2450000.0, time_system="HJD", time_system_inferred=False, kind="mag",
        kind_inferred=False, baseline_mag=(baseline_mag,), source_files=("x",), dropped={},
        n_reordered=0, name="x",
    )  # fmt: skip


def test_segment_renormalises_to_its_own_baseline(tmp_path):
    # 40 points at 18.0, then 80 at 18.1: the whole file's baseline is the fainter 18.1
    hjd = 2460000.0 + np.arange(120)
    mag = np.where(np.arange(120) < 40, 18.0, 18.1) + 0.002 * np.sin(np.arange(120))
    write_phot(tmp_path, "blg-0001", hjd, mag, np.full(120, 0.01))
    (ev,) = ews.read_folder(tmp_path)
    phot = ews.read_photometry(ev)
    assert phot.baseline_mag[0] == pytest.approx(18.1, abs=0.003)
    seg = ews.segment(phot, 40, "_baseline")
    assert seg.name == "blg-0001_baseline" and len(seg) == 40
    assert np.median(seg.flux) == pytest.approx(1.0, abs=2e-3)
    assert seg.baseline_mag[0] == pytest.approx(18.0, abs=0.003)
    assert seg.files[0].n_points == 40 and seg.files[0].baseline == seg.baseline_mag[0]
    ratio = phot.flux[:40] / seg.flux
    np.testing.assert_allclose(phot.flux_err[:40] / seg.flux_err, ratio)  # same factor
    np.testing.assert_array_equal(seg.times, phot.times[:40])
    assert not seg.flux.flags.writeable
    for bad in (0, 121):
        with pytest.raises(ValueError, match=rf"n={bad} must be within 1..120"):
            ews.segment(phot, bad, "_x")
    with pytest.raises(TypeError, match="n must be an int"):
        ews.segment(phot, 4.0, "_x")


# -- shipped subset and make_subset -----------------------------------------------------------


@pytest.mark.slow  # a second long: extracts the 250-event archive twice
def test_shipped_subset_extracts_once(tmp_path):
    dest = tmp_path / "real" / "subset"
    folder = ews.shipped_subset(dest)
    stamp = (folder / ".extracted.json").stat().st_mtime_ns
    assert ews.shipped_subset(dest) == folder
    assert (folder / ".extracted.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    events = {e.name: e for e in ews.read_folder(folder)}
    record = json.loads((folder / ews.SUBSET_RECORD).read_text())
    assert len(events) == record["n"] == 250 and record["seed"] == 2025
    assert events["blg-0166"].duplicate_of == "blg-0002"
    assert events["blg-0006"].fit.degenerate and events["blg-1224"].fit is None
    # a stale extraction (another archive) is replaced; a folder of the user's is not touched
    (folder / ".extracted.json").write_text('{"archive_sha256": "old"}')
    (folder / "photometry" / "blg-0002_phot.dat").unlink()
    ews.shipped_subset(dest)
    assert (folder / "photometry" / "blg-0002_phot.dat").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    with pytest.raises(UnsafeDeleteError, match="the project did not make it"):
        ews.shipped_subset(mine)
    assert (mine / "thesis.tex").is_file()
    assert not list(tmp_path.glob(".*.tmp"))


def test_make_subset_is_reproducible_and_keeps_the_rule_cases(tmp_path, folder):
    for name in ("blg-0005", "blg-0006", "blg-0007"):
        flat_phot(folder, name)
        write_params(folder, name, ra=f"17:3{name[-1]}:00.00")
    a = ews.make_subset(folder, tmp_path / "a.tar.xz", n=5, seed=3, preset=0)
    b = ews.make_subset(folder, tmp_path / "b" / "a.tar.xz", n=5, seed=3, preset=0)
    assert (tmp_path / "a.tar.xz").read_bytes() == (tmp_path / "b" / "a.tar.xz").read_bytes()
    assert a == b and len(a["events"]) == 5
    assert set(a["required"]) == {"blg-0001", "blg-0002", "blg-0003", "blg-0004"}
    drawn = {ews.make_subset(folder, tmp_path / f"s{s}.tar.xz", n=5, seed=s, preset=0)["events"][-1]
             for s in range(6)}
    assert len(drawn) > 1  # the seed chooses the fifth event
    got = ews.read_folder(ews.extract_subset(tmp_path / "a.tar.xz", tmp_path / "x"))
    assert [e.name for e in got] == a["events"]
    assert got[1].duplicate_of == "blg-0001" and got[3].fit is None
    with pytest.raises(ValueError, match="over max_bytes=100; choose a smaller n"):
        ews.make_subset(folder, tmp_path / "big.tar.xz", n=5, seed=3, max_bytes=100,
                         preset=0)
    assert not (tmp_path / "big.tar.xz").exists()
    with pytest.raises(ValueError, match=r"n=8 must be an int within 1..7"):
        ews.make_subset(folder, tmp_path / "c.tar.xz", n=8, seed=3, preset=0)


def test_extract_refuses_members_outside_the_folder(tmp_path):
    archive = tmp_path / "evil.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(__file__, arcname="subset/../../escape.py")
    with pytest.raises(ValueError, match="is not a plain file or folder inside"):
        ews.extract_subset(archive, tmp_path / "out")
    assert not (tmp_path / "escape.py").exists() and not (tmp_path / "out").exists()


# -- download --------------------------------------------------------------------------------


def _site(tmp_path, names, *, index="lenses.par"):
    """A local mirror laid out like OGLE's EWS pages; the last event has no params.dat."""
    season = tmp_path / "site" / "2025"
    season.mkdir(parents=True)
    src = tmp_path / "src"
    for i, name in enumerate(names):
        flat_phot(src, name, n=12)
        (season / name).mkdir()
        (season / name / "phot.dat").write_bytes((src / "photometry" /
                                                  f"{name}_phot.dat").read_bytes())
        if i < len(names) - 1:
            params = write_params(src, name, ra=f"17:2{i}:00.00")
            (season / name / "params.dat").write_bytes(params.read_bytes())
    if index == "lenses.par":
        rows = [f"{n[:3].upper()}{n[3:]}" for n in names]
        (season / index).write_text("Event Field StarNo\n" + "".join(
            f"2025-{r} BLG500.01 1\n" for r in rows))
    else:
        (season / index).write_text("".join(f'<a href="{n}.html">{n}</a>\n' for n in names))
    return (tmp_path / "site").as_uri()


def test_download_season_on_file_urls_resumes(tmp_path):
    names = ["blg-0001", "blg-0002", "blg-0003"]
    url = _site(tmp_path, names)
    missing = tmp_path / "site" / "2025" / "blg-0002" / "phot.dat"
    saved = missing.read_bytes()
    missing.unlink()  # the site fails half-way
    dest = tmp_path / "ews2025"
    with pytest.raises(DownloadError, match=r"could not fetch file://.*/blg-0002/phot.dat"):
        ews_download.download_season(2025, dest, base_url=url, progress=False)
    assert (dest / "photometry" / "blg-0001_phot.dat").is_file()
    assert not list(dest.rglob("*.tmp"))
    missing.write_bytes(saved)
    got = ews_download.download_season(2025, dest, base_url=url, progress=False)
    assert got["events"] == names and got["skipped"] == 2 and got["downloaded"] == 3
    assert got["missing_params"] == ["blg-0003"]
    events = ews.read_folder(dest)
    assert [e.name for e in events] == names and events[2].fit is None
    again = ews_download.download_season(2025, dest, base_url=url, events=["OGLE-2025-BLG-0001"],
                                progress=False)
    assert again["downloaded"] == 0 and again["skipped"] == 2


def test_download_index_fallback_and_errors(tmp_path, capsys):
    url = _site(tmp_path, ["blg-0007", "blg-0011"], index="ews.html")
    got = ews_download.download_season(2025, tmp_path / "d", base_url=url)
    assert got["events"] == ["blg-0007", "blg-0011"] and "2/2 events" in capsys.readouterr().err
    assert event_names("Event\n2025-BLG-0003 x\n2025-BLG-0001 y\n", 2025) == ["blg-0001",
                                                                              "blg-0003"]
    page = tmp_path / "site" / "2025" / "blg-0007" / "phot.dat"
    page.write_text("<html>Not Found</html>")
    with pytest.raises(DownloadError, match=r"blg-0007/phot.dat is not an EWS phot.dat"):
        ews_download.download_season(2025, tmp_path / "e", base_url=url, events=["blg-0007"],
                            progress=False)
    with pytest.raises(DownloadError, match="no event list for season 2024.*events="):
        ews_download.download_season(2024, tmp_path / "f", base_url=url, progress=False)
    with pytest.raises(ValueError, match="event 'OGLE-2024-BLG-0001' belongs to season 2024"):
        ews_download.download_season(2025, tmp_path / "g", base_url=url,
                                     events=["OGLE-2024-BLG-0001"])
    with pytest.raises(ValueError, match="year must be a season such as 2025"):
        ews_download.download_season("2025", tmp_path / "h", base_url=url)


def test_summarize_folder_and_command_line(folder, capsys):
    got = ews.summarize_folder(folder)
    assert (got["events"], got["no_params"], got["degenerate"], got["duplicates"]) == (4, 1, 1, 1)
    assert got["usable_fits"] == 2 and got["points"] == 240
    assert got["baseline_ge_50"] == 2  # 60 flat points long before Tmax
    assert ews.main([str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["events"] == 4
    from microlens.core.cli import command_line

    assert command_line(ews.main)([str(folder / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
