"""Issue 28 by class: every numeric key of every input section, and every numeric flag, refuses
.inf, .nan, YAML booleans and absurdly huge values, so that a key added later without a range
fails here; a key given twice in a YAML file is refused; an unusable file is said to be one."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel, ValidationError

import hybridmd.config
from hybridmd.cli import build_parser
from hybridmd.config import ConfigError, ModelConfig, Strict, read_input
from hybridmd.config.base import is_numeric
from hybridmd.errors import unusable_file
from hybridmd.models.registry import hyperparameter_defaults, model_kinds


def _sections() -> list[type[BaseModel]]:
    """Every input section: the subclasses of ``Strict`` (hybridmd.config imports them all)."""
    assert hybridmd.config  # the package import defines them
    found, todo = [], [Strict]
    while todo:
        cls = todo.pop()
        found += cls.__subclasses__()
        todo += cls.__subclasses__()
    return sorted(set(found), key=lambda c: c.__name__)


def _numeric_fields() -> list[tuple[type[BaseModel], str]]:
    return [(cls, name) for cls in _sections() for name, field in cls.model_fields.items()
            if is_numeric(field.annotation)]


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or any(_is_list(a) for a in get_args(annotation))


def _holds_int_only(annotation: Any) -> bool:
    return annotation is int or (float not in _leaves(annotation) and int in _leaves(annotation))


def _leaves(annotation: Any) -> set:
    args = get_args(annotation)
    return {annotation} if not args else {leaf for a in args for leaf in _leaves(a)}


def test_there_are_numeric_keys_to_check() -> None:
    names = {f"{cls.__name__}.{name}" for cls, name in _numeric_fields()}
    assert {"DynamicsConfig.timestep_fs", "SimulationConfig.replicas", "LearnConfig.threads",
            "OptimisationConfig.learning_rate", "SystemConfig.cell"} <= names
    assert len(names) > 60


@pytest.mark.parametrize("bad", [True, False, math.inf, -math.inf, math.nan, "huge"])
@pytest.mark.parametrize(("cls", "name"), _numeric_fields(),
                         ids=lambda x: x if isinstance(x, str) else x.__name__)
def test_every_numeric_key_refuses(cls: type[BaseModel], name: str, bad: Any) -> None:
    """The key itself is reported (its own error), whatever else the section lacks."""
    annotation = cls.model_fields[name].annotation
    if bad == "huge":
        bad = 10**30 if _holds_int_only(annotation) else 1e30
    value = [bad] * 3 if _is_list(annotation) else bad
    with pytest.raises(ValidationError) as err:
        cls.model_validate({name: value})
    assert any(e["loc"] and e["loc"][0] == name for e in err.value.errors()), err.value


def _numeric_hyperparameters() -> list[tuple[str, str]]:
    return [(kind, name) for kind in model_kinds()
            for name, default in hyperparameter_defaults(kind).items()
            if isinstance(default, int | float) and not isinstance(default, bool)]


@pytest.mark.parametrize("bad", [True, math.inf, math.nan, 10**9])
@pytest.mark.parametrize(("kind", "name"), _numeric_hyperparameters())
def test_every_numeric_hyperparameter_refuses(kind: str, name: str, bad: Any) -> None:
    if isinstance(bad, int) and not isinstance(bad, bool) and isinstance(
            hyperparameter_defaults(kind)[name], float):
        pytest.skip("a float hyper-parameter (a tolerance) has no whole-number bound")
    with pytest.raises(ValidationError, match=name):
        ModelConfig.model_validate({"kind": kind, "stride": 20,
                                    "hyperparameters": {name: bad}})


def _number_flags() -> list[tuple[str, argparse.Action]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [(f"{command} {action.option_strings[0]}", action)
            for command, cmd in sub.choices.items() for action in cmd._actions
            if action.type is not None and action.type not in (str, Path)
            and action.option_strings and action.dest != "inet"]


def test_no_flag_takes_a_bare_float() -> None:
    """A float flag goes through the ranged parser (``float('inf')`` parses)."""
    assert _number_flags()
    assert not [flag for flag, action in _number_flags() if action.type is float]


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e300"])
@pytest.mark.parametrize(("flag", "action"), [f for f in _number_flags() if f[1].type is not int],
                         ids=lambda x: x if isinstance(x, str) else "")
def test_every_numeric_flag_refuses(flag: str, action: argparse.Action, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="at most"):
        action.type(text)


# ----------------------------------------------------------------------------- YAML files


def _problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    path = tmp_path / "input.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_input(path)
    return err.value.problems


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "dynamics:\n  timestep_fs: 0.5\n  steps: 10\n"
                                   "  timestep_fs: 2\n")
    assert [where for where, _ in problems] == ["dynamics.timestep_fs"]
    assert "lines 2 and 4" in problems[0][1] and "remove one" in problems[0][1]


def test_a_key_given_twice_in_a_list_item_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "data:\n  trajectories:\n    - path: a.traj\n"
                                   "    - {path: b.traj, path: c.traj}\n")
    assert [where for where, _ in problems] == ["data.trajectories[1].path"]


def test_keys_a_merge_brings_in_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "input.yaml"
    path.write_text("base: &b {timestep_fs: 0.5, steps: 10}\n"
                    "dynamics:\n  <<: *b\n  steps: 20\n")
    assert read_input(path)["dynamics"] == {"timestep_fs": 0.5, "steps": 20}


def test_an_unreadable_file_is_said_to_be_one(tmp_path: Path, monkeypatch) -> None:
    """As root no file is unreadable; os.access stands in for a user's view."""
    path = tmp_path / "model.npz"
    path.write_bytes(b"x")
    assert unusable_file(path) is None
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != path)
    assert "permission denied" in unusable_file(path)


def test_a_named_pipe_is_said_to_be_one(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.traj"
    os.mkfifo(pipe)
    assert "named pipe" in unusable_file(pipe)
    assert "character device" in unusable_file("/dev/null")
    assert unusable_file(tmp_path) is None and unusable_file(tmp_path / "nope") is None
