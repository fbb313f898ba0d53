"""The two tiers of the suite: what runs where (tests/conftest.py)."""

from __future__ import annotations

import os

import pytest
from conftest import TRAINED_FIXTURES, pytest_collection_modifyitems
from hypothesis import settings


def test_the_hypothesis_profile_follows_the_selection(request):
    """The whole suite searches with 100 examples a property, a selection (the fast tier) 25."""
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen in ("fast", "thorough"):
        expected = {"fast": 25, "thorough": 100}[chosen]
    else:
        assert chosen in (None, "", "explore"), chosen
        expected = (25 if request.config.getoption("markexpr") else 100) if not chosen else 1000
    assert settings.default.max_examples == expected
    assert settings.default.derandomize == (chosen != "explore")


def test_every_test_on_a_trained_fixture_is_in_the_slow_tier(request):
    on_trained = [item for item in request.session.items
                  if set(getattr(item, "fixturenames", ())) & set(TRAINED_FIXTURES)]
    unmarked = [item.nodeid for item in on_trained if item.get_closest_marker("slow") is None]
    assert not unmarked


class _Item:
    """What the collection hook reads and writes of a test item."""

    def __init__(self, *fixturenames):
        self.fixturenames, self.markers, self.obj = fixturenames, [], None

    def add_marker(self, marker):
        self.markers.append(marker.mark.name)


class _Config:
    def getoption(self, name, default=None):
        return default


@pytest.mark.parametrize("fixture", TRAINED_FIXTURES)
def test_the_collection_hook_puts_a_test_on_a_trained_fixture_in_the_slow_tier(fixture):
    trained, plain = _Item("tmp_path", fixture), _Item("tmp_path", "eval_store")
    pytest_collection_modifyitems(_Config(), [trained, plain])
    assert "slow" in trained.markers and "slow" not in plain.markers
