"""Calculators built from configs, checked with the real sGDML, PySCF, tblite and ASE codes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.calculators.lj import LennardJones

from hybridmd.calculators import (
    CalculatorMismatchError,
    build_calculator,
    check_sgdml_species,
    describe_calculator,
)
from hybridmd.config import ASECalculatorConfig, DFTConfig, SGDMLConfig, XTBConfig
from hybridmd.data import geometry_path, model_path
from hybridmd.pyscf_calculator import PySCFCalculator, SCFConvergenceError
from hybridmd.units import HARTREE

DATASET = str(Path(__file__).parent / "data" / "ABC-4MeOH-300K-1-gdml.npz")


def _ethanol() -> Atoms:
    return ase.io.read(geometry_path("ethanol"))


def _fd_force(atoms: Atoms, calc, i: int, k: int, h: float) -> float:
    """-dE/dx of coordinate (i, k) by central differences (h in Å)."""
    energies = []
    for step in (h, -h):
        moved = atoms.copy()
        moved.positions[i, k] += step
        moved.calc = calc
        energies.append(moved.get_potential_energy())
    return -(energies[0] - energies[1]) / (2 * h)


@pytest.fixture(scope="module")
def sgdml_torch():
    return build_calculator(SGDMLConfig(type="sgdml", model="ethanol", use_torch=True), _ethanol())


@pytest.fixture(scope="module")
def sgdml_numpy():
    cfg = SGDMLConfig(type="sgdml", model="ethanol", use_torch=False)
    return build_calculator(cfg, _ethanol())


# ----------------------------------------------------------------------------- sGDML


def test_sgdml_energy_and_forces(sgdml_torch):
    atoms = _ethanol()
    atoms.calc = sgdml_torch
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    assert type(energy) is float  # sgdml itself returns a 1-element array
    assert np.isfinite(energy)
    assert forces.shape == (9, 3) and forces.dtype == np.float64
    assert np.all(np.isfinite(forces))
    assert np.abs(forces.sum(axis=0)).max() < 1e-6  # no net force (measured 2e-15 eV/Å)


def test_sgdml_backends_agree(sgdml_torch, sgdml_numpy):
    atoms = _ethanol()
    atoms.positions[0] += [0.02, -0.01, 0.03]  # off the shipped frame
    results = []
    for calc in (sgdml_torch, sgdml_numpy):
        atoms.calc = calc
        results.append((atoms.get_potential_energy(), atoms.get_forces()))
    (e_torch, f_torch), (e_numpy, f_numpy) = results
    # measured: |dE| 2.4e-7 eV, max |dF| 3.0e-6 eV/Å (sgdml hands torch float32 positions)
    assert abs(e_torch - e_numpy) < 1e-4
    np.testing.assert_allclose(f_torch, f_numpy, atol=1e-4)


def test_sgdml_forces_are_minus_energy_gradient(sgdml_numpy):
    atoms = _ethanol()
    atoms.calc = sgdml_numpy
    forces = atoms.get_forces()
    for i, k in [(0, 0), (2, 1), (8, 2)]:
        # h = 1e-3 Å: measured |error| <= 7e-5 eV/Å over all 27 coordinates, either backend
        assert _fd_force(atoms, sgdml_numpy, i, k, 1e-3) == pytest.approx(forces[i, k], abs=3e-4)


def test_sgdml_wrong_atom_count():
    benzene = ase.io.read(geometry_path("benzene"))
    with pytest.raises(CalculatorMismatchError) as err:
        build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), benzene)
    msg = str(err.value)
    assert "9 atoms (C2H6O)" in msg and "12 (C6H6)" in msg


def test_sgdml_wrong_composition_same_count():
    # malonaldehyde C3H4O2 has 9 atoms, like ethanol
    malonaldehyde = ase.io.read(geometry_path("malonaldehyde"))
    with pytest.raises(CalculatorMismatchError, match="model C2H6O, structure C3H4O2"):
        build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), malonaldehyde)

    replaced = _ethanol()
    replaced.numbers[8] = 9  # hydroxyl H -> F
    with pytest.raises(CalculatorMismatchError) as err:
        build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), replaced)
    msg = str(err.value)
    assert "model C2H6O, structure C2H5FO" in msg
    assert "1 H fewer" in msg and "1 F more" in msg


def test_sgdml_swapped_atom_order():
    atoms = _ethanol()[[0, 2, 1, 3, 4, 5, 6, 7, 8]]  # swap C1 and O
    with pytest.raises(CalculatorMismatchError) as err:
        build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), atoms)
    msg = str(err.value)
    assert "different atom order" in msg
    assert "atom 1 is C in the model, O in the structure" in msg
    assert "atom 2 is O in the model, C in the structure" in msg
    assert "permutation" in msg and "atoms[[0, 2, 1, 3, 4, 5, 6, 7, 8]]" in msg
    check_sgdml_species(np.load(model_path("ethanol"))["z"], _ethanol().numbers, "ethanol")


def test_sgdml_rejects_files_that_are_no_model(tmp_path):
    with pytest.raises(ValueError, match="data set"):
        build_calculator(SGDMLConfig(type="sgdml", model=DATASET), _ethanol())
    text = tmp_path / "model.npz"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="not an .npz archive"):
        build_calculator(SGDMLConfig(type="sgdml", model=str(text)), _ethanol())
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="not an sGDML model"):
        build_calculator(SGDMLConfig(type="sgdml", model=str(other)), _ethanol())


# ----------------------------------------------------------------------------- PySCF


def _h2(d: float) -> Atoms:
    return Atoms("H2", positions=[[0, 0, 0], [0, 0, d]])


@pytest.mark.parametrize("functional", ["PBE", "HF"])
def test_pyscf_energy_matches_pyscf(functional):
    from pyscf import dft, gto, scf

    atoms = molecule("H2O")
    cfg = DFTConfig(type="dft", functional=functional, basis="sto-3g")
    calc = build_calculator(cfg, atoms)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    assert type(energy) is float

    mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions,
                                            strict=True)], basis="sto-3g", verbose=0)
    if functional == "HF":
        mf = scf.RHF(mol)
    else:
        mf = dft.RKS(mol)
        mf.xc = "PBE"
        mf.grids.level = 3
    assert energy == pytest.approx(mf.kernel() * HARTREE, abs=1e-6)


def test_pyscf_unrestricted_h2_cation():
    from pyscf import dft, gto

    atoms = _h2(1.0)
    calc = build_calculator(
        DFTConfig(type="dft", basis="sto-3g", charge=1, spin=1), atoms
    )
    assert calc.method_name == "UKS"
    atoms.calc = calc
    mf = dft.UKS(gto.M(atom="H 0 0 0; H 0 0 1.0", basis="sto-3g", charge=1, spin=1, verbose=0))
    mf.xc = "PBE"
    assert atoms.get_potential_energy() == pytest.approx(mf.kernel() * HARTREE, abs=1e-6)


@pytest.mark.parametrize("functional", ["PBE", "HF"])
def test_pyscf_forces_are_minus_energy_gradient(functional):
    atoms = molecule("H2O")
    calc = PySCFCalculator(functional=functional, basis="sto-3g", conv_tol=1e-11)
    atoms.calc = calc
    forces = atoms.get_forces()
    for i, k in [(0, 2), (1, 1)]:
        # h = 1e-3 Å: measured |error| <= 2.6e-5 eV/Å (PBE with grid response; 5e-4 without)
        assert _fd_force(atoms, calc, i, k, 1e-3) == pytest.approx(forces[i, k], abs=2e-4)


def test_pyscf_h2_bond_force_sign():
    calc = PySCFCalculator(functional="PBE", basis="sto-3g")
    for d, sign in [(1.0, 1), (0.5, -1)]:  # stretched: atoms pulled together; compressed: apart
        atoms = _h2(d)
        atoms.calc = calc
        f = atoms.get_forces()
        assert np.sign(f[0, 2]) == sign and np.sign(f[1, 2]) == -sign
        np.testing.assert_allclose(f[:, :2], 0, atol=1e-8)
        assert f[0, 2] == pytest.approx(-f[1, 2], abs=1e-8)


def test_pyscf_reuses_density_matrix():
    atoms = molecule("H2O")
    calc = PySCFCalculator(functional="HF", basis="6-31g")
    atoms.calc = calc
    atoms.get_forces()
    first = calc.last_scf
    assert not first.reused_density
    atoms.positions[0, 2] += 1e-3
    atoms.get_potential_energy()
    second = calc.last_scf
    assert second.reused_density and second.cycles < first.cycles  # measured 8 -> 4
    assert calc.n_scf == 2  # energy and forces came from one SCF each time

    other = molecule("NH3")  # different atoms: start from scratch
    other.calc = calc
    other.get_potential_energy()
    assert not calc.last_scf.reused_density


def test_pyscf_errors():
    with pytest.raises(SCFConvergenceError, match="did not converge in 1 cycles"):
        atoms = molecule("H2O")
        atoms.calc = PySCFCalculator(functional="PBE", basis="6-31g", max_cycle=1)
        atoms.get_potential_energy()
    with pytest.raises(ValueError, match="allows spin 0, 2, 4, ...; got spin 1"):
        build_calculator(DFTConfig(type="dft", spin=1), molecule("H2O"))
    with pytest.raises(ValueError, match="unknown functional 'PBEE'"):
        build_calculator(DFTConfig(type="dft", functional="PBEE"), molecule("H2O"))
    with pytest.raises(ValueError, match="no basis 'def2-nope'"):
        build_calculator(DFTConfig(type="dft", basis="def2-nope"), molecule("H2O"))
    with pytest.raises(TypeError, match="unknown parameter"):
        PySCFCalculator(xc="PBE")


# ----------------------------------------------------------------------------- tblite


def test_xtb_gfn2_ethanol():
    atoms = _ethanol()
    calc = build_calculator(XTBConfig(type="xtb"), atoms)
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    assert isinstance(energy, float) and np.isfinite(energy)
    assert forces.shape == (9, 3) and np.all(np.isfinite(forces))
    # h = 1e-3 Å: measured |error| 5e-6 eV/Å here, <= 8e-5 over all 27 coordinates
    assert _fd_force(atoms, calc, 2, 0, 1e-3) == pytest.approx(forces[2, 0], abs=2e-4)
    with pytest.raises(ValueError, match="allows multiplicity 1, 3, 5, ...; got multiplicity 2"):
        build_calculator(XTBConfig(type="xtb", multiplicity=2), atoms)


# ----------------------------------------------------------------------------- any ASE class


def _ase(path: str, **kwargs) -> ASECalculatorConfig:
    return ASECalculatorConfig(type="ase", import_path=path, kwargs=kwargs)


@pytest.mark.parametrize("path", ["ase.calculators.lj:LennardJones",
                                  "ase.calculators.lj.LennardJones"])
def test_ase_import_path(path):
    atoms = _ethanol()
    atoms.calc = build_calculator(_ase(path, sigma=1.5, epsilon=0.01), atoms)
    reference = _ethanol()
    reference.calc = LennardJones(sigma=1.5, epsilon=0.01)
    assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy())


@pytest.mark.parametrize(
    ("path", "kwargs", "expected"),
    [
        ("ase.calculators.nolj:LennardJones", {}, "no module named 'ase.calculators.nolj'"),
        ("asee.calculators.lj:LennardJones", {}, "no module named 'asee'"),
        ("ase.calculators.lj:LenardJones", {}, "did you mean ase.calculators.lj:LennardJones?"),
        ("ase.atoms:Atoms", {}, "names the class Atoms, which is no ASE calculator"),
        ("ase.units:Bohr", {}, "names an instance of float"),
        ("ase.calculators.lj", {}, "names a module"),
        ("ase.calculators.lj:LennardJones", {"sigm": 1.0}, "did you mean 'sigma'?"),
        ("ase.calculators.tip3p:TIP3P", {"cutoff": 1.0}, "unexpected keyword argument 'cutoff'"),
    ],
)
def test_ase_import_path_errors(path, kwargs, expected):
    with pytest.raises(ValueError) as err:
        build_calculator(_ase(path, **kwargs), _ethanol())
    assert expected in str(err.value)
    assert path in str(err.value)


def test_ase_unknown_keyword_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="hybridmd.calculators"):
        calc = build_calculator(_ase("ase.calculators.lj:LennardJones", foo=1), _ethanol())
    assert isinstance(calc, LennardJones)
    assert "'foo' is not a declared parameter of LennardJones" in caplog.text


# ----------------------------------------------------------------------------- metadata


def test_describe_calculator_is_json():
    configs = [
        SGDMLConfig(type="sgdml", model="ethanol"),
        DFTConfig(type="dft"),
        XTBConfig(type="xtb"),
        _ase("ase.calculators.lj:LennardJones", sigma=1.5),
    ]
    for cfg in configs:
        desc = json.loads(json.dumps(describe_calculator(cfg)))
        assert desc["type"] == cfg.type and desc["version"]
    sgdml = describe_calculator(configs[0])
    assert sgdml["backend"] == "numpy" and sgdml["species"] == "C2H6O"
    assert sgdml["model_path"].endswith("ethanol.npz")
    assert describe_calculator(configs[1])["method"] == "RKS"
    assert describe_calculator(configs[3])["package"] == "ase"


def test_xtb_forces_depend_on_the_positions_alone():
    """The same positions give the same forces, bit for bit, whatever was computed before (a
    resumed run and the monitors rely on it)."""
    from ase.build import molecule

    from hybridmd.calculators import build_calculator
    from hybridmd.config import XTBConfig

    atoms = molecule("H2O")
    calc = build_calculator(XTBConfig(type="xtb", method="GFN1-xTB"), atoms)
    start = atoms.positions.copy()

    def forces(positions):
        probe = atoms.copy()
        probe.positions = positions
        probe.calc = calc
        return probe.get_forces()

    first = forces(start)
    forces(start + 0.05)
    assert np.array_equal(forces(start), first)
