"""The dataset directory: layout, reproducibility, resumption, bad input, torch batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import params_equal

from microlens import (
    DatasetError,
    LightCurveDataset,
    SimulationConfig,
    collate_light_curves,
    generate_dataset,
    open_dataset,
)
from microlens.data.store import resimulate
from microlens.simulation.simulate import model_flux


def test_layout_manifest_and_alignment(small_store, small_config):
    store = small_store
    assert len(store) == small_config.n_events == 90
    m = store.manifest
    assert m["class_counts"] == {"no_event": 30, "pspl": 30, "binary": 30}
    assert m["config"] == small_config.to_dict()
    assert m["versions"]["VBBinaryLensing"] and m["versions"]["numpy"]
    assert m["magnification"]["tol"] == 1e-3
    assert isinstance(store.observations["flux"], np.memmap)
    assert store.observations["times"].dtype == np.float64
    assert m["reference_epoch"] == store.reference_epoch == 0.0
    np.testing.assert_array_equal(store.params["label"], store.labels)
    np.testing.assert_array_equal(store.lengths, store.params["n_obs"])
    # curves stored one after another: no padding, times increasing within each
    assert store.observations["flux"].size == store.lengths.sum() == m["n_observations"]
    assert m["max_observations"] == store.lengths.max()
    for i in range(len(store)):
        assert np.all(np.diff(store.event(i)["times"]) > 0)
    padded = store.padded([3, 0, 7])
    for row, i in enumerate([3, 0, 7]):
        k = store.lengths[i]
        assert padded["mask"][row, :k].all() and not padded["mask"][row, k:].any()
        np.testing.assert_array_equal(padded["flux"][row, :k], store.event(i)["flux"])
        assert (padded["flux"][row, k:] == 0).all()


def test_split_is_stratified_and_fixed(small_store):
    counts = small_store.manifest["split_counts"]
    assert counts["train"] == {"no_event": 24, "pspl": 24, "binary": 24}
    assert counts["val"] == {"no_event": 3, "pspl": 3, "binary": 3}
    assert counts["test"] == {"no_event": 3, "pspl": 3, "binary": 3}
    for name in ("train", "val", "test"):
        idx = small_store.indices(name)
        assert np.bincount(small_store.labels[idx], minlength=3).tolist() == list(
            counts[name].values())
    assert len(set(small_store.indices("train")) & set(small_store.indices("test"))) == 0


def test_stored_event_resimulates_from_its_parameters_and_seed(small_store):
    for index in (0, 1, 2, 44):
        event = small_store.event(index)
        again = resimulate(small_store, index)
        np.testing.assert_allclose(again.flux, event["flux"], rtol=1e-6)  # float32 storage
        np.testing.assert_allclose(model_flux(event["params"], again.times), again.clean_flux,
                                   rtol=1e-5)


def test_survey_store_keeps_curves_of_any_length_times_since_its_epoch_and_variables(
        tmp_path):
    from microlens.simulation.presets import get_survey
    from microlens.simulation.variables import VARIABLE_KINDS

    cfg = SimulationConfig(n_per_class=8, survey="ogle", topology="stellar", seed=5,
                           variable_fraction=1.0, detectability=False)
    store = open_dataset(generate_dataset(cfg, tmp_path / "ogle", workers=1, progress=False))
    assert store.reference_epoch == store.manifest["reference_epoch"] == \
        get_survey("ogle").reference_epoch
    assert len(set(store.lengths.tolist())) > 5  # lengths differ: no padding to the longest
    assert store.observations["flux"].size == store.lengths.sum()
    times = store.event(0)["times"]
    assert times.max() < 3 * 365.25  # days since the epoch, not full HJDs
    no_event = np.flatnonzero(store.labels == 0)
    kinds = store.params["variable_kind"][no_event]
    assert (kinds > 0).all()  # variable_fraction=1: every no-event star varies
    assert (store.params["variable_kind"][store.labels > 0] == 0).all()
    for index in no_event[:4]:
        event = store.event(index)
        again = resimulate(store, index)
        np.testing.assert_allclose(again.flux, event["flux"], rtol=1e-6)  # float32 storage
        np.testing.assert_allclose(again.times, event["times"], rtol=0, atol=0)  # float64
        np.testing.assert_allclose(model_flux(event["params"], again.times), again.clean_flux,
                                   rtol=1e-9)
        assert VARIABLE_KINDS[int(event["params"]["variable_kind"])] != "constant"
    batch = store.batch(no_event[:3])
    assert batch["times"].shape[1] == store.lengths[no_event[:3]].max()


@pytest.mark.slow
def test_same_seed_gives_identical_arrays_for_any_worker_count(tmp_path, small_store,
                                                               small_config):
    from microlens.simulation.simulate import simulate_range

    simulate_range(small_config, 0, 6)  # leave VBBinaryLensing state behind in this process
    one = open_dataset(generate_dataset(small_config, tmp_path / "one", workers=1,
                                        chunk_size=16, progress=False))
    for name in ("times", "flux", "flux_err"):
        np.testing.assert_array_equal(one.observations[name], small_store.observations[name])
    for name in ("offsets", "labels", "split"):
        np.testing.assert_array_equal(getattr(one, name), getattr(small_store, name))
    assert params_equal(np.asarray(one.params), np.asarray(small_store.params))


@pytest.mark.slow
def test_other_chunk_sizes_agree_to_numerical_precision(tmp_path, small_store, small_config):
    other = open_dataset(generate_dataset(small_config, tmp_path / "seven", workers=2,
                                          chunk_size=7, progress=False))
    np.testing.assert_allclose(other.observations["flux"], small_store.observations["flux"],
                               rtol=1e-6)
    for name in ("t_0", "u_0", "q", "s", "dchi2_flat"):
        np.testing.assert_allclose(other.params[name], small_store.params[name], rtol=1e-9)
    # the PSPL fit stops at a 1e-5 tolerance, so tiny input differences move chi2 by ~1e-3
    np.testing.assert_allclose(other.params["dchi2_pspl"], small_store.params["dchi2_pspl"],
                               atol=0.05)


def test_interrupted_generation_resumes_from_finished_chunks(tmp_path):
    cfg = SimulationConfig(n_per_class=10, n_epochs=120, seed=3, detectability=False)
    reference = open_dataset(generate_dataset(cfg, tmp_path / "ref", workers=1, chunk_size=5,
                                              progress=False))
    finished = []

    def interrupt_after_three(start, stop):
        finished.append(start)
        if len(finished) == 3:
            raise KeyboardInterrupt

    target = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(cfg, target, workers=1, chunk_size=5, progress=False,
                         on_chunk=interrupt_after_three)
    assert not target.exists()  # nothing half-written under the final name
    with pytest.raises(DatasetError, match="resume"):
        open_dataset(target)

    chunk_dir = target.with_name("resumed.partial") / "chunks"
    on_disk = sorted(int(p.stem.split("_")[1]) for p in chunk_dir.glob("chunk_*.npz"))
    assert set(finished) <= set(on_disk) and len(on_disk) < 6
    computed = []
    resumed = open_dataset(generate_dataset(cfg, target, workers=1, chunk_size=5, progress=False,
                                            on_chunk=lambda a, b: computed.append(a)))
    assert sorted(computed + on_disk) == [0, 5, 10, 15, 20, 25]  # only missing chunks ran
    np.testing.assert_array_equal(resumed.observations["flux"], reference.observations["flux"])
    assert params_equal(np.asarray(resumed.params), np.asarray(reference.params))
    assert not target.with_name("resumed.partial").exists()


def test_existing_dataset_is_reused_or_refused(tmp_path, small_store, small_config):
    assert generate_dataset(small_config, small_store.path, progress=False) == small_store.path
    other = SimulationConfig(**{**small_config.to_dict(), "seed": 99})
    with pytest.raises(DatasetError, match="different config \\(differs in seed\\)"):
        generate_dataset(other, small_store.path, progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"topology": "wide"}, "unknown topology preset 'wide'; valid choices: distinct, planetary"),
    ({"cadence": "cadence_99"}, "valid choices: cadence_05, cadence_15, cadence_30, cadence_50"),
    ({"error": "0.05"}, "valid choices: error_003, error_005, error_010, error_015"),
    ({"n_per_class": 0}, "n_per_class must be positive"),
    ({"n_per_class": -5}, "n_per_class must be positive"),
    ({"n_per_class": 2.5}, "n_per_class must be an integer"),
    ({"t_E_range": (50.0, 5.0)}, "t_E_range has low > high"),
    ({"rho_range": (0.0, 0.01)}, "rho_range must be positive"),
    ({"u_0_range": (0.0, "x")}, "u_0_range must be a \\(low, high\\) pair"),
    ({"split_fractions": (0.5, 0.5, 0.5)}, "split_fractions must be three"),
    ({"magnification_backend": "mine"}, "valid choices: VBBinaryLensing, VBMicrolensing"),
])
def test_bad_config_is_refused_with_the_valid_choices(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**kwargs)


def test_unknown_config_key_names_the_valid_keys():
    with pytest.raises(ValueError, match="unknown simulation setting.*'n_events_per_class'"):
        SimulationConfig.from_dict({"n_events_per_class": 3})


def test_missing_corrupt_and_foreign_schema_datasets_are_refused(tmp_path, small_config):
    with pytest.raises(DatasetError, match="no dataset at"):
        open_dataset(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="manifest.json is missing"):
        open_dataset(tmp_path / "empty")

    cfg = SimulationConfig(n_per_class=2, n_epochs=50, detectability=False)
    path = generate_dataset(cfg, tmp_path / "tiny", workers=1, progress=False)
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 999}))
    with pytest.raises(DatasetError, match="schema version 999"):
        open_dataset(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="corrupt manifest"):
        open_dataset(path)
    (path / "manifest.json").write_text(json.dumps(manifest))
    good_flux = np.load(path / "flux.npy")
    np.save(path / "flux.npy", np.zeros(7, np.float32))
    with pytest.raises(DatasetError, match="flux.npy has shape"):
        open_dataset(path)
    np.save(path / "flux.npy", good_flux)
    open_dataset(path)
    labels = np.load(path / "labels.npy")
    np.save(path / "labels.npy", np.roll(labels, 1))
    with pytest.raises(DatasetError, match="out of alignment"):
        open_dataset(path)
    np.save(path / "labels.npy", labels)
    (path / "labels.npy").unlink()
    with pytest.raises(DatasetError, match="labels.npy is missing"):
        open_dataset(path)


def test_bad_generation_arguments(tmp_path, small_config):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        generate_dataset(small_config, tmp_path / "x", workers=0)
    with pytest.raises(TypeError, match="SimulationConfig"):
        generate_dataset({"n_per_class": 3}, tmp_path / "x")
    store = open_dataset(generate_dataset(
        SimulationConfig(n_per_class=1, n_epochs=40, detectability=False), tmp_path / "one",
        progress=False))
    with pytest.raises(ValueError, match="unknown split 'testing'; valid: train, val, test"):
        LightCurveDataset(store, split="testing")


def test_torch_dataset_and_collate_keep_events_aligned(small_store):
    import torch

    ds = LightCurveDataset(small_store, split="test")
    assert len(ds) == 9
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True,
                                         collate_fn=collate_light_curves,
                                         generator=torch.Generator().manual_seed(0))
    seen = []
    for batch in loader:
        width = batch["flux"].shape[1]
        assert width == int(batch["lengths"].max())
        assert batch["mask"].sum(1).tolist() == batch["lengths"].tolist()
        for row, index in enumerate(batch["index"].tolist()):
            event = small_store.event(index)
            assert event["split"] == "test"
            assert batch["labels"][row].item() == event["label"]
            n = batch["lengths"][row].item()
            np.testing.assert_allclose(batch["flux"][row, :n].numpy(), event["flux"], rtol=1e-6)
            assert not batch["mask"][row, n:].any()
            seen.append(index)
    assert sorted(seen) == sorted(small_store.indices("test").tolist())
    with pytest.raises(ValueError, match="not in split"):
        LightCurveDataset(small_store, split="test", indices=small_store.indices("train")[:2])


def test_params_table_is_aligned_with_events(small_store):
    test_rows = small_store.indices("test")
    table = small_store.params_table(test_rows)
    assert list(table.index) == test_rows.tolist()
    assert set(table["split"]) == {"test"}
    for index in test_rows[:4]:
        event = small_store.event(index)
        assert table.loc[index, "label"] == event["label"]
        assert table.loc[index, "t_0"] == event["params"]["t_0"]


def test_relative_paths_are_anchored_at_the_project_root(monkeypatch, tmp_path):
    from microlens.core.paths import PROJECT_ROOT, resolve_path

    assert (PROJECT_ROOT / "pyproject.toml").is_file()
    monkeypatch.chdir(tmp_path)  # papermill runs notebooks from notebooks/
    assert resolve_path("data/quick") == PROJECT_ROOT / "data" / "quick"
    assert resolve_path(tmp_path / "x") == tmp_path / "x"


def test_unfinished_generation_with_another_plan_is_discarded_with_a_warning(tmp_path):
    cfg = SimulationConfig(n_per_class=4, n_epochs=60, seed=2, detectability=False)

    def stop_after_first(start, stop):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_dataset(cfg, tmp_path / "d", workers=1, chunk_size=3, progress=False,
                         on_chunk=stop_after_first)
    with pytest.warns(UserWarning, match="discarding the unfinished generation"):
        store = open_dataset(generate_dataset(cfg, tmp_path / "d", workers=1, chunk_size=4,
                                              progress=False))
    assert len(store) == 12 and store.manifest["generation"]["chunk_size"] == 4


# --------------------------------------------------------------------------------------------
# Generation from any script: workers never import the caller's __main__
# --------------------------------------------------------------------------------------------

SCRIPT_CONFIG = dict(n_per_class=8, n_epochs=40, seed=6, topology="stellar", detectability=False)
"""A few dozen events on few epochs (about a second). The fresh VBBinaryLensing state of each
chunk is checked by the slow worker-count tests, whose Δχ² columns show it."""

GENERATION_SCRIPT = """\
import sys
from microlens import SimulationConfig, generate_dataset
config = SimulationConfig(**{config!r})
for workers in {workers!r}:
    generate_dataset(config, sys.argv[1] + f"/workers{{workers}}", workers=workers,
                     chunk_size=6, progress=False)
