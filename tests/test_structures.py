"""Structures by name, from any ASE file, from an MD17 npz frame; initial momenta from a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import write
from pydantic import ValidationError

from hybridmd.config import MomentaFile, SystemConfig
from hybridmd.errors import InputError
from hybridmd.structures import build_structure, load_momenta
from hybridmd.units import BOHR, FS

from conftest import DATA


def _system(tmp_path: Path, **kw) -> SystemConfig:
    return SystemConfig.model_validate(kw, context={"base_dir": tmp_path})


def test_shipped_molecule(tmp_path: Path) -> None:
    atoms = build_structure(_system(tmp_path, molecule="ethanol"))
    assert atoms.get_chemical_formula() == "C2H6O" and not atoms.pbc.any()


def test_md17_npz_frame(tmp_path: Path) -> None:
    path = DATA / "ABC-4MeOH-300K-1-gdml.npz"
    atoms = build_structure(_system(tmp_path, file=str(path), index=-1))
    with np.load(path) as data:
        np.testing.assert_array_equal(atoms.numbers, data["z"])
        np.testing.assert_allclose(atoms.positions, data["R"][-1])


def test_npz_index_out_of_range(tmp_path: Path) -> None:
    cfg = _system(tmp_path, file=str(DATA / "ABC-4MeOH-300K-1-gdml.npz"), index=100)
    with pytest.raises(ValueError, match="out of range.*100 frames"):
        build_structure(cfg)


@pytest.mark.parametrize(("unit", "to_angstrom"), [("bohr", BOHR), ("nm", 10.0)])
def test_npz_frame_in_the_files_units(tmp_path: Path, unit: str, to_angstrom: float) -> None:
    """A start frame and its velocities from an npz that is not in Å come out in Å, Å/fs."""
    rng = np.random.default_rng(1)
    r, v = rng.normal(size=(3, 3, 3)), rng.normal(size=(3, 3, 3))
    path = tmp_path / "water.npz"
    np.savez(path, R=r, V=v, z=np.array([8, 1, 1]), r_unit=unit, v_unit=f"{unit}/ps")
    atoms = build_structure(_system(tmp_path, file=str(path), index=1))
    np.testing.assert_allclose(atoms.positions, r[1] * to_angstrom)
    p = load_momenta(MomentaFile.model_validate({"file": str(path), "index": 1}), atoms)
    np.testing.assert_allclose(p / atoms.get_masses()[:, None] * FS, v[1] * to_angstrom / 1000)


def test_any_ase_file(tmp_path: Path) -> None:
    ethanol = build_structure(_system(tmp_path, molecule="ethanol"))
    write(tmp_path / "m.pdb", [ethanol, ethanol])
    atoms = build_structure(_system(tmp_path, file="m.pdb", index=1))
    np.testing.assert_allclose(atoms.positions, ethanol.positions, atol=1e-3)


def test_momenta_from_npz_velocities(tmp_path: Path) -> None:
    path = DATA / "6h2o_orca_mp2_md_300k.npz"
    atoms = build_structure(_system(tmp_path, file=str(path), index=5))
    p = load_momenta(MomentaFile.model_validate({"file": str(path), "index": 5}), atoms)
    with np.load(path) as data:
        np.testing.assert_allclose(p / atoms.get_masses()[:, None] * FS, data["V"][5])


def test_momenta_for_another_molecule_are_refused(tmp_path: Path) -> None:
    water = build_structure(_system(tmp_path, file=str(DATA / "6h2o_orca_mp2_md_300k.npz")))
    ethanol = build_structure(_system(tmp_path, molecule="ethanol"))
    ethanol.set_momenta(np.ones((9, 3)))
    write(tmp_path / "e.traj", ethanol)
    with pytest.raises(ValueError, match="same atom order"):
        load_momenta(MomentaFile.model_validate({"file": str(tmp_path / "e.traj")}), water)


def _water_box(tmp_path: Path, pbc: object = True, shift: float = 0.0) -> Path:
    from ase.build import molecule

    box = molecule("H2O")
    box.cell, box.pbc = [4.0, 4.0, 4.0], pbc
    box.positions += 2.0
    other = box.copy()
    other.positions += [shift or 2.0, 0, 0]
    box += other
    path = tmp_path / "box.extxyz"
    box.write(path)
    return path


def test_a_periodic_file_keeps_its_cell_and_a_cluster_has_none(tmp_path: Path) -> None:
    atoms = build_structure(_system(tmp_path, file=str(_water_box(tmp_path))))
    assert atoms.pbc.all() and np.allclose(atoms.cell.lengths(), 4.0)
    cluster = build_structure(_system(tmp_path, file=str(_water_box(tmp_path, pbc=False))))
    assert not cluster.pbc.any() and cluster.cell.volume == 0
    given = build_structure(_system(tmp_path, file=str(_water_box(tmp_path, pbc=False)),
                                    cell=[5, 6, 7]))
    assert given.pbc.all() and np.allclose(given.cell.lengths(), [5, 6, 7])


@pytest.mark.parametrize(("kw", "words"), [
    ({"pbc": [True, True, False]}, "periodic in some directions only"),
])
def test_a_partly_periodic_structure_is_refused(tmp_path: Path, kw, words) -> None:
    with pytest.raises(InputError, match=words):
        build_structure(_system(tmp_path, file=str(_water_box(tmp_path, **kw))))


def test_cell_input_is_checked(tmp_path: Path) -> None:
    for cell, words in (([1, 2], "shape"), ([1, 0, 2], "no volume")):
        with pytest.raises(ValidationError, match=words):
            _system(tmp_path, molecule="ethanol", cell=cell)


def test_atoms_overlapping_across_the_boundary_are_refused(tmp_path: Path) -> None:
    from hybridmd.config import SafetyConfig
    from hybridmd.structures import check_start_geometry

    path = _water_box(tmp_path, shift=3.9)  # the second water 0.1 Å from the first's image
    atoms = build_structure(_system(tmp_path, file=str(path)))
    with pytest.raises(InputError, match="across the periodic boundary"):
        check_start_geometry(atoms, SafetyConfig(), path)
