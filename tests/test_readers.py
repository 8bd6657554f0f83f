"""Tests for hybridmd.readers: round trips, the real ab initio test data, i-PI outputs, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import units as ase_units
from ase.data import atomic_masses

from hybridmd.readers import KNOWN_FORMATS, read_trajectory, write_trajectory
from hybridmd.trajectory import Trajectory, finite_difference_momenta
from hybridmd.units import HARTREE, KCAL_MOL

DATA = Path(__file__).parent / "data"
MD17 = DATA / "ABC-4MeOH-300K-1-gdml.npz"
WATER6 = DATA / "6h2o_orca_mp2_md_300k.npz"
WATER4 = DATA / "4h2o_orca_mp2_md_300k.traj.xyz"


def _synthetic(with_results: bool = True, n_frames: int = 7) -> Trajectory:
    """A small trajectory with non-trivial numbers everywhere (odd masses, t0, dt)."""
    rng = np.random.default_rng(0)
    numbers = np.array([8, 1, 1, 6])
    masses = atomic_masses[numbers].copy()
    masses[1] = 2.014101778  # a deuterium, to check masses survive
    return Trajectory(
        numbers=numbers,
        positions=rng.normal(scale=1.7, size=(n_frames, 4, 3)),
        momenta=rng.normal(scale=0.3, size=(n_frames, 4, 3)),
        dt_fs=0.37,
        masses=masses,
        energies=rng.normal(-1234.5, 3.0, size=n_frames) if with_results else None,
        forces=rng.normal(size=(n_frames, 4, 3)) if with_results else None,
        t0_fs=12.95,
    )


def _assert_same(a: Trajectory, b: Trajectory, rtol: float = 1e-10) -> None:
    np.testing.assert_array_equal(a.numbers, b.numbers)
    for name in ("positions", "momenta", "masses", "energies", "forces"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            np.testing.assert_allclose(y, x, rtol=rtol, atol=0, err_msg=name)
    assert b.dt_fs == pytest.approx(a.dt_fs, rel=rtol)
    assert b.t0_fs == pytest.approx(a.t0_fs, rel=rtol)
    assert len(a) == len(b)


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".traj", ".extxyz", ".xyz", ".npz"])
@pytest.mark.parametrize("with_results", [True, False])
def test_round_trip(tmp_path: Path, suffix: str, with_results: bool) -> None:
    traj = _synthetic(with_results)
    path = tmp_path / f"out{suffix}"
    write_trajectory(traj, path)
    back = read_trajectory(path)  # no dt_fs: the file must carry the times
    _assert_same(traj, back)
    assert back.metadata["velocities"] == "file"
    assert back.metadata["source"] == str(path)
    assert back.metadata["format"] == {".xyz": "extxyz"}.get(suffix, suffix[1:])


def test_round_trip_index_selects_after_reading(tmp_path: Path) -> None:
    traj = _synthetic(n_frames=9)
    path = tmp_path / "out.traj"
    write_trajectory(traj, path)
    _assert_same(traj.subsample(2, start=1), read_trajectory(path, index="1::2"))
    _assert_same(traj.slice(8), read_trajectory(path, index=-1, dt_fs=traj.dt_fs))


def test_write_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pass format="):
        write_trajectory(_synthetic(), tmp_path / "out.dat")


# ----------------------------------------------------------------------------- real data


def test_md17_dataset() -> None:
    raw = np.load(MD17)
    traj = read_trajectory(MD17, dt_fs=0.96)
    assert len(traj) == 100 and traj.n_atoms == 18
    assert traj.positions.shape == traj.momenta.shape == traj.forces.shape == (100, 18, 3)
    np.testing.assert_array_equal(traj.numbers, raw["z"])
    np.testing.assert_allclose(traj.positions, raw["R"], rtol=1e-15)
    np.testing.assert_allclose(traj.energies, raw["E"].ravel() * KCAL_MOL, rtol=1e-14)
    np.testing.assert_allclose(traj.forces, raw["F"] * KCAL_MOL, rtol=1e-14)
    assert traj.energies[0] == pytest.approx(-217458.27068287 * KCAL_MOL)
    assert traj.dt_fs == 0.96 and traj.t0_fs == 0.0
    assert traj.metadata["velocities"] == "finite-difference"
    assert traj.metadata["format"] == "npz"
    np.testing.assert_allclose(
        traj.momenta, finite_difference_momenta(raw["R"], 0.96, traj.masses), rtol=1e-14
    )
    # thermal velocities of a 300 K run: a few 0.01 Å/fs, nothing absurd
    speed = np.linalg.norm(traj.velocities, axis=-1)
    assert 0.003 < np.median(speed) < 0.03 and speed.max() < 0.2


def test_md17_needs_dt() -> None:
    with pytest.raises(ValueError, match="dt_fs"):
        read_trajectory(MD17)


def test_finite_difference_velocities_match_real_ones() -> None:
    """FD velocities vs the velocities stored in the 6 H2O MP2 run (301 frames, "about 1 fs").

    Measured: least-squares dt of central differences of R against V = 1.0000000039 fs (the
    V in the file are in Å/fs with a fs 3.9e-9 smaller than ASE's CODATA-2014 one). With
    dt_fs=1.0: interior frames agree to 3.9e-9 relative (velocity Verlet positions give the
    velocities exactly by central differences); the two end frames (one-sided second-order
    differences) are off by 0.127 in mean |Δv|/mean|v|; over all frames mean|Δv|/mean|v| =
    7.7e-4 and the median per-atom relative error is 3.9e-9. Bounds are about twice these.
    """
    raw = np.load(WATER6)
    positions, velocities = raw["R"], raw["V"]
    central = (positions[2:] - positions[:-2]) / 2
    dt_est = float((central * velocities[1:-1]).sum() / (velocities[1:-1] ** 2).sum())
    print(f"\nestimated dt = {dt_est:.12f} fs")
    assert abs(dt_est - 1.0) < 1e-8

    with_v = read_trajectory(WATER6, dt_fs=1.0)
    fd = read_trajectory(WATER6, dt_fs=1.0, use_file_velocities=False)
    assert with_v.metadata["velocities"] == "file"
    assert fd.metadata["velocities"] == "finite-difference"
    np.testing.assert_allclose(with_v.velocities, velocities, rtol=1e-12, atol=1e-18)
    np.testing.assert_array_equal(fd.energies, with_v.energies)

    err = np.linalg.norm(fd.velocities - with_v.velocities, axis=-1)
    speed = np.linalg.norm(with_v.velocities, axis=-1)
    overall = err.mean() / speed.mean()
    interior = err[1:-1].mean() / speed[1:-1].mean()
    ends = err[[0, -1]].mean() / speed[[0, -1]].mean()
    median = np.median(err / speed)
    print(
        f"FD vs file velocities: mean|dv|/mean|v| = {overall:.3e} (interior {interior:.3e}, "
        f"end frames {ends:.3f}), median relative error {median:.3e}"
    )
    assert overall < 1.5e-3
    assert interior < 8e-9
    assert ends < 0.25
    assert median < 8e-9


def test_mbgdml_md_npz_units() -> None:
    raw = np.load(WATER6)
    traj = read_trajectory(WATER6, dt_fs=1.0, index="::100")
    assert len(traj) == 4 and traj.dt_fs == 100.0
    np.testing.assert_allclose(traj.energies, raw["E_potential"][::100] * KCAL_MOL, rtol=1e-14)
    np.testing.assert_allclose(traj.forces, raw["F"][::100] * KCAL_MOL, rtol=1e-14)
    # the stored kinetic energy follows from V and standard masses (to CODATA differences)
    kinetic = 0.5 * np.sum(traj.momenta**2 / traj.masses[None, :, None], axis=(1, 2))
    np.testing.assert_allclose(kinetic, raw["E_kinetic"][::100] * KCAL_MOL, rtol=1e-6)


def test_plain_xyz_with_comment_energies() -> None:
    traj = read_trajectory(WATER4, dt_fs=1.0, energy_unit="hartree")
    assert traj.metadata["format"] == "xyz"
    assert traj.metadata["velocities"] == "finite-difference"
    assert len(traj) == 101 and traj.symbols == "OHHOHHOHHOHH"
    assert traj.energies[0] == pytest.approx(-305.30188606 * HARTREE, rel=1e-14)
    np.testing.assert_allclose(traj.positions[0, 0], [1.5213090068, 1.1130800050, 0.3930730018])
    assert read_trajectory(WATER4, dt_fs=1.0).energies is None
    with pytest.raises(ValueError, match="dt_fs"):
        read_trajectory(WATER4)


# ----------------------------------------------------------------------------- i-PI


def _write_ipi(
    path: Path,
    names: list[str],
    data: np.ndarray,
    steps: np.ndarray,
    key: str,
    dimension: str,
    units: str,
    h: np.ndarray | None = None,
) -> None:
    """Write frames with i-PI's own xyz writer; ``data`` and the cell ``h`` (columns the
    lattice vectors, default a 40 Bohr cube) in i-PI atomic units."""
    from ipi.engine.atoms import Atoms
    from ipi.engine.cell import Cell
    from ipi.utils.io import print_file

    cell = Cell(np.eye(3) * 40.0 if h is None else h)
    with open(path, "w") as fd:
        for step, frame in zip(steps, data, strict=True):
            atoms = Atoms(len(names))
            atoms.names[:] = names
            atoms.q[:] = frame.ravel()
            print_file(
                "xyz",
                atoms,
                cell,
                filedesc=fd,
                key=key,
                dimension=dimension,
                units=units,
                cell_units=units,
                title=f"Step:  {step:10d}  Bead:   {0:5d} ",
            )


@pytest.fixture
def ipi_run(tmp_path: Path) -> dict:
    """i-PI outputs of a water molecule: every 4th step of an MD with a 0.5 fs time step."""
    rng = np.random.default_rng(1)
    n_frames, names = 6, ["O", "H", "H"]
    pos_ang = rng.normal(scale=1.5, size=(n_frames, 3, 3))
    vel_au = rng.normal(scale=2e-4, size=(n_frames, 3, 3))
    steps = 8 + 4 * np.arange(n_frames)
    pos_path, vel_path = tmp_path / "sim.pos_0.xyz", tmp_path / "sim.vel_0.xyz"
    _write_ipi(pos_path, names, pos_ang / ase_units.Bohr, steps, "x_centroid", "length", "angstrom")
    _write_ipi(vel_path, names, vel_au, steps, "v_centroid", "velocity", "atomic_unit")
    # atomic units of velocity, Bohr per hbar/Hartree, in Å/fs from ASE's own constants
    vel_ang_fs = vel_au * ase_units.Bohr / (ase_units._aut * 1e15)
    return {
        "pos": pos_path,
        "vel": vel_path,
        "positions": pos_ang,
        "velocities": vel_ang_fs,
        "steps": steps,
        "names": names,
    }


def test_ipi_positions_and_velocities(ipi_run: dict) -> None:
    header = ipi_run["pos"].read_text().splitlines()[1]
    assert "Step:" in header and "x_centroid{angstrom}" in header
    traj = read_trajectory(ipi_run["pos"], dt_fs=0.5, velocities=ipi_run["vel"])
    assert traj.metadata["format"] == "ipi" and traj.metadata["velocities"] == "file"
    assert traj.metadata["stride"] == 4
    assert traj.dt_fs == pytest.approx(2.0) and traj.t0_fs == pytest.approx(4.0)
    assert traj.symbols == "OHH"
    # i-PI writes 6 significant digits
    np.testing.assert_allclose(traj.positions, ipi_run["positions"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(traj.velocities, ipi_run["velocities"], rtol=1e-5, atol=1e-9)


def test_ipi_drops_truncated_last_frame(ipi_run: dict) -> None:
    text = ipi_run["pos"].read_text()
    lines = text.splitlines(keepends=True)
    for cut in (1, 3):  # a lone atom count; a header and one atom line
        ipi_run["pos"].write_text(text + "".join(lines[:cut]))
        traj = read_trajectory(ipi_run["pos"], dt_fs=0.5)
        assert len(traj) == 6


def test_ipi_without_velocities_file(ipi_run: dict) -> None:
    traj = read_trajectory(ipi_run["pos"], format="ipi", dt_fs=0.5)
    assert traj.metadata["velocities"] == "finite-difference"
    expected = finite_difference_momenta(traj.positions, 2.0, traj.masses)
    np.testing.assert_allclose(traj.momenta, expected, rtol=1e-12)


def test_ipi_atom_count_mismatch(ipi_run: dict, tmp_path: Path) -> None:
    other = tmp_path / "other.vel_0.xyz"
    _write_ipi(
        other,
        ["O", "H"],
        np.zeros((6, 2, 3)),
        ipi_run["steps"],
        "v_centroid",
        "velocity",
        "atomic_unit",
    )
    with pytest.raises(ValueError, match="atoms"):
        read_trajectory(ipi_run["pos"], dt_fs=0.5, velocities=other)


def test_ipi_needs_dt(ipi_run: dict) -> None:
    with pytest.raises(ValueError, match="dt_fs"):
        read_trajectory(ipi_run["pos"])


# ----------------------------------------------------------------------------- periodic cells

#: a triclinic cell (rows: lattice vectors, Å)
CELL = np.array([[9.1, 0.0, 0.0], [1.7, 8.6, 0.0], [-0.8, 1.3, 10.4]])


def _periodic_extxyz(path: Path, pbc: tuple[bool, bool, bool] = (True, True, True)) -> None:
    """Five frames of a water and a hydrogen atom in ``CELL``, written by ASE with a Lattice."""
    import ase.io
    from ase import Atoms

    rng = np.random.default_rng(3)
    frames = []
    for k in range(5):
        atoms = Atoms("OH2H", positions=rng.uniform(0, 8, size=(4, 3)), cell=CELL, pbc=pbc)
        atoms.set_momenta(rng.normal(scale=0.3, size=(4, 3)))
        atoms.info["time_fs"] = 0.5 * k
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


@pytest.mark.parametrize("suffix", [".traj", ".extxyz", ".npz"])
@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, True)])
def test_periodic_extxyz_round_trips_with_its_cell(tmp_path: Path, suffix: str,
                                                    pbc: tuple[bool, bool, bool]) -> None:
    source = tmp_path / "box.extxyz"
    _periodic_extxyz(source, pbc)
    assert 'Lattice="9.1 0.0 0.0 1.7 8.6 0.0 -0.8 1.3 10.4"' in source.read_text()
    traj = read_trajectory(source)
    np.testing.assert_array_equal(traj.cell, CELL)
    assert traj.pbc.tolist() == list(pbc) and traj.periodic == all(pbc)
    write_trajectory(traj, tmp_path / f"out{suffix}")
    back = read_trajectory(tmp_path / f"out{suffix}")
    _assert_same(traj, back)
    np.testing.assert_array_equal(back.cell, CELL)
    assert back.pbc.tolist() == list(pbc)


def test_a_varying_cell_is_kept_per_frame(tmp_path: Path) -> None:
    traj = _synthetic(n_frames=6)
    cells = CELL * (1 + 0.01 * np.arange(6))[:, None, None]
    traj = Trajectory(traj.numbers, traj.positions, traj.momenta, traj.dt_fs, cell=cells)
    for suffix in (".traj", ".extxyz", ".npz"):
        write_trajectory(traj, tmp_path / f"out{suffix}")
        back = read_trajectory(tmp_path / f"out{suffix}", index="1::2")
        np.testing.assert_allclose(back.cell, cells[1::2], rtol=1e-15, err_msg=suffix)


def test_a_file_without_a_cell_reads_as_before(tmp_path: Path) -> None:
    for suffix in (".traj", ".extxyz", ".npz"):
        write_trajectory(_synthetic(), tmp_path / f"out{suffix}")
        back = read_trajectory(tmp_path / f"out{suffix}")
        assert back.cell is None and back.pbc.tolist() == [False] * 3 and not back.periodic
    assert "Lattice" not in (tmp_path / "out.extxyz").read_text()
    assert "lattice" not in np.load(tmp_path / "out.npz").files


def test_wrapped_positions_give_smooth_finite_difference_velocities(tmp_path: Path) -> None:
    """Atoms crossing the cell boundary, written wrapped and without velocities: finite
    differences of the unwrapped positions give their true (constant) velocities."""
    import ase.io
    from ase import Atoms

    velocity = np.array([[0.9, -0.4, 0.3], [-0.7, 0.2, 1.1]])  # Å/fs: crosses within 10 fs
    frames = []
    for k in range(12):
        atoms = Atoms("OH", positions=[[1.0, 2.0, 3.0], [8.0, 4.0, 9.5]] + velocity * k,
                      cell=CELL, pbc=True)
        atoms.wrap()
        frames.append(atoms)
    ase.io.write(tmp_path / "wrapped.extxyz", frames)
    traj = read_trajectory(tmp_path / "wrapped.extxyz", dt_fs=1.0)
    assert traj.metadata["velocities"] == "finite-difference"
    np.testing.assert_allclose(traj.velocities, np.broadcast_to(velocity, (12, 2, 3)),
                               atol=1e-12)


def test_ipi_cell_header_gives_the_cell(ipi_run: dict, tmp_path: Path) -> None:
    h = np.array([[18.0, 2.5, -1.5], [0.0, 17.0, 3.0], [0.0, 0.0, 19.0]])  # Bohr, columns
    path = tmp_path / "box.pos_0.xyz"
    _write_ipi(path, ipi_run["names"], ipi_run["positions"] / ase_units.Bohr, ipi_run["steps"],
               "x_centroid", "length", "angstrom", h=h)
    assert "CELL(abcABC):" in path.read_text().splitlines()[1]
    traj = read_trajectory(path, dt_fs=0.5)
    assert traj.cell.shape == (3, 3) and traj.periodic
    # i-PI writes a b c alpha beta gamma with 5 decimals: the same cell up to a rotation
    np.testing.assert_allclose(traj.cell @ traj.cell.T, h.T @ h * ase_units.Bohr**2, rtol=1e-5)
    np.testing.assert_allclose(traj.cell, h.T * ase_units.Bohr, atol=1e-4)


def test_ipi_without_a_cell(ipi_run: dict) -> None:
    """i-PI's header without a CELL, or with its 1 Bohr stand-in for none: no cell."""
    default = read_trajectory(ipi_run["pos"], dt_fs=0.5)
    np.testing.assert_allclose(default.cell, np.eye(3) * 40 * ase_units.Bohr, atol=1e-4)
    text = ipi_run["pos"].read_text()
    header = text.splitlines()[1]
    cell_part = header[header.index("CELL"):header.index("Step")]
    for stand_in in ("", "CELL(abcABC):  0.52918  0.52918  0.52918  90.0  90.0  90.0  "):
        ipi_run["pos"].write_text(text.replace(cell_part, stand_in))
        traj = read_trajectory(ipi_run["pos"], dt_fs=0.5)
        assert traj.cell is None and not traj.periodic