print("generated")
"""


def _stored_bytes(path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.glob("*.npy"))}


def _run_script(how: str, script: str, out_dir, tmp_path):
    import subprocess
    import sys

    if how == "stdin":
        command, stdin = [sys.executable, "-", str(out_dir)], script
    elif how == "-c":
        command, stdin = [sys.executable, "-c", script, str(out_dir)], None
    else:  # a file without an `if __name__ == "__main__":` guard
        file = tmp_path / "generate.py"
        file.write_text(script)
        command, stdin = [sys.executable, str(file), str(out_dir)], None
    return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)


@pytest.fixture(scope="module")
def in_process_bytes(tmp_path_factory):
    """The script's data set generated from this process."""
    config = SimulationConfig(**SCRIPT_CONFIG)
    path = generate_dataset(config, tmp_path_factory.mktemp("in_process") / "set", workers=1,
                            chunk_size=6, progress=False)
    return _stored_bytes(path)


def test_generation_from_a_script_on_standard_input_matches_in_process_bytes(
        tmp_path, in_process_bytes):
    """`python - < script.py` used to die with BrokenProcessPool: multiprocessing's children
    re-import a __main__ of '<stdin>', which no file holds. One and two workers now give the
    bytes of a generation in this process."""
    out_dir = tmp_path / "out"
    script = GENERATION_SCRIPT.format(config=SCRIPT_CONFIG, workers=(1, 2))
    result = _run_script("stdin", script, out_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "BrokenProcessPool" not in result.stderr and "generated" in result.stdout
    for workers in (1, 2):
        written = _stored_bytes(out_dir / f"workers{workers}")
        assert set(written) == set(in_process_bytes)
        different = [name for name in written if written[name] != in_process_bytes[name]]
        assert not different, f"workers={workers} from stdin changed {different}"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["-c", "file without a main guard"])
