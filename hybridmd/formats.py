"""The trajectory formats by name: what an input may name, and what the readers' registry
(``hybridmd.readers.registry``) implements, written once."""

from __future__ import annotations

from typing import Literal, get_args

TrajectoryFormat = Literal["traj", "extxyz", "xyz", "ipi", "npz"]
#: every format a trajectory can be read from
KNOWN_FORMATS: tuple[str, ...] = get_args(TrajectoryFormat)
