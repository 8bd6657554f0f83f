"""g(r) and density of periodic trajectories: minimum image, normalisation, pair counts, a
TIP3P water box, and the periodic part of `hybridmd analyze`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.geometry import get_distances
from ase.geometry.rdf import get_rdf

from hybridmd.analysis.baseline import classical_reconstruction
from hybridmd.analysis.compare import distribution_scores
from hybridmd.analysis.rdf import (
    common_rdfs,
    density,
    element_pairs,
    max_radius,
    radial_distribution,
    rdf_scores,
)
from hybridmd.analysis.rdf_report import RDF_FIGURE
from hybridmd.analysis.report import SCORE_KEYS, analyze
from hybridmd.cli import main
from hybridmd.periodic import minimum_image, perpendicular_widths, unwrap
from hybridmd.readers import read_trajectory, write_trajectory
from hybridmd.trajectory import Trajectory

from conftest import DATA

#: 27 rigid TIP3P waters at 300 K, 0.997 g/cm³, equilibrated 2 ps (workflows/water_box.py)
WATER_BOX = DATA / "27h2o_tip3p_300k.npz"
#: a skewed cell (rows: lattice vectors, Å)
TRICLINIC = np.array([[12.0, 0.0, 0.0], [3.0, 11.0, 0.0], [-2.0, 1.5, 12.5]])


def _frames(positions: np.ndarray, numbers: list[int] | np.ndarray,
            cell: np.ndarray | None = TRICLINIC) -> Trajectory:
    positions = np.asarray(positions, dtype=float)
    return Trajectory(numbers, positions, np.zeros_like(positions), 1.0, cell=cell)


def _ideal_gas(frames: int, oxygens: int, hydrogens: int, seed: int = 0) -> Trajectory:
    """Uniformly random, independent atoms in ``TRICLINIC``."""
    rng = np.random.default_rng(seed)
    n = oxygens + hydrogens
    return _frames(rng.uniform(size=(frames, n, 3)) @ TRICLINIC, [8] * oxygens + [1] * hydrogens)


@pytest.fixture(scope="module")
def water_box() -> Trajectory:
    return read_trajectory(WATER_BOX)


# ------------------------------------------------------------------------------ minimum image


def test_two_atoms_across_the_boundary_are_at_their_short_distance() -> None:
    cube = _frames([[[0.3, 5.0, 5.0], [9.75, 5.0, 5.0]]], [8, 8], np.eye(3) * 10.0)
    rdf = radial_distribution(cube, ("O", "O"), bins=50)
    assert rdf.counts.sum() == 1 and rdf.counts[5] == 1  # at 0.55 Å, not 9.45 Å
    skewed = _frames([[[0.2, 0.1, 0.3], TRICLINIC.sum(axis=0) - [0.3, 0.2, 0.1]]], [8, 1])
    rdf = radial_distribution(skewed, bins=100)
    assert rdf.counts.sum() == 1
    assert rdf.centres[np.flatnonzero(rdf.counts)[0]] == pytest.approx(
        np.linalg.norm([0.5, 0.3, 0.4]), abs=rdf.edges[1] / 2)


def test_minimum_image_agrees_with_ase_in_a_triclinic_cell() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.uniform(-1, 2, size=(2, 200, 3)) @ TRICLINIC
    mine = np.linalg.norm(minimum_image(b - a, TRICLINIC, np.ones(3, bool)), axis=-1)
    ase = np.diag(get_distances(a, b, TRICLINIC, True)[1])
    half = perpendicular_widths(TRICLINIC).min() / 2
    short = ase < half
    assert short.sum() > 25
    np.testing.assert_allclose(mine[short], ase[short], rtol=1e-12)
    assert np.all(mine[~short] >= half)  # longer ones are some image beyond the exact range


def test_minimum_image_with_a_cell_per_frame_and_some_directions_periodic() -> None:
    cells = np.stack([np.eye(3) * 10.0, np.eye(3) * 8.0])
    vectors = np.array([[[9.0, 9.0, 9.0]], [[7.5, 7.5, 7.5]]])
    np.testing.assert_allclose(minimum_image(vectors, cells, np.ones(3, bool)),
                               [[[-1.0, -1.0, -1.0]], [[-0.5, -0.5, -0.5]]])
    np.testing.assert_allclose(minimum_image(vectors, cells, [True, False, True]),
                               [[[-1.0, 9.0, -1.0]], [[-0.5, 7.5, -0.5]]])


def test_unwrap_makes_wrapped_positions_continuous() -> None:
    path = np.linspace(0, 25.0, 30)[:, None, None] * np.array([1.0, 0.4, -0.7])
    wrapped = path % 10.0
    np.testing.assert_allclose(unwrap(wrapped, np.eye(3) * 10.0, np.ones(3, bool)),
                               wrapped[0] + path - path[0], atol=1e-12)


# ------------------------------------------------------------------------------ normalisation


def test_ideal_gas_gives_one() -> None:
    gas = _ideal_gas(frames=300, oxygens=20, hydrogens=40)
    for pair in (None, ("O", "O"), ("O", "H"), ("H", "H")):
        rdf = radial_distribution(gas, pair, bins=50)
        assert rdf.g[10:].mean() == pytest.approx(1.0, abs=0.02), pair
        assert np.abs(rdf.g[10:] - 1).max() < 0.25, pair


def test_g_of_r_agrees_with_ase() -> None:
    gas = _ideal_gas(frames=10, oxygens=20, hydrogens=40, seed=4)
    images = [Atoms(numbers=gas.numbers, positions=r, cell=TRICLINIC, pbc=True)
              for r in gas.positions]
    for pair, like in ((None, 60), (("O", "O"), 20), (("O", "H"), None), (("H", "H"), 40)):
        rdf = radial_distribution(gas, pair, r_max=5.4, bins=54)
        ase_g, _ = get_rdf(images, 5.4, 54, elements=pair)
        # ASE normalises like pairs by N² rather than the N(N − 1) pairs there are
        np.testing.assert_allclose(rdf.g, ase_g * (like / (like - 1) if like else 1.0),
                                   rtol=1e-10, atol=1e-12)


def test_a_varying_cell_is_normalised_frame_by_frame() -> None:
    rng = np.random.default_rng(2)
    scale = np.repeat([1.0, 1.3], 40)
    cells = TRICLINIC * scale[:, None, None]
    positions = np.einsum("tni,tij->tnj", rng.uniform(size=(80, 40, 3)), cells)
    gas = Trajectory([8] * 40, positions, np.zeros_like(positions), 1.0, cell=cells)
    rdf = radial_distribution(gas, bins=40)
    assert rdf.edges[-1] == pytest.approx(max_radius(gas.slice(0, 40)))  # the smaller cell
    assert rdf.g[8:].mean() == pytest.approx(1.0, abs=0.03)
    assert density(gas).volume_A3 == pytest.approx(np.linalg.det(TRICLINIC) * np.mean(scale**3))


def test_partial_pairs_count_every_pair_once() -> None:
    """A cluster of 3 O and 5 H in a large box: every pair lies within r_max."""
    rng = np.random.default_rng(3)
    numbers = [8, 1, 1, 8, 1, 8, 1, 1]
    box = _frames(5.0 + rng.uniform(0, 3, size=(4, 8, 3)), numbers, np.eye(3) * 20.0)
    expected = {("O", "O"): 3, ("O", "H"): 15, ("H", "H"): 10}
    assert element_pairs(box.numbers) == list(expected)
    for pair, n in expected.items():
        rdf = radial_distribution(box, pair)
        assert rdf.pairs == n and rdf.counts.sum() == 4 * n and rdf.label == "-".join(pair)
    total = radial_distribution(box)
    assert total.pairs == 28 and total.label == "all"
    assert sum(radial_distribution(box, p).counts for p in expected) == pytest.approx(
        total.counts)
    assert radial_distribution(box, (1, 8)).pair == ("H", "O")  # numbers name elements too
    assert element_pairs([8, 1, 1]) == [("O", "H"), ("H", "H")]  # one O: no O-O pair
    with pytest.raises(ValueError, match="no C-C pairs"):
        radial_distribution(box, ("C", "C"))


def test_a_cluster_or_too_long_a_range_is_refused() -> None:
    cluster = _frames(np.zeros((2, 2, 3)) + [[0, 0, 0], [0, 0, 1]], [8, 1], cell=None)
    with pytest.raises(ValueError, match="needs a cell periodic in all three directions.*"
                                         "pair_distance_distribution"):
        radial_distribution(cluster)
    with pytest.raises(ValueError, match="a density needs a cell"):
        density(cluster)
    slab = Trajectory([8, 1], cluster.positions, cluster.momenta, 1.0, cell=np.eye(3) * 9.0,
                      pbc=[True, True, False])
    with pytest.raises(ValueError, match=r"periodic only along \[True, True, False\]"):
        radial_distribution(slab)
    box = _frames(cluster.positions, [8, 1], np.eye(3) * 9.0)
    with pytest.raises(ValueError, match=r"r_max must be in \(0, 4.5\] Å"):
        radial_distribution(box, r_max=4.6)


# ------------------------------------------------------------------------------ liquid water


def test_water_box_density_and_structure(water_box: Trajectory) -> None:
    assert water_box.periodic and water_box.cell.shape == (3, 3)
    d = density(water_box)
    assert d.g_cm3 == pytest.approx(0.997, rel=1e-3)
    assert d.atoms_per_A3 == pytest.approx(81 / np.linalg.det(water_box.cell))
    rdfs = {p: radial_distribution(water_box, p, bins=47) for p in element_pairs(water_box.numbers)}
    oo, oh, hh = rdfs[("O", "O")], rdfs[("O", "H")], rdfs[("H", "H")]
    assert 2.6 < oo.peak < 2.9 and oo.g.max() > 2.0  # the first shell of liquid water
    assert oo.g[oo.centres < 2.3].max() == 0  # no two oxygens closer
    assert abs(oh.peak - 0.9572) < oh.edges[1]  # the rigid O-H bond
    hydrogen_bond = (oh.centres > 1.6) & (oh.centres < 2.1)
    assert oh.g[hydrogen_bond].max() > 0.8 > oh.g[(oh.centres > 2.3) & (oh.centres < 2.8)].min()
    assert abs(hh.peak - 1.5139) < hh.edges[1]  # H-H within a molecule


# ------------------------------------------------------------------------------ comparisons


def test_identical_boxes_score_zero_and_a_distorted_one_does_not(water_box) -> None:
    same = common_rdfs(water_box, water_box)
    assert list(same) == ["O-O", "O-H", "H-H"]
    for ref, pred in same.values():
        scores = rdf_scores(ref, pred)
        assert scores["js_bits"] == pytest.approx(0.0, abs=1e-12) and scores["rms"] == 0.0
    expanded = Trajectory(water_box.numbers, water_box.positions * 1.05, water_box.momenta,
                          water_box.dt_fs, cell=water_box.cell * 1.05)
    scores = distribution_scores(water_box, expanded, lags_fs=(40.0,))
    assert scores["gr_js_bits_O-O"] > 1e-3 and scores["gr_rms_O-O"] > 0.05
    assert {"gr_js_bits_H-H", "gr_rms_O-H", "hr_js_bits"} <= set(scores)
    cluster = Trajectory(water_box.numbers, water_box.positions, water_box.momenta,
                         water_box.dt_fs)
    assert not any(k.startswith("gr_") for k in distribution_scores(cluster, cluster, (40.0,)))


def test_report_of_a_periodic_trajectory_has_g_of_r_and_density(water_box, tmp_path) -> None:
    prediction = classical_reconstruction(water_box, 4, "cubic")
    np.testing.assert_array_equal(prediction.cell, water_box.cell)
    out = tmp_path / "report"
    scores = analyze(water_box, prediction, out)
    assert set(scores) == set(SCORE_KEYS)
    assert scores["figures"]["rdf"] == RDF_FIGURE and (out / RDF_FIGURE).stat().st_size > 10_000
    pairs = scores["rdf"]["pairs"]
    assert list(pairs) == ["O-O", "O-H", "H-H"]
    assert all(0 <= s["js_bits"] < 0.05 and s["rms"] >= 0 for s in pairs.values())
    assert scores["density"]["reference"]["g_cm3"] == pytest.approx(0.997, rel=1e-3)
    assert scores["density"]["prediction"] == scores["density"]["reference"]
    report = (out / "report.md").read_text()
    assert "## Radial distribution functions (periodic cell)" in report
    assert f"]({RDF_FIGURE})" in report
    assert f"| O-O | {pairs['O-O']['js_bits']:.3e} | {pairs['O-O']['rms']:.4f} |" in report
    assert "| reference | 0.9970 |" in report
    assert any("no minimum image" in note for note in scores["notes"])
    assert json.loads((out / "scores.json").read_text()) == scores


def test_cli_analyze_prints_the_density_and_one_sided_cells_get_a_note(
        water_box, tmp_path: Path, capsys) -> None:
    ref, pred = tmp_path / "ref.npz", tmp_path / "pred.extxyz"
    write_trajectory(water_box, ref)
    write_trajectory(classical_reconstruction(water_box, 4, "linear"), pred)
    assert main(["analyze", "--reference", str(ref), "--prediction", str(pred),
                 "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "periodic cell: density 0.9970 g/cm³ (reference), 0.9970 (prediction)" in printed
    assert "g(r) JS O-O" in printed
    cluster = tmp_path / "cluster.npz"
    write_trajectory(Trajectory(water_box.numbers, water_box.positions, water_box.momenta,
                                water_box.dt_fs), cluster)
    out = tmp_path / "b"
    scores = analyze(water_box, read_trajectory(cluster), out)
    assert scores["rdf"] is None and scores["density"] is None
    assert not (out / RDF_FIGURE).exists()
    assert any("Only the reference has a periodic cell" in note for note in scores["notes"])