def test_generation_from_python_c_and_unguarded_files_matches_in_process_bytes(
        how, tmp_path, in_process_bytes):
    out_dir = tmp_path / "out"
    result = _run_script(how, GENERATION_SCRIPT.format(config=SCRIPT_CONFIG, workers=(2,)),
                         out_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _stored_bytes(out_dir / "workers2") == in_process_bytes


def test_a_chunk_that_fails_names_its_events_and_the_cause(tmp_path):
    # u_0 of 50-60 Einstein radii: no event can pass the detection cut in one attempt
    cfg = SimulationConfig(n_per_class=2, n_epochs=40, u_0_range=(50.0, 60.0), max_attempts=1,
                           detectability=False)
    with pytest.raises(RuntimeError, match=r"(?s)simulating events 0\.\.2 failed in a worker "
                       r"process.*event 0 did not pass the detection cut in 1 attempts"):
        generate_dataset(cfg, tmp_path / "hopeless", workers=1, chunk_size=3, progress=False)
    assert not (tmp_path / "hopeless").exists()


def test_a_worker_that_dies_is_reported_with_its_exit_code_and_error_output(
        tmp_path, monkeypatch):
    from microlens.data import store

    monkeypatch.setattr(store, "_WORKER_COMMAND",
                        "import sys; sys.stderr.write('worker cannot start\\n'); sys.exit(3)")
    cfg = SimulationConfig(n_per_class=2, n_epochs=40, detectability=False)
    with pytest.raises(RuntimeError, match=r"(?s)simulation worker process ended .*"
                       r"\(exit code 3\).*worker cannot start"):
        generate_dataset(cfg, tmp_path / "dead", workers=2, chunk_size=3, progress=False)


# --------------------------------------------------------------------------------------------
# Broken data sets: one clear error naming the file and what is wrong
# --------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_set(tmp_path):
    cfg = SimulationConfig(n_per_class=2, n_epochs=40, detectability=False)
    return generate_dataset(cfg, tmp_path / "tiny", workers=1, progress=False)


def test_a_missing_directory_or_a_file_is_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no dataset at .*nothing: the directory does not "
                       "exist"):
        open_dataset(tmp_path / "nothing")
    (tmp_path / "file.npy").write_bytes(b"x")
    with pytest.raises(DatasetError, match="file.npy: it is a file, not a data set's directory"):
        open_dataset(tmp_path / "file.npy")


