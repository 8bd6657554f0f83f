"""ASE calculator for periodic Kohn-Sham DFT at the Γ point with PySCF's PBC module.

The periodic counterpart of :class:`~hybridmd.pyscf_calculator.PySCFCalculator`, for a cell
periodic in all three directions: GTH pseudopotentials and a GTH basis, one k-point (Γ), the
density on a plane-wave grid of kinetic energy cutoff ``ke_cutoff``. PySCF has analytic
Γ-point RKS/UKS gradients only with its multigrid integration (``MultiGridNumInt2``; with the
default FFTDF it raises NotImplementedError), for LDA and GGA functionals (no exact exchange:
the gradient code has no K term), so that is what runs. One SCF gives the energy and analytic
forces; the last converged density matrix is the next initial guess; no files are written.

Positions are wrapped into the cell before PySCF sees them, so unwrapped positions (atoms
outside the cell, as a run keeps them) give the energy and forces of the wrapped ones.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from ase import Atoms

from hybridmd.periodic import Cell, perpendicular_widths
from hybridmd.pyscf_calculator import PySCFCalculator, check_spin

#: Γ-point sampling alone needs a cell a few Å across; narrower cells need k-points
MIN_WIDTH_A = 3.0


def is_gth(name: str) -> bool:
    """True for a GTH basis or pseudopotential name (gth-szv, gth-dzvp, gth-pade, gth-pbe, ...)."""
    return str(name).strip().lower().startswith("gth")


class PySCFPBCCalculator(PySCFCalculator):
    """Energy and forces from PySCF's periodic RKS/UKS at the Γ point (LDA and GGA functionals).

    Parameters: ``functional`` (a libxc LDA or GGA name), ``basis`` (a GTH basis), ``pseudo``
    (a GTH pseudopotential), ``ke_cutoff`` (Hartree), ``charge``, ``spin`` (2S), ``conv_tol``
    (Hartree), ``max_cycle``. The atoms need a cell periodic in all three directions.
    """

    default_parameters: ClassVar[dict[str, Any]] = {
        "functional": "PBE",
        "basis": "gth-dzvp",
        "pseudo": "gth-pade",
        "ke_cutoff": 200.0,
        "charge": 0,
        "spin": 0,
        "conv_tol": 1e-9,
        "max_cycle": 100,
    }

    def build_mol(self, atoms: Atoms) -> Any:
        """The pyscf.pbc Cell for ``atoms``, positions wrapped into the cell (ValueError on a
        bad basis, pseudopotential, cell, charge or spin)."""
        from pyscf.lib.exceptions import BasisNotFoundError
        from pyscf.pbc import gto

        p = self.parameters
        for key in ("basis", "pseudo"):
            if not is_gth(p[key]):
                what, names = (("basis", "gth-szv, gth-dzvp or gth-tzvp") if key == "basis"
                               else ("pseudopotential", "gth-pade or gth-pbe"))
                raise ValueError(
                    f"calculator.{key} {p[key]!r} is not a GTH {what}, and the system is "
                    f"{Cell.of(atoms).describe()}: periodic dft runs GTH pseudopotentials "
                    f"with a GTH basis; use e.g. {key}: {names}")
        if not all(atoms.pbc):
            raise ValueError(f"periodic dft needs a cell periodic in all three directions; the "
                             f"system is {Cell.of(atoms).describe()}")
        width = float(perpendicular_widths(atoms.cell.array).min())
        if width < MIN_WIDTH_A:
            raise ValueError(
                f"calculator: type dft with {Cell.of(atoms).describe()}, {width:.2f} Å "
                "across at its narrowest; periodic dft samples the Γ point only, which needs a "
                f"cell at least {MIN_WIDTH_A:g} Å across: use a larger supercell")
        check_spin(atoms.numbers, p["charge"], p["spin"], key="spin")
        wrapped = atoms.get_scaled_positions(wrap=True) @ atoms.cell.array
        cell = gto.Cell()
        cell.atom = [(int(z), tuple(r)) for z, r in zip(atoms.numbers, wrapped, strict=True)]
        cell.a = atoms.cell.array
        cell.unit = "Angstrom"
        cell.basis, cell.pseudo = p["basis"], p["pseudo"]
        cell.ke_cutoff = float(p["ke_cutoff"])
        cell.charge, cell.spin, cell.verbose = p["charge"], p["spin"], 0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Basis may be available in basis-set-exch")
            try:
                cell.build()
            except (BasisNotFoundError, KeyError, RuntimeError) as exc:
                reason = " ".join(str(exc).split())
                raise ValueError(
                    f"calculator.basis, calculator.pseudo: PySCF has no GTH basis "
                    f"{p['basis']!r} or pseudopotential {p['pseudo']!r} for "
                    f"{atoms.get_chemical_formula()} ({reason}); use e.g. basis: gth-dzvp, "
                    "pseudo: gth-pade") from None
        return cell

    def check(self, atoms: Atoms) -> None:
        """Fail early, before any SCF, on what periodic dft cannot run."""
        from pyscf.dft import libxc

        functional = self.parameters["functional"]
        try:
            kind, hybrid = libxc.xc_type(functional), libxc.is_hybrid_xc(functional)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown functional {functional!r} ({exc}); use a libxc LDA or "
                             "GGA name such as PBE, BLYP, LDA") from None
        if kind not in ("LDA", "GGA") or hybrid:
            what = ("Hartree-Fock" if kind == "HF" else "a hybrid functional" if hybrid
                    else f"a {kind.replace('MGGA', 'meta-GGA')} functional")
            raise ValueError(
                f"calculator.functional {functional!r} is {what}; periodic dft (PySCF's "
                "Γ-point gradients) runs LDA and GGA functionals only: use e.g. PBE or BLYP")
        self.build_mol(atoms)

    def _make_mf(self, mol: Any) -> Any:
        from pyscf.pbc import dft

        p = self.parameters
        mf = dft.UKS(mol) if p["spin"] else dft.RKS(mol)
        mf.xc = p["functional"]
        mf = mf.multigrid_numint()  # the integration that has analytic Γ-point gradients
        return self._settled(mf)

    def _gradient(self, mf: Any) -> np.ndarray:
        # A uniform grid does not move with the atoms: there is no grid response to add.
        return mf.nuc_grad_method().kernel()
