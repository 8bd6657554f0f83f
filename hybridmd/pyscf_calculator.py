"""ASE calculator for molecular Kohn-Sham DFT and Hartree-Fock with PySCF.

PySCF ships an ASE calculator only as ``pyscf.pbc.tools.pyscf_ase.PySCF``. It can run molecules,
but it wraps a method object built by the caller (its settings are not calculator parameters),
runs a second SCF when forces are asked for after the energy, and writes a checkpoint file every
step. This calculator builds the molecule from the parameters, returns energy and forces from one
SCF, reuses the last converged density matrix as the next initial guess and writes no files.
DFT forces include the grid response, so they are the gradient of the energy it reports.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes

from hybridmd.units import BOHR, HARTREE

log = logging.getLogger(__name__)


class SCFConvergenceError(CalculationFailed):
    """The SCF did not converge within ``max_cycle`` iterations."""


@dataclass(frozen=True)
class SCFInfo:
    """What one SCF did: iterations, wall time, whether it started from the previous density."""

    cycles: int
    seconds: float
    reused_density: bool
    energy_hartree: float


def _n_electrons(numbers: np.ndarray, charge: int) -> int:
    return int(np.sum(numbers)) - int(charge)


def check_spin(numbers: np.ndarray, charge: int, n_unpaired: int, key: str = "spin") -> None:
    """Raise ValueError when ``charge`` and ``n_unpaired`` electrons cannot describe the atoms.

    ``key`` is the setting the user wrote: ``spin`` (2S = n_unpaired) or ``multiplicity``
    (2S+1); messages quote it in those terms.
    """
    n = _n_electrons(numbers, charge)
    formula = Atoms(numbers=numbers).get_chemical_formula(mode="hill")
    if n <= 0:
        raise ValueError(f"{formula} with charge {charge} has {n} electrons; lower the charge")
    if n_unpaired > n or (n - n_unpaired) % 2:
        offset = 1 if key == "multiplicity" else 0
        allowed = ", ".join(str(k + offset) for k in range(n % 2, min(n, 4) + 1, 2))
        allowed += ", ..." if n > 4 else ""
        raise ValueError(
            f"{formula} with charge {charge} has {n} electrons, which allows {key} "
            f"{allowed}; got {key} {n_unpaired + offset}. Change the charge or the {key}"
        )


class PySCFCalculator(Calculator):
    """Energy and forces from PySCF RKS/UKS (or RHF/UHF with ``functional='HF'``).

    Parameters: ``functional`` (any libxc name, or HF), ``basis``, ``charge``, ``spin``
    (2S, unpaired electrons), ``grid_level`` (0-9), ``conv_tol`` (Hartree), ``max_cycle``.
    Threads: PySCF's OpenMP pool, sized by OMP_NUM_THREADS.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "forces"]
    default_parameters: ClassVar[dict[str, Any]] = {
        "functional": "PBE",
        "basis": "def2-SVP",
        "charge": 0,
        "spin": 0,
        "grid_level": 3,
        "conv_tol": 1e-9,
        "max_cycle": 100,
    }

    def __init__(self, **kwargs: Any):
        self._dm: np.ndarray | None = None
        self._dm_numbers: np.ndarray | None = None
        super().__init__(**kwargs)
        unknown = set(self.parameters) - set(self.default_parameters)
        if unknown:
            raise TypeError(
                f"PySCFCalculator got unknown parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.default_parameters)}"
            )
        self.last_scf: SCFInfo | None = None
        self.n_scf = 0  #: SCF runs so far
        self.n_scf_cycles = 0  #: SCF iterations so far, summed over runs
        self.scf_seconds = 0.0  #: wall time spent in SCF and gradients

    # ------------------------------------------------------------------ setup

    @property
    def is_hf(self) -> bool:
        """True for Hartree-Fock, False for Kohn-Sham DFT."""
        return str(self.parameters["functional"]).strip().upper() == "HF"

    @property
    def method_name(self) -> str:
        """RKS, UKS, RHF or UHF."""
        return ("U" if self.parameters["spin"] else "R") + ("HF" if self.is_hf else "KS")

    def set(self, **kwargs: Any) -> dict[str, Any]:
        """Change parameters; any change drops results and the stored density matrix."""
        changed = super().set(**kwargs)
        if changed:
            self._dm = self._dm_numbers = None
        return changed

    def build_mol(self, atoms: Atoms) -> Any:
        """The pyscf Mole for ``atoms`` (raises ValueError on a bad basis, charge or spin)."""
        from pyscf import gto
        from pyscf.lib.exceptions import BasisNotFoundError

        p = self.parameters
        check_spin(atoms.numbers, p["charge"], p["spin"], key="spin")
        atom = [(int(z), tuple(r)) for z, r in zip(atoms.numbers, atoms.positions, strict=True)]
        # An unknown basis also warns "install basis-set-exchange"; the error below says more.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Basis may be available in basis-set-exch")
            try:
                mol = gto.M(
                    atom=atom,
                    unit="Angstrom",
                    basis=p["basis"],
                    charge=p["charge"],
                    spin=p["spin"],
                    verbose=0,
                )
            except BasisNotFoundError as exc:
                reason = " ".join(str(exc).split())
                raise ValueError(
                    f"PySCF has no basis {p['basis']!r} for {atoms.get_chemical_formula()} "
                    f"({reason}); use a name PySCF knows, e.g. sto-3g, 6-31g*, def2-SVP, "
                    "def2-TZVP, cc-pVDZ"
                ) from None
        return mol

    def check(self, atoms: Atoms) -> None:
        """Fail early, before any SCF, on a functional, basis, charge or spin that cannot run."""
        if not self.is_hf:
            from pyscf.dft import libxc

            try:
                libxc.parse_xc(self.parameters["functional"])
            except (KeyError, ValueError) as exc:
                raise ValueError(
                    f"unknown functional {self.parameters['functional']!r} ({exc}); "
                    "use a libxc name such as PBE, B3LYP, PBE0, TPSS, or HF"
                ) from None
        self.build_mol(atoms)

    def _make_mf(self, mol: Any) -> Any:
        from pyscf import dft, scf

        p = self.parameters
        if self.is_hf:
            mf = scf.UHF(mol) if p["spin"] else scf.RHF(mol)
        else:
            mf = dft.UKS(mol) if p["spin"] else dft.RKS(mol)
            mf.xc = p["functional"]
            mf.grids.level = p["grid_level"]
        return self._settled(mf)

    def _settled(self, mf: Any) -> Any:
        """``mf`` with the SCF's convergence settings, no checkpoint file and no output."""
        mf.conv_tol = self.parameters["conv_tol"]
        mf.max_cycle = self.parameters["max_cycle"]
        mf.chkfile = None
        mf.verbose = 0
        return mf

    def _gradient(self, mf: Any) -> np.ndarray:
        """The analytic nuclear gradient of the converged ``mf``, Hartree/Bohr."""
        grad = mf.nuc_grad_method()
        if not self.is_hf:
            # Include the derivative of the moving integration grid: forces then match the
            # energy's finite differences (H2O PBE/STO-3G: 5e-4 -> 2e-6 eV/Å), at no extra cost.
            grad.grid_response = True
        return grad.kernel()

    # ------------------------------------------------------------------ calculation

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | tuple[str, ...] = ("energy", "forces"),
        system_changes: list[str] = all_changes,
    ) -> None:
        """Run one SCF and its analytic gradient; always stores both energy and forces."""
        super().calculate(atoms, properties, system_changes)
        from pyscf import lib

        atoms = self.atoms
        mol = self.build_mol(atoms)
        mf = self._make_mf(mol)
        reuse = self._dm is not None and np.array_equal(self._dm_numbers, atoms.numbers)
        t0 = time.perf_counter()
        energy = mf.kernel(dm0=self._dm if reuse else None)
        cycles = int(getattr(mf, "cycles", -1))
        if not mf.converged:
            raise SCFConvergenceError(
                f"PySCF {self.method_name}/{self.parameters['functional']}/"
                f"{self.parameters['basis']} SCF for {atoms.get_chemical_formula()} did not "
                f"converge in {self.parameters['max_cycle']} cycles (conv_tol "
                f"{self.parameters['conv_tol']:g} Hartree); raise max_cycle, check charge/spin, "
                "or check the geometry for atoms that came too close"
            )
        t_scf = time.perf_counter() - t0
        gradient = self._gradient(mf)  # Hartree/Bohr
        seconds = time.perf_counter() - t0
        self._dm = mf.make_rdm1()
        self._dm_numbers = atoms.numbers.copy()

        self.last_scf = SCFInfo(cycles, seconds, reuse, float(energy))
        self.n_scf += 1
        self.n_scf_cycles += max(cycles, 0)
        self.scf_seconds += seconds
        log.debug(
            "PySCF %s: %d SCF cycles (%s guess) %.3f s, gradient %.3f s, %d threads, E=%.10f Ha",
            self.method_name, cycles, "previous density" if reuse else "minao", t_scf,
            seconds - t_scf, lib.num_threads(), energy,
        )
        self.results["energy"] = float(energy) * HARTREE
        self.results["free_energy"] = self.results["energy"]
        self.results["forces"] = -np.asarray(gradient, dtype=float) * (HARTREE / BOHR)