def test_a_broken_manifest_names_the_file_and_the_line(tiny_set):
    manifest_file = tiny_set / "manifest.json"
    text = manifest_file.read_text()
    manifest_file.write_text(text[:200])  # cut inside line 10
    line = text[:200].count("\n") + 1
    with pytest.raises(DatasetError, match=rf"corrupt manifest .*manifest.json: not valid JSON "
                       rf"at line {line} column \d+ .*overwrite=True"):
        open_dataset(tiny_set)
    manifest_file.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="manifest.json: not UTF-8 text"):
        open_dataset(tiny_set)
    manifest = json.loads(text)
    del manifest["n_observations"], manifest["param_columns"]
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="manifest.json: n_observations, param_columns "
                       "missing; regenerate"):
        open_dataset(tiny_set)
    manifest_file.write_text(json.dumps({**json.loads(text), "n_events": "12"}))
    with pytest.raises(DatasetError, match="n_events is '12', not a count"):
        open_dataset(tiny_set)
    manifest_file.write_text(json.dumps({**json.loads(text), "config": [1, 2]}))
    with pytest.raises(DatasetError, match="config is \\[1, 2\\], not a dict"):
        open_dataset(tiny_set)
    future = json.loads(text)
    future["config"]["lens_count"] = 3
    manifest_file.write_text(json.dumps(future))
    with pytest.raises(DatasetError, match="settings this version of microlens does not know: "
                       "lens_count"):
        open_dataset(tiny_set)


