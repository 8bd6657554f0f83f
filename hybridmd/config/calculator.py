"""The ``calculator:`` section: the expensive calculator, picked by its ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from hybridmd.config.base import Strict, existing_file, resolve_path
from hybridmd.config.socket import SocketServerConfig
from hybridmd.data import model_names
from hybridmd.errors import unusable_file

#: the largest charge or number of unpaired electrons an input may give
MAX_CHARGE = 1000


class SGDMLConfig(Strict):
    """An sGDML force field (model .npz, kcal/mol and Å as in the sgdml package)."""

    type: Literal["sgdml"]
    model: str = Field(description="shipped model name (e.g. ethanol) or path to a model .npz")
    use_torch: bool = Field(
        False, description="the torch backend (for GPUs; the numpy backend is faster on CPU)")

    @field_validator("model")
    @classmethod
    def _model_exists(cls, model: str, info: ValidationInfo) -> str:
        if model in model_names():
            return model
        path = resolve_path(Path(model), info)
        problem = unusable_file(path)
        if problem:
            raise ValueError(problem)
        if not path.is_file():
            raise ValueError(
                f"no sGDML model file {path} and no shipped model named {model!r} "
                f"(shipped: {', '.join(model_names())})"
            )
        return str(path)


#: the basis when none is given: all-electron for a molecule, GTH for a periodic system
DEFAULT_BASIS = {"molecule": "def2-SVP", "periodic": "gth-dzvp"}


class DFTConfig(Strict):
    """Kohn-Sham DFT with PySCF (energies and analytic gradients): molecular DFT for a molecule,
    PySCF's periodic DFT at the Γ point (GTH pseudopotentials and basis) for a periodic cell."""

    type: Literal["dft"]
    functional: str = Field("PBE", description="exchange-correlation functional (PySCF's xc "
                            "name, e.g. PBE, B3LYP; LDA or GGA only for a periodic system)")
    basis: str | None = Field(None, description="basis set (PySCF's name, e.g. sto-3g, "
                              "def2-SVP; a GTH basis such as gth-szv, gth-dzvp for a periodic "
                              "system); default def2-SVP, for a periodic system gth-dzvp")
    pseudo: str = Field("gth-pade", description="GTH pseudopotential, periodic system only "
                        "(e.g. gth-pade, gth-pbe)")
    ke_cutoff: float = Field(200.0, gt=0, le=10_000, description="plane-wave kinetic energy "
                             "cutoff of the density's grid, Hartree, periodic system only")
    charge: int = Field(0, ge=-MAX_CHARGE, le=MAX_CHARGE,
                        description="total charge of the molecule, e")
    spin: int = Field(0, ge=0, le=MAX_CHARGE, description="number of unpaired electrons, 2S")
    grid_level: int = Field(3, ge=0, le=9, description="PySCF grid level 0-9, molecule only")
    conv_tol: float = Field(1e-9, gt=0, le=1, description="SCF energy convergence, Hartree")
    max_cycle: int = Field(100, gt=0, le=100_000, description="most SCF iterations before the "
                           "calculation fails")


class XTBConfig(Strict):
    """Extended tight binding with tblite."""

    type: Literal["xtb"]
    method: Literal["GFN2-xTB", "GFN1-xTB"] = Field("GFN2-xTB", description="the "
                                                   "tight-binding Hamiltonian")
    charge: int = Field(0, ge=-MAX_CHARGE, le=MAX_CHARGE,
                        description="total charge of the molecule, e")
    multiplicity: int = Field(1, ge=1, le=MAX_CHARGE + 1, description="spin multiplicity 2S+1")
    accuracy: float = Field(1.0, gt=0, le=1000, description="tblite's numerical accuracy "
                            "(smaller is tighter)")


class ASECalculatorConfig(Strict):
    """Any ASE calculator by import path, e.g. ``ase.calculators.lj:LennardJones``."""

    type: Literal["ase"]
    import_path: str = Field(description="module:Class or module.Class")
    kwargs: dict[str, Any] = Field(default_factory=dict,
                                   description="keyword arguments of the calculator's class")

    @field_validator("import_path")
    @classmethod
    def _looks_like_path(cls, path: str) -> str:
        if "." not in path and ":" not in path:
            raise ValueError(f"{path!r} is not an import path like 'package.module:ClassName'")
        return path


class SocketCalculatorConfig(SocketServerConfig):
    """Any program that speaks i-PI's socket protocol as a client: CP2K, Quantum ESPRESSO,
    FHI-aims, LAMMPS, VASP, `hybridmd serve`. hybridmd opens the socket and starts the program
    with ``command``, once for every connection the run needs (the driver, each monitor)."""

    type: Literal["socket"]
    command: str | None = Field(
        None, description="shell command that starts the client, run in a fresh folder with "
        "`files`; {address} becomes the unix socket name, {port} the inet port (also in "
        "$HYBRIDMD_SOCKET, $HYBRIDMD_PORT); without it, start one client yourself on "
        "`address` or `port` (a run with monitors needs the command)")
    files: list[Path] = Field(default_factory=list, description="files the client reads "
                              "(its input, basis sets), copied into its folder")
    box_A: float = Field(10.0, gt=0, le=1000, description="edge of the cubic cell sent with "
                         "a molecule in vacuum, the molecule at its centre (a periodic system "
                         "sends its own), Å; a code such as CP2K builds its grid in it")

    @field_validator("files")
    @classmethod
    def _files_exist(cls, files: list[Path], info: ValidationInfo) -> list[Path]:
        return [existing_file(Path(path), info) for path in files]

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> SocketCalculatorConfig:
        if self.command is not None and self.socket == "unix" and self.address:
            raise ValueError(
                "`address:` is for a client you start yourself; a client hybridmd starts gets a "
                "socket name of its own, which its command reads as {address}")
        if self.command is None and (self.address if self.socket == "unix"
                                     else self.port) is None:
            raise ValueError(
                "give `command:` (hybridmd starts the client) or, for a client you start "
                "yourself, " + ("`address:` (the unix socket name it connects to)"
                                if self.socket == "unix" else "`port:`"))
        return self


CalculatorConfig = Annotated[
    SGDMLConfig | DFTConfig | XTBConfig | ASECalculatorConfig | SocketCalculatorConfig,
    Field(discriminator="type")
]
