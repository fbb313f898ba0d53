"""Property-based checks of SimulationConfig: valid configs construct and round-trip, every
corruption of every field is refused naming the field. No generation here (too slow):
tests/test_simulate.py generates a config at the edges of the bounds."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlens.simulation.presets import CADENCES, ERRORS, SURVEYS, TOPOLOGIES
from microlens.simulation.simulate import (
    CONTAMINANT_CHOICES,
    MAG_LIMITS,
    MAGNIFICATION_BACKENDS,
    MAX_VBBL_TOL,
    MIN_EPOCHS,
    IgnoredSettingWarning,
    SimulationConfig,
)

INT_FIELDS = ("n_per_class", "seed", "n_epochs", "detection_min_points", "max_attempts")
FLOAT_FIELDS = ("survey_days", "time_jitter", "gap_share", "gap_mean_epochs", "reference_mag",
                "detection_sigma", "vbbl_tol", "variable_fraction")
RANGE_FIELDS = ("t_0_range", "u_0_range", "t_E_range", "rho_range", "source_mag_range",
                "f_s_range")


def finite(low: float, high: float, **kwargs):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, **kwargs)


def ordered_pair(low: float, high: float):
    return st.tuples(finite(low, high), finite(low, high)).map(lambda p: tuple(sorted(p)))


@st.composite
def valid_settings(draw) -> dict:
    """Keyword arguments of a valid SimulationConfig, spread over every field's range."""
    survey = draw(st.sampled_from(list(SURVEYS)))
    thesis = survey == "thesis"
    n_epochs = draw(st.integers(MIN_EPOCHS, 5000))
    shares = draw(st.tuples(*[finite(0.01, 1.0)] * 3))
    return dict(
        n_per_class=draw(st.integers(1, 10**6)),
        topology=draw(st.sampled_from(list(TOPOLOGIES))),
        cadence=draw(st.none() | st.sampled_from(list(CADENCES))) if thesis else None,
        error=draw(st.none() | st.sampled_from(list(ERRORS))) if thesis else None,
        seed=draw(st.integers(0, 2**63 - 1)),  # the largest NumPy int64
        survey=survey,
        variable_fraction=draw(st.none() | finite(0.0, 1.0)),
        n_epochs=n_epochs,
        survey_days=draw(finite(1e-3, 1e4)),
        time_jitter=draw(finite(0.0, 0.5, exclude_max=True)),
        gap_share=draw(finite(0.0, 1.0)),
        gap_mean_epochs=draw(finite(1.0, 1e3)),
        t_0_range=draw(ordered_pair(0.0, 1.0)),
        u_0_range=draw(ordered_pair(0.0, 10.0)),
        t_E_range=draw(ordered_pair(1e-3, 1e4)),
        rho_range=draw(ordered_pair(1e-6, 10.0)),
        source_mag_range=draw(ordered_pair(*MAG_LIMITS)),
        f_s_range=draw(ordered_pair(1e-6, 1.0)),
        reference_mag=draw(finite(*MAG_LIMITS)),
        detection_sigma=draw(finite(1e-2, 100.0)),
        detection_min_points=draw(st.integers(1, n_epochs if thesis else 100)),
        max_attempts=draw(st.integers(1, 1000)),
        vbbl_tol=draw(finite(1e-9, MAX_VBBL_TOL)),
        magnification_backend=draw(st.sampled_from(MAGNIFICATION_BACKENDS)),
        detectability=draw(st.booleans()),
        split_fractions=tuple(s / sum(shares) for s in shares),
        noise=draw(st.sampled_from(["preset", "fitted"] if survey == "ogle" else ["preset"])),
        # the parallax needs a survey preset's real dates (no baselines are drawn here)
        single_lens=draw(st.sampled_from(["point"] if thesis else ["point", "physical"])),
        contaminants=draw(st.sampled_from(CONTAMINANT_CHOICES)),
    )