@pytest.mark.parametrize("keep, problem", [
    (-10, r"truncated: (\d+) bytes, but its header describes \d+ \(float32 of shape"),
    (40, r"40 bytes that do not start with a whole .npy header"),
    (0, r"0 bytes that do not start with a whole .npy header"),
])
def test_a_truncated_array_names_the_file_its_size_and_the_remedy(tiny_set, keep, problem):
    data = (tiny_set / "flux.npy").read_bytes()
    (tiny_set / "flux.npy").write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(DatasetError, match=r"corrupt array .*flux.npy: " + problem) as info:
        open_dataset(tiny_set)
    assert "generate_dataset(config, path, overwrite=True)" in str(info.value)
    if keep < 0:
        assert f"{len(data) + keep} bytes, but its header describes {len(data)}" in \
            str(info.value)


def test_an_array_of_another_dtype_is_refused(tiny_set):
    np.save(tiny_set / "labels.npy", np.load(tiny_set / "labels.npy").astype(np.int64))
    with pytest.raises(DatasetError, match="labels.npy holds int64, the layout stores int8"):
        open_dataset(tiny_set)


def test_a_saved_config_that_todays_checks_refuse_still_opens_with_a_warning(tiny_set):
    """Data sets made before the checks (here with an empty test split and a string for a
    bool) keep opening as saved; the warning says why they cannot be made again as they are."""
    manifest_file = tiny_set / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["config"].update(split_fractions=[1.0, 0.0, 0.0], detectability="no")
    manifest_file.write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match=r"manifest.json: its simulation config fails today's "
                      r"checks \(split_fractions must be three positive numbers"):
        store = open_dataset(tiny_set)
    assert store.config.split_fractions == (1.0, 0.0, 0.0) and store.config.detectability == "no"
    assert len(store) == 6