# ----------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.traj"
    with pytest.raises(FileNotFoundError, match="nope.traj"):
        read_trajectory(missing, dt_fs=1.0)


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "frames.dat"
    path.write_text("1\n\nH 0 0 0\n")
    with pytest.raises(ValueError, match="npz"):
        read_trajectory(path, dt_fs=1.0)
    with pytest.raises(ValueError, match=", ".join(KNOWN_FORMATS)):
        read_trajectory(path, format="pdb", dt_fs=1.0)


def test_uneven_time_spacing(tmp_path: Path) -> None:
    import ase.io

    frames = _synthetic().to_atoms_list()
    frames[4].info["time_fs"] += 0.1
    path = tmp_path / "uneven.traj"
    ase.io.write(path, frames)
    with pytest.raises(ValueError, match="not equally spaced"):
        read_trajectory(path)


def test_dt_must_agree_with_file(tmp_path: Path) -> None:
    path = tmp_path / "out.npz"
    write_trajectory(_synthetic(), path)
    with pytest.raises(ValueError, match="0.5 fs was given as their spacing .--dt-fs, or dt_fs"):
        read_trajectory(path, dt_fs=0.5)


def test_too_few_frames_for_finite_differences(tmp_path: Path) -> None:
    path = tmp_path / "two.xyz"
    path.write_text("1\nfirst\nH 0 0 0\n1\nsecond\nH 0 0 0.1\n")
    with pytest.raises(ValueError, match="at least 3"):
        read_trajectory(path, dt_fs=1.0)


