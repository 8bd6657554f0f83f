"""YAML input -> typed, validated configuration.

Every problem in an input is reported before any expensive work starts, each with the key path
that holds it and a hint that says how to fix it. File paths in an input are resolved relative to
the directory of the YAML file.

The sections are checked for their shapes only (and that the files they name exist); nothing
here imports the hybrid loop. One module per input section:

- ``base``: the strict base model, ``ConfigError``, path checks, ``parse_config`` and
  ``load_config``
- ``system``, ``calculator``, ``dynamics`` (with the engines), ``output`` (with safety)
- ``simulate``: the input of `hybridmd simulate`
- ``hybrid``: the input of `hybridmd run`, and ``learning_problem``
- ``serve``: the input of `hybridmd serve`
- ``train``: the input of `hybridmd train`
"""

from hybridmd.config.base import ConfigError, Strict, load_config, parse_config, read_input
from hybridmd.config.calculator import (
    ASECalculatorConfig,
    CalculatorConfig,
    DFTConfig,
    SGDMLConfig,
    SocketCalculatorConfig,
    XTBConfig,
)
from hybridmd.config.dynamics import (
    ASEEngineConfig,
    DynamicsConfig,
    EngineConfig,
    InitialMomenta,
    IPIEngineConfig,
    IPIRunEngineConfig,
    MomentaFile,
    RunEngineConfig,
)
from hybridmd.config.hybrid import (
    CheckConfig,
    FineTuneConfig,
    HybridConfig,
    LearnConfig,
    MonitorConfig,
    RunConfig,
    RunOutputConfig,
    SwitchConfig,
    learning_problem,
)
from hybridmd.config.output import OutputConfig, SafetyConfig
from hybridmd.config.serve import ServeConfig, load_serve_config, serve_model
from hybridmd.config.simulate import SimulationConfig, StreamConfig
from hybridmd.config.system import SystemConfig
from hybridmd.config.train import (
    FORECASTER_HYPERPARAMETERS,
    ModelConfig,
    OptimisationConfig,
    PlateauConfig,
    TrainConfig,
    TrainDataConfig,
    TrainOutputConfig,
    TrajectorySource,
)

__all__ = [
    "FORECASTER_HYPERPARAMETERS",
    "ASECalculatorConfig",
    "ASEEngineConfig",
    "CalculatorConfig",
    "ConfigError",
    "DFTConfig",
    "CheckConfig",
    "DynamicsConfig",
    "EngineConfig",
    "FineTuneConfig",
    "HybridConfig",
    "IPIEngineConfig",
    "IPIRunEngineConfig",
    "RunEngineConfig",
    "InitialMomenta",
    "LearnConfig",
    "ModelConfig",
    "MomentaFile",
    "MonitorConfig",
    "OptimisationConfig",
    "OutputConfig",
    "PlateauConfig",
    "RunConfig",
    "RunOutputConfig",
    "SGDMLConfig",
    "SocketCalculatorConfig",
    "SafetyConfig",
    "ServeConfig",
    "SimulationConfig",
    "Strict",
    "StreamConfig",
    "SwitchConfig",
    "SystemConfig",
    "TrainConfig",
    "TrainDataConfig",
    "TrainOutputConfig",
    "TrajectorySource",
    "XTBConfig",
    "learning_problem",
    "load_config",
    "load_serve_config",
    "parse_config",
    "read_input",
    "serve_model",
]