def test_a_survey_set_with_thesis_only_settings_opens_quietly(tmp_path):
    import warnings

    from microlens.simulation.simulate import IgnoredSettingWarning

    with pytest.warns(IgnoredSettingWarning, match="n_epochs=60 has no effect"):
        cfg = SimulationConfig(n_per_class=1, survey="moa", n_epochs=60, detectability=False)
    path = generate_dataset(cfg, tmp_path / "moa", workers=1, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredSettingWarning)
        assert open_dataset(path).config == cfg


def test_a_set_made_before_later_settings_existed_is_reused_and_keeps_its_study_key(tmp_path):
    """A manifest without the settings added later (they reproduce what it simulated) is the
    same data set: generate_dataset reuses it, and its study key does not change."""
    from microlens.simulation.simulate import LATER_FIELDS

    cfg = SimulationConfig(n_per_class=2, n_epochs=60, seed=4, detectability=False)
    path = generate_dataset(cfg, tmp_path / "old", workers=1, progress=False)
    manifest = json.loads((path / "manifest.json").read_text())
    for name in LATER_FIELDS:
        del manifest["config"][name]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert generate_dataset(cfg, path, workers=1, progress=False) == path  # reused, not refused
    assert not set(LATER_FIELDS) & set(cfg.canonical_dict())
    with pytest.warns(UserWarning, match="n_epochs=60 has no effect"):  # the ogle survey's own
        ogle = SimulationConfig(n_per_class=2, n_epochs=60, seed=4, detectability=False,
                                survey="ogle", noise="fitted")
    with pytest.raises(Exception, match="differs in noise"):
        generate_dataset(ogle, path, workers=1, progress=False)
