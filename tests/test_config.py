"""Every input error is reported with its key path and a hint, before any work starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hybridmd.config import (
    ConfigError,
    HybridConfig,
    RunConfig,
    SimulationConfig,
    TrainConfig,
    learning_problem,
    load_config,
    parse_config,
)
from hybridmd.data import forecaster_path

from conftest import ETHANOL_SGDML, REPO


def _problems(data: dict, tmp_path: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        parse_config(data, SimulationConfig, "bad.yaml", base_dir=tmp_path)
    return err.value.problems


def _with(section: str, **values) -> dict:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    data[section].update(values)
    return data


_INPUTS = sorted((REPO / "inputs").glob("*.yaml"))


@pytest.mark.parametrize("path", [p for p in _INPUTS if not p.name.startswith("train-")],
                         ids=lambda p: p.name)
def test_shipped_simulation_inputs_validate(path: Path) -> None:
    """`hybridmd run` inputs (with a `hybrid:` section) and `hybridmd simulate` inputs."""
    model = RunConfig if "hybrid:" in path.read_text() else SimulationConfig
    cfg = load_config(path, model)
    assert cfg.dynamics.n_steps > 0
    assert cfg.output.directory == Path("runs") / path.stem


@pytest.mark.parametrize("path", [p for p in _INPUTS if p.name.startswith("train-")],
                         ids=lambda p: p.name)
def test_shipped_training_inputs_validate(path: Path) -> None:
    """Valid but for the training data, which workflows/generate_training_data.sh makes."""
    try:
        cfg = load_config(path, TrainConfig)
    except ConfigError as err:
        for where, what in err.problems:
            if where == "data.trajectories":  # a pattern, as for the NVE segments
                assert "no file matches" in what
            else:
                assert where.startswith("data.trajectories.") and where.endswith(".path")
                assert "not found" in what
    else:
        assert cfg.output.checkpoint == Path("runs") / path.stem / "model.pt"


def test_training_data_patterns_expand_to_every_match_in_order(tmp_path: Path) -> None:
    for k in (1, 0, 2):
        (tmp_path / f"seg-{k:03d}").mkdir()
        (tmp_path / f"seg-{k:03d}" / "trajectory.traj").touch()
    data = {"data": {"trajectories": [{"path": "seg-*/trajectory.traj", "dt_fs": 0.5},
                                      {"path": "seg-001/trajectory.traj"}]},
            "model": {"stride": 10}}
    cfg = parse_config(data, TrainConfig, "train.yaml", base_dir=tmp_path)
    paths = [src.path for src in cfg.data.trajectories]
    assert paths == [tmp_path / f"seg-{k:03d}" / "trajectory.traj" for k in (0, 1, 2, 1)]
    assert [src.dt_fs for src in cfg.data.trajectories] == [0.5, 0.5, 0.5, None]
    data["data"]["trajectories"] = [{"path": "nothing-*/trajectory.traj"}]
    with pytest.raises(ConfigError) as err:
        parse_config(data, TrainConfig, "train.yaml", base_dir=tmp_path)
    [(where, what)] = err.value.problems
    assert where == "data.trajectories" and "no file matches" in what and "nothing-*" in what


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    data = _with("dynamics", temprature_K=300)
    [(where, what)] = _problems(data, tmp_path)
    assert where == "dynamics.temprature_K"
    assert "unknown key" in what and "'temperature_K'" in what


def test_unknown_key_in_calculator_lists_allowed(tmp_path: Path) -> None:
    data = _with("calculator", zzz=1)
    [(where, what)] = _problems(data, tmp_path)
    assert where == "calculator.zzz"
    assert "use_torch" in what and "model" in what


def test_unknown_section(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML)) | {"outptu": {}}
    [(where, what)] = _problems(data, tmp_path)
    assert where == "outptu" and "'output'" in what


def test_wrong_type(tmp_path: Path) -> None:
    [(where, what)] = _problems(_with("dynamics", steps="many"), tmp_path)
    assert where == "dynamics.steps" and "whole number" in what and "'many'" in what


def test_negative_time_step(tmp_path: Path) -> None:
    [(where, what)] = _problems(_with("dynamics", timestep_fs=-0.5), tmp_path)
    assert where == "dynamics.timestep_fs" and "greater than 0" in what and "-0.5" in what


def test_missing_required_key(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    del data["dynamics"]["timestep_fs"]
    [(where, what)] = _problems(data, tmp_path)
    assert where == "dynamics.timestep_fs" and "required" in what


def test_missing_structure_file(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    data["system"] = {"file": "nowhere.xyz"}
    [(where, what)] = _problems(data, tmp_path)
    assert where == "system.file" and "not found" in what and "nowhere.xyz" in what


def test_missing_model_file(tmp_path: Path) -> None:
    [(where, what)] = _problems(_with("calculator", model="models/missing.npz"), tmp_path)
    assert where == "calculator.model" and "missing.npz" in what and "ethanol" in what


def test_unknown_calculator_type(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    data["calculator"] = {"type": "gaussian"}
    [(where, what)] = _problems(data, tmp_path)
    assert where == "calculator" and "'gaussian'" in what and "'sgdml'" in what


def test_unknown_integrator(tmp_path: Path) -> None:
    [(where, what)] = _problems(_with("dynamics", integrator="berendsen"), tmp_path)
    assert where == "dynamics.integrator" and "'bussi'" in what


def test_steps_and_duration_exclusive(tmp_path: Path) -> None:
    [(where, what)] = _problems(_with("dynamics", duration_fs=100), tmp_path)
    assert where == "dynamics" and "exactly one" in what


def test_safety_limit_below_target(tmp_path: Path) -> None:
    data = _with("dynamics", temperature_K=4000)
    [(where, what)] = _problems(data, tmp_path)
    assert "max_temperature_K" in what


def test_all_problems_reported_together(tmp_path: Path) -> None:
    data = _with("dynamics", timestep_fs=0, seed=-1)
    data["output"]["stride"] = 0
    wheres = {w for w, _ in _problems(data, tmp_path)}
    assert wheres == {"dynamics.timestep_fs", "dynamics.seed", "output.stride"}


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("system:\n  molecule: ethanol\ndynamics:\n  timestep_fs: [0.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, SimulationConfig)
    [(where, what)] = err.value.problems
    assert where.startswith("line ") and "malformed YAML" in what


def test_missing_input_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="input file not found"):
        load_config(tmp_path / "absent.yaml", SimulationConfig)


def test_paths_relative_to_the_input_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mol.xyz").write_text("2\n\nH 0 0 0\nH 0 0 0.74\n")
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    data["system"] = {"file": "mol.xyz"}
    path = tmp_path / "sub" / "in.yaml"
    path.write_text(yaml.safe_dump(data))
    cfg = load_config(path, SimulationConfig)
    assert cfg.system.file == tmp_path / "sub" / "mol.xyz"


def test_default_output_folder_is_named_after_the_input(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML))
    del data["output"]
    path = tmp_path / "my-run.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_config(path, SimulationConfig).output.directory == Path("runs/my-run")


@pytest.mark.parametrize("word", ["none", "None", None])
def test_forecaster_none_is_the_reference_run(tmp_path: Path, word) -> None:
    """`forecaster: none` (YAML reads it as a word) and `forecaster: null` both simulate
    every segment."""
    data = {**yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML)),
            "hybrid": {"stride": 20, "interpolator": "quintic", "forecaster": word}}
    data["dynamics"]["steps"] = 40
    data["output"] = {"checkpoint_interval_s": 0}  # `stride` is simulate's, not run's
    assert parse_config(data, RunConfig, "full.yaml", base_dir=tmp_path).hybrid.forecaster is None


def _run_input(**hybrid) -> dict:
    """A `hybridmd run` input of two segments with ``hybrid`` keys added."""
    data = {**yaml.safe_load(yaml.safe_dump(ETHANOL_SGDML)),
            "hybrid": {"stride": 20, "interpolator": "quintic", **hybrid}}
    data["dynamics"]["steps"] = 40
    data["output"] = {"checkpoint_interval_s": 0}
    return data


_LEARNING_MESSAGES = {
    "interpolator": "interpolator: learn fills ML segments with the frames of the learned force "
                    "field; it needs forecaster: learn (or an earlier run's forecaster.pt)",
    "fine_tune": "fine_tune: tunes a forecaster network; a learned force field is refitted as "
                 "the run goes on (see hybrid.learn); remove fine_tune",
    "learn": "hybrid.learn: configures the learner of forecaster: learn; set forecaster: learn "
             "or remove the learn: section",
}


@pytest.mark.parametrize(("keys", "learns", "rule"), [
    ({"interpolator": "learn"}, False, "interpolator"),
    ({"fine_tune": {"every_segments": 5}}, True, "fine_tune"),
    ({"learn": {"first_fit_frames": 50}}, False, "learn"),
])
def test_learning_problem_names_each_rule(keys: dict, learns: bool, rule: str) -> None:
    """The three learning rules, for a forecaster file whose kind only the run can tell."""
    network = str(forecaster_path("ethanol-forecaster-10fs"))
    hybrid = HybridConfig(**{"stride": 20, "interpolator": "quintic", "forecaster": network,
                             **keys})
    assert learning_problem(hybrid, learns) == _LEARNING_MESSAGES[rule]
    assert learning_problem(hybrid, not learns) is None


@pytest.mark.parametrize(("hybrid", "rule"), [
    ({"interpolator": "learn", "forecaster": "ethanol-forecaster-10fs"}, "interpolator"),
    ({"interpolator": "learn"}, "interpolator"),  # no forecaster: every segment simulated
    ({"forecaster": "learn", "fine_tune": {"every_segments": 5}}, "fine_tune"),
    ({"forecaster": "ethanol-forecaster-10fs", "learn": {"refit_frames": 50}}, "learn"),
])
def test_learning_rules_checked_when_the_input_tells(tmp_path: Path, hybrid: dict,
                                                     rule: str) -> None:
    """`forecaster: learn`, none or a shipped name: the input alone tells whether the run
    learns, so the rules are checked with the rest of the input."""
    with pytest.raises(ConfigError) as err:
        parse_config(_run_input(**hybrid), RunConfig, "run.yaml", base_dir=tmp_path)
    assert err.value.problems == [("hybrid", _LEARNING_MESSAGES[rule])]


def test_forecaster_file_with_interpolator_learn_validates(tmp_path: Path) -> None:
    """A forecaster file may be an earlier learning run's forecaster.pt: the input is checked
    for its shape only (the run, which reads the file, applies the learning rules)."""
    network = str(forecaster_path("ethanol-forecaster-10fs"))
    data = _run_input(interpolator="learn", forecaster=network)
    cfg = parse_config(data, RunConfig, "run.yaml", base_dir=tmp_path)
    assert cfg.hybrid.forecaster == network and cfg.hybrid.interpolator == "learn"


def test_run_refuses_nose_hoover(tmp_path: Path) -> None:
    """`hybridmd run` thermostats at segment boundaries; `simulate` takes nose-hoover."""
    data = _run_input()
    data["dynamics"]["integrator"] = "nose-hoover"
    with pytest.raises(ConfigError) as err:
        parse_config(data, RunConfig, "run.yaml", base_dir=tmp_path)
    [(where, what)] = err.value.problems
    assert what.startswith("dynamics.integrator: ") and "bussi, langevin or nve" in what
    assert "\n" not in what
    data = _with("dynamics", integrator="nose-hoover")
    assert parse_config(data, SimulationConfig, "sim.yaml", base_dir=tmp_path)


def _forecaster_training(tmp_path: Path, **sections) -> dict:
    """A `hybridmd train` input of a forecaster with ``sections`` merged in."""
    (tmp_path / "fine.traj").touch()
    data = {"data": {"trajectories": [{"path": "fine.traj"}]},
            "model": {"kind": "forecaster", "stride": 20}}
    for section, keys in sections.items():
        data.setdefault(section, {}).update(keys)
    return data


@pytest.mark.parametrize(("section", "keys"), [
    ("model", {"context": 2}),
    ("training", {"schedule": "cosine"}),
    ("training", {"schedule": "step", "milestones": [3]}),
    ("training", {"warmup_epochs": 1}),
    ("training", {"weight_average": 0.99}),
    ("training", {"time_reversal": "both"}),
    ("training", {"device": "cpu"}),
    ("training", {"gradient_clip": 1.0}),
    ("training", {"early_stopping_patience": 5}),
    ("training", {"max_epochs": 10}),
    ("training", {"plateau": {"factor": 0.5}}),
])
def test_forecaster_training_refuses_the_interpolators_keys(tmp_path: Path, section: str,
                                                           keys: dict) -> None:
    """Keys the forecaster's own training loop would ignore: refused when set, even to their
    defaults, in one line naming each and what that training takes."""
    data = _forecaster_training(tmp_path, **{section: keys})
    with pytest.raises(ConfigError) as err:
        parse_config(data, TrainConfig, "train.yaml", base_dir=tmp_path)
    [(_, what)] = err.value.problems
    named = ", ".join(f"{section}.{key}" for key in keys)
    assert what.startswith(f"{named}: the forecaster's training does not use")
    assert "batch_size, learning_rate, batches_per_epoch, max_minutes, seed, threads" in what
    assert "\n" not in what
    data["model"]["kind"] = "bilstm-residual"  # the interpolator's training uses them all
    assert parse_config(data, TrainConfig, "train.yaml", base_dir=tmp_path)


@pytest.mark.parametrize("name", ["train-ethanol-forecaster-10fs.yaml",
                                  "train-water-forecaster-10fs.yaml"])
def test_forecaster_recipes_set_only_what_the_forecaster_uses(tmp_path: Path, name: str) -> None:
    data = yaml.safe_load((REPO / "inputs" / name).read_text())
    data["data"]["trajectories"] = _forecaster_training(tmp_path)["data"]["trajectories"]
    assert parse_config(data, TrainConfig, name, base_dir=tmp_path).model.kind == "forecaster"
