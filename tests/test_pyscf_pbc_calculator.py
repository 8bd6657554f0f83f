"""Periodic DFT at the Γ point with the real PySCF: one water in a 5 Å cube, GTH-SZV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import molecule
from ase.io import read

from hybridmd.calculators import CalculatorInputError, build_calculator, describe_calculator
from hybridmd.cli import main
from hybridmd.config import DFTConfig
from hybridmd.pyscf_calculator import PySCFCalculator, SCFConvergenceError
from hybridmd.pyscf_pbc_calculator import PySCFPBCCalculator

BOX_A = 5.0


def _water_box() -> Atoms:
    water = molecule("H2O")
    water.cell, water.pbc = [BOX_A] * 3, True
    water.center()
    return water


@pytest.fixture(scope="module")
def box_calc() -> PySCFPBCCalculator:
    calc = build_calculator(DFTConfig(type="dft", basis="gth-szv"), _water_box())
    assert isinstance(calc, PySCFPBCCalculator)
    return calc


def _energy_forces(atoms: Atoms, calc) -> tuple[float, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces()


def test_forces_are_minus_the_energy_gradient(box_calc):
    atoms = _water_box()
    energy, forces = _energy_forces(atoms, box_calc)
    assert box_calc.n_scf == 1  # energy and forces from one SCF
    # The grid is fixed in space, so a rigid shift changes the energy a little: the net force
    # is not zero (measured 0.093 eV/Å at ke_cutoff 200 Ha, 0.026 at 300, 4e-4 at 600).
    assert np.abs(forces.sum(axis=0)).max() < 0.2
    h, (i, k) = 1e-3, (0, 2)
    moved = [atoms.copy() for _ in range(2)]
    moved[0].positions[i, k] += h
    moved[1].positions[i, k] -= h
    fd = -(_energy_forces(moved[0], box_calc)[0] - _energy_forces(moved[1], box_calc)[0]) / (2 * h)
    # measured: analytic 6.9033 eV/Å, finite difference 2.6e-4 eV/Å off (the grid's ripple)
    assert fd == pytest.approx(forces[i, k], abs=2e-3)
    assert abs(forces[i, k]) > 1  # a real force, not a vanishing one


def test_the_same_positions_give_the_same_energy_and_forces(box_calc):
    """An atom moved by a lattice vector (outside the cell, unwrapped as a run keeps it) is the
    same system. The previous density is the SCF's starting guess, so the answer depends on
    what was computed before within the SCF's tolerance (conv_tol 1e-9 Ha): measured 3.4e-6
    eV/Å between a fresh calculator and one that last ran a geometry 1e-3 Å away."""
    atoms = _water_box()
    energy, forces = _energy_forces(atoms, box_calc)
    shifted = atoms.copy()
    shifted.positions[0] += [BOX_A, -BOX_A, 2 * BOX_A]
    shifted.positions[1] -= [0, 0, BOX_A]
    e_shift, f_shift = _energy_forces(shifted, box_calc)
    assert box_calc.last_scf.reused_density
    assert e_shift == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(f_shift, forces, atol=1e-6)  # measured 5e-8 eV/Å

    e_fresh, f_fresh = _energy_forces(shifted, PySCFPBCCalculator(basis="gth-szv"))
    assert e_fresh == pytest.approx(energy, abs=1e-9)
    np.testing.assert_allclose(f_fresh, forces, atol=2e-5)


def test_unrestricted_radical():
    oh = Atoms("OH", positions=[[0, 0, 2], [0, 0, 2.97]], cell=[4.5] * 3, pbc=True)
    calc = build_calculator(DFTConfig(type="dft", basis="gth-szv", spin=1, ke_cutoff=100), oh)
    assert calc.method_name == "UKS"
    _, forces = _energy_forces(oh, calc)
    assert forces[0, 2] < -1 and forces[1, 2] > 1  # a compressed bond pushes the atoms apart
    np.testing.assert_allclose(forces[:, :2], 0, atol=1e-6)
    assert abs(forces[:, 2].sum()) < 0.5  # the grid's net force, as in the RKS test


@pytest.mark.parametrize(("section", "words"), [
    ({"basis": "def2-SVP"}, "calculator.basis 'def2-SVP' is not a GTH basis"),
    ({"pseudo": "ccecp"}, "calculator.pseudo 'ccecp' is not a GTH pseudopotential"),
    ({"functional": "B3LYP"}, "calculator.functional 'B3LYP' is a hybrid functional"),
    ({"functional": "HF"}, "is Hartree-Fock"),
    ({"functional": "TPSS"}, "a meta-GGA functional"),
    ({"grid_level": 2}, "calculator.grid_level applies to a molecule only"),
    ({"basis": "gth-nope"}, "PySCF has no GTH basis 'gth-nope'"),
])
def test_what_periodic_dft_cannot_run_is_refused_in_one_line(section, words):
    with pytest.raises(CalculatorInputError, match="periodic|GTH|PySCF") as info:
        build_calculator(DFTConfig(type="dft", **section), _water_box())
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_narrow_cell_and_periodic_keys_for_a_molecule_are_refused():
    narrow = _water_box()
    narrow.cell = [2.5, BOX_A, BOX_A]
    with pytest.raises(CalculatorInputError, match="2.50 Å across .* larger supercell"):
        build_calculator(DFTConfig(type="dft", basis="gth-szv"), narrow)
    with pytest.raises(CalculatorInputError, match="calculator.ke_cutoff applies to a periodic"):
        build_calculator(DFTConfig(type="dft", ke_cutoff=100), molecule("H2O"))
    calc = build_calculator(DFTConfig(type="dft", basis="sto-3g"), molecule("H2O"))
    assert type(calc) is PySCFCalculator and calc.parameters["basis"] == "sto-3g"
    desc = describe_calculator(DFTConfig(type="dft"))
    assert desc["basis"] == {"molecule": "def2-SVP", "periodic": "gth-dzvp"}


def test_an_scf_that_does_not_converge_names_max_cycle():
    atoms = _water_box()
    atoms.calc = PySCFPBCCalculator(basis="gth-szv", max_cycle=1)
    with pytest.raises(SCFConvergenceError, match="did not converge in 1 cycles.*max_cycle"):
        atoms.get_potential_energy()


def test_simulate_a_water_box_with_periodic_dft(tmp_path: Path):
    box = _water_box()
    box.positions[:, 1] -= BOX_A / 2 - 0.3  # a hydrogen starts outside the cell
    box.write(tmp_path / "box.extxyz")
    data = {"system": {"file": str(tmp_path / "box.extxyz")},
            "calculator": {"type": "dft", "basis": "gth-szv"},
            "dynamics": {"integrator": "nve", "timestep_fs": 0.5, "steps": 2,
                         "temperature_K": 300, "seed": 1},
            "output": {"directory": str(tmp_path / "run"), "stride": 1}}
    (tmp_path / "box.yaml").write_text(yaml.safe_dump(data))
    assert main(["simulate", str(tmp_path / "box.yaml")]) == 0
    frames = read(tmp_path / "run" / "trajectory.traj", ":")
    assert len(frames) == 3
    for frame in frames:
        np.testing.assert_allclose(frame.cell.array, np.eye(3) * BOX_A)
        assert frame.pbc.all() and np.abs(frame.get_forces()).max() > 0.1
    assert (frames[-1].positions[:, 1] < 0).any()  # positions stay unwrapped


def test_a_molecular_dft_run_from_before_the_periodic_keys_resumes(tmp_path: Path):
    """Its run.json has basis def2-SVP (then the default, now None: chosen by the system) and
    no pseudo or ke_cutoff; that is the same input. Another basis is a change."""
    import json

    from hybridmd.errors import InputError
    from hybridmd.preflight import check_unchanged_input

    now = {"calculator": DFTConfig(type="dft").model_dump(mode="json")}
    old = {k: v for k, v in now["calculator"].items() if k not in ("pseudo", "ke_cutoff")}
    for basis, same in (("def2-SVP", True), ("sto-3g", False)):
        (tmp_path / "run.json").write_text(json.dumps({"input": {"calculator": {
            **old, "basis": basis}}}))
        if same:
            check_unchanged_input(tmp_path / "run.json", now, tmp_path)
        else:
            with pytest.raises(InputError, match=r"changed .*\(calculator.basis\)"):
                check_unchanged_input(tmp_path / "run.json", now, tmp_path)