def build(settings: dict) -> SimulationConfig:
    """The config; a survey preset's warning about thesis-only settings is not the point."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredSettingWarning)
        return SimulationConfig(**settings)


@given(valid_settings())
def test_valid_configs_construct_and_round_trip_through_dicts_and_json(settings):
    cfg = build(settings)
    data = cfg.to_dict()
    text = json.dumps(data)  # JSON-ready as it is: no default= needed
    json.dumps(cfg.canonical_dict())
    for saved in (data, json.loads(text)):
        again = SimulationConfig.from_dict(saved, warn_ignored=False)
        assert again == cfg
        assert again.to_dict() == data
    assert all(isinstance(getattr(cfg, name), tuple) for name in (*RANGE_FIELDS,
                                                                   "split_fractions"))


@given(valid_settings())
def test_numpy_scalars_are_accepted_where_numbers_are(settings):
    as_numpy = {**settings}
    for name in INT_FIELDS:
        as_numpy[name] = np.int64(settings[name])
    for name in FLOAT_FIELDS:
        if settings[name] is not None:
            as_numpy[name] = np.float64(settings[name])
    for name in RANGE_FIELDS:
        as_numpy[name] = np.asarray(settings[name], dtype=np.float64)
    as_numpy["detectability"] = np.bool_(settings["detectability"])
    cfg = build(as_numpy)
    assert cfg == build(settings)
    assert all(type(getattr(cfg, name)) is int for name in INT_FIELDS)
    json.dumps(cfg.to_dict())


NOT_A_NUMBER = [math.nan, math.inf, -math.inf, True, False, "0.3", "19", None, [0.3], b"1"]
NOT_AN_INT = [True, False, 2.5, 3.0, "5", None, math.nan, [5], np.float64(4.0)]
NOT_A_PAIR = [0.5, "ab", (1.0,), (0.1, 0.2, 0.3), (True, 1.0), ("0.1", "0.2"), None,
              (math.nan, 0.5), (0.1, math.inf), {"low": 0.1, "high": 0.2}]
NOT_A_NAME = [3, None, b"baseline", ["baseline"], "no such preset", ""]

CORRUPTIONS: list[tuple[str, object]] = [
    *[(name, value) for name in INT_FIELDS for value in NOT_AN_INT],
    ("n_per_class", 0), ("n_per_class", -1), ("seed", -1), ("n_epochs", 1), ("n_epochs", 0),
    ("detection_min_points", 0), ("detection_min_points", -1), ("max_attempts", 0),
    ("detection_min_points", 10**9),
    ("baselines", ""), ("baselines", 3), ("noise_model", ""), ("noise_model", 3),
    ("windows_per_star", 0), ("windows_per_star", 1.5),
    ("min_window_points", 1), ("injection_f_s_range", (0.0, 1.0)),
    ("injection_f_s_range", (0.5, 1.5)), ("injected_variables", -0.1),
    ("injected_variables", 1.5), ("injected_variables", math.nan), ("injected_variables", None),
    ("injected_variables", "0.5"), ("injected_variables", True),
    *[(name, value) for name in FLOAT_FIELDS for value in NOT_A_NUMBER
      if not (name == "variable_fraction" and value is None)],
    ("survey_days", 0.0), ("survey_days", -5.0), ("time_jitter", 0.5), ("time_jitter", -0.1),
    ("gap_share", 1.01), ("gap_share", -0.01), ("gap_mean_epochs", 0.99),
    ("reference_mag", MAG_LIMITS[0] - 0.1), ("reference_mag", MAG_LIMITS[1] + 0.1),
    ("reference_mag", -26.7), ("detection_sigma", 0.0), ("detection_sigma", -3.0),
    ("vbbl_tol", 0.0), ("vbbl_tol", MAX_VBBL_TOL * 1.01), ("vbbl_tol", 10.0),
    ("variable_fraction", -0.1), ("variable_fraction", 1.1),
    *[(name, value) for name in RANGE_FIELDS for value in NOT_A_PAIR],
    # reversed ranges
    ("t_0_range", (0.9, 0.1)), ("u_0_range", (1.0, 0.5)), ("t_E_range", (80.0, 5.0)),
    ("rho_range", (1e-2, 1e-4)), ("source_mag_range", (21.0, 18.0)), ("f_s_range", (1.0, 0.1)),
    # outside the physical bounds
    ("t_0_range", (-0.1, 0.5)), ("t_0_range", (0.5, 1.1)), ("u_0_range", (-1.0, 1.0)),
    ("t_E_range", (0.0, 10.0)), ("rho_range", (-1e-3, 1e-2)),
    ("source_mag_range", (-50.0, -40.0)), ("source_mag_range", (20.0, 31.0)),
    ("f_s_range", (0.0, 1.0)), ("f_s_range", (0.5, 1.5)),
    *[(name, value) for name in ("topology", "survey", "magnification_backend", "noise",
                                 "single_lens", "contaminants")
      for value in NOT_A_NAME],
    *[(name, value) for name in ("cadence", "error")
      for value in NOT_A_NAME if value is not None],
    *[("detectability", value) for value in ("no", "True", 1, 0, None, 1.0)],
    *[("split_fractions", value) for value in (
        (1.0, 0.0, 0.0), (0.0, 0.5, 0.5), (0.5, 0.5, 0.5), (0.8, 0.1), (0.7, 0.1, 0.1, 0.1),
        (math.nan, 0.5, 0.5), ("0.8", 0.1, 0.1), (True, 0.0, 0.0), 1.0, "0.8,0.1,0.1",
        (0.9, 0.2, -0.1))],
]


BASE_SETTINGS = [{}, {"survey": "ogle"}, {"n_epochs": 40, "cadence": "cadence_50",
                                          "error": "error_015"}]


@pytest.mark.parametrize("name, bad", CORRUPTIONS, ids=[f"{n}={v!r}" for n, v in CORRUPTIONS])
def test_each_corruption_of_each_field_is_refused_naming_the_field(name, bad):
    for base in BASE_SETTINGS:
        with pytest.raises((ValueError, TypeError)) as info:
            build({**base, name: bad})
        assert name in str(info.value), (base, str(info.value))


CORRUPTED_FIELDS = sorted({name for name, _ in CORRUPTIONS})


@pytest.mark.parametrize("name", CORRUPTED_FIELDS)
@given(settings=valid_settings(), data=st.data())
def test_corrupting_any_valid_config_is_refused_naming_the_field(name, settings, data):
    bad = data.draw(st.sampled_from([v for n, v in CORRUPTIONS if n == name]), label=name)
    with pytest.raises((ValueError, TypeError)) as info:
        build({**settings, name: bad})
    assert name in str(info.value)


def test_the_corruptions_cover_every_field():
    from dataclasses import fields

    assert {f.name for f in fields(SimulationConfig)} == {name for name, _ in CORRUPTIONS}