def test_unknown_unit(tmp_path: Path) -> None:
    path = tmp_path / "odd.npz"
    np.savez(
        path,
        z=np.array([1]),
        R=np.zeros((3, 1, 3)),
        V=np.zeros((3, 1, 3)),
        v_unit="furlong/fortnight",
    )
    with pytest.raises(ValueError, match="furlong"):
        read_trajectory(path, dt_fs=1.0)


def test_velocities_file_only_for_ipi(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ipi"):
        read_trajectory(MD17, dt_fs=1.0, velocities=tmp_path / "v.xyz")


def test_index_keeps_full_resolution_finite_differences() -> None:
    """Frames are picked after the FD momenta are computed on the whole file."""
    full = read_trajectory(WATER4, dt_fs=1.0)
    part = read_trajectory(WATER4, dt_fs=1.0, index="5:8")
    assert len(part) == 3 and part.t0_fs == 5.0
    np.testing.assert_array_equal(part.momenta, full.momenta[5:8])
    _assert_same(full.subsample(10, start=3), read_trajectory(WATER4, dt_fs=1.0, index="3::10"))


def test_frames_with_results_in_only_some_frames_are_named(tmp_path: Path, caplog) -> None:
    """Energies on some frames only: read without them, and the warning says which frames."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(8):
        atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0.01 * k]])
        atoms.info["time_fs"] = 0.5 * k
        if k in (0, 3):
            atoms.calc = SinglePointCalculator(atoms, energy=-1.0 * k)
        frames.append(atoms)
    path = tmp_path / "some.extxyz"
    ase.io.write(path, frames)
    with caplog.at_level("INFO", logger="hybridmd.readers"):
        traj = read_trajectory(path)
    assert traj.energies is None and len(traj) == 8
    assert "only 2 of 8 frames have energy (frames 0, 3); read without energy" in caplog.text


def test_every_format_an_input_may_name_has_a_reader():
    from hybridmd.formats import KNOWN_FORMATS
    from hybridmd.readers.registry import READERS

    assert sorted(READERS) == sorted(KNOWN_FORMATS)
