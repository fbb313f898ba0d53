"""Settings from dicts and command lines: unknown keys named, every field type parsed right."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from microlens.core.settings import add_dataclass_options, dataclass_overrides, from_known_fields
from microlens.models.config import ModelConfig
from microlens.training.train import TrainConfig, parse_args


@dataclass(frozen=True)
class Example:
    flag: bool = True
    off: bool = False
    count: int = 3
    rate: float = 0  # an int default on a float field still parses "0.5"
    name: str = "x"
    pair: tuple[float, float] = (0.0, 1.0)
    many: tuple[int, ...] = (1,)
    maybe: int | None = None
    nested: dict = field(default_factory=dict)


def parse(argv, **kwargs):
    parser = argparse.ArgumentParser()
    add_dataclass_options(parser, Example, skip=("nested",), **kwargs)
    return dataclass_overrides(parser.parse_args(argv), Example)


def test_bools_take_yes_and_no_forms_never_a_truthy_string():
    assert parse(["--no-flag"]) == {"flag": False}
    assert parse(["--off"]) == {"off": True}
    with pytest.raises(SystemExit):  # the old helper read "--flag False" as True
        parse(["--flag", "False"])


def test_each_field_type_parses_to_its_type():
    got = parse(["--count", "7", "--rate", "0.5", "--name", "y", "--pair", "2", "3.5",
                 "--many", "4", "5", "6", "--maybe", "9"])
    assert got == {"count": 7, "rate": 0.5, "name": "y", "pair": (2.0, 3.5), "many": (4, 5, 6),
                   "maybe": 9}
    assert isinstance(got["rate"], float) and isinstance(got["pair"], tuple)
    assert Example(**got).pair == (2.0, 3.5)


def test_options_not_given_are_left_out():
    assert parse([]) == {}


@pytest.mark.parametrize("argv, message", [
    (["--count", "1.5"], "argument --count: invalid int value: '1.5'"),
    (["--pair", "1"], "argument --pair: expected 2 arguments"),
    (["--name", "q"], "argument --name: invalid choice: 'q'"),
])
def test_bad_values_and_choices_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse(argv, choices={"name": ("x", "y", "z")})
    assert message in capsys.readouterr().err


def test_unsupported_field_type_is_named():
    parser = argparse.ArgumentParser()
    with pytest.raises(TypeError, match=r"Example\.nested has type <class 'dict'>.*supported:"):
        add_dataclass_options(parser, Example)


def test_unknown_skip_or_choices_field_is_named():
    with pytest.raises(ValueError, match=r"Example has no field\(s\) \['nope'\]; valid:"):
        add_dataclass_options(argparse.ArgumentParser(), Example, skip=("nested", "nope"))


def test_from_known_fields_names_the_unknown_and_valid_keys():
    with pytest.raises(ValueError, match=r"unknown Example settings \['bogus'\]; valid: "):
        from_known_fields(Example, {"bogus": 1}, "Example settings")


def test_train_command_line_covers_every_field_of_both_configs(capsys):
    config, _ = parse_args(["--epochs", "3", "--learning-rate", "0.002", "--device", "cpu",
                            "--dropout", "0.0", "--d-model", "32", "--seed", "5"])
    assert (config.epochs, config.learning_rate, config.device, config.seed) == (3, 0.002,
                                                                                 "cpu", 5)
    assert (config.model.dropout, config.model.d_model) == (0.0, 32)
    defaults, _ = parse_args([])
    assert defaults == TrainConfig()
    for argv, message in ((["--device", "gpu"], "unknown device 'gpu'; valid: auto, cpu, cuda"),
                          (["--precision", "fp16"],
                           "unknown precision 'fp16'; valid: auto, fp32, bf16")):
        with pytest.raises(SystemExit):
            parse_args(argv)
        assert message in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    add_dataclass_options(parser, TrainConfig, skip=("model",))
    add_dataclass_options(parser, ModelConfig)  # every field has a command-line form


def test_declared_fields_follow_bases_across_modules_and_name_what_is_missing(tmp_path,
                                                                             monkeypatch):
    from microlens.core.settings import declared_fields

    package = tmp_path / "declared_bases_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "base.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass\nclass Base:\n"
        "    shared: int = 1  # set in the base module\n")
    (package / "child.py").write_text(
        "from dataclasses import dataclass\nfrom typing import Generic, TypeVar\n\n"
        "from .base import Base\n\nT = TypeVar('T')\n\n\n@dataclass\n"
        "class Child(Base, Generic[T]):\n    own: float = 2.0  # the child's own\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fields = declared_fields("declared_bases_pkg.child", "Child")
    assert set(fields) == {"shared", "own"}  # the imported base's field, not Generic's
    assert "base module" in fields["shared"].help and "own" in fields["own"].help
    with pytest.raises(LookupError, match="no module 'declared_bases_pkg.nowhere'"):
        declared_fields("declared_bases_pkg.nowhere", "Child")
    with pytest.raises(LookupError, match="has no class 'Other'; its classes: Child"):
        declared_fields("declared_bases_pkg.child", "Other")
