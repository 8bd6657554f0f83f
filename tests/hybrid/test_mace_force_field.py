"""The MACE force field: real mace-torch fits to real data (MP2 water hexamer MD, and a periodic
box of 8 waters from GFN1-xTB MD), kept small: a few epochs of small models."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from ase import Atoms

from hybridmd.hybrid.force_field import FitSettings, fit_force_field
from hybridmd.hybrid.mace_force_field import MaceModel, MaceSettings, fit_mace
from hybridmd.units import KCAL_MOL

from conftest import DATA

#: quick: enough to learn, not to learn well
SMALL = MaceSettings(epochs=3)


def _forces(calc, numbers, positions, cell=None, pbc=False) -> np.ndarray:
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
    atoms.calc = calc
    return atoms.get_forces()


def _spread(model: MaceModel, numbers, positions) -> float:
    """Mean over frames of the largest force difference between the main model and another
    member, eV/Å."""
    main, *others = model.calculators()
    out = []
    for r in positions:
        f0 = _forces(main, numbers, r)
        out.append(max(np.abs(_forces(c, numbers, r) - f0).max() for c in others))
    return float(np.mean(out))


@pytest.fixture(scope="module")
def hexamer():
    with np.load(DATA / "6h2o_orca_mp2_md_300k.npz") as d:
        return d["R"], d["F"] * KCAL_MOL, d["E_potential"] * KCAL_MOL, d["z"]


@pytest.fixture(scope="module")
def hexamer_model(hexamer):
    """Fitted to the first 80 frames (8 of them held out), a committee of three."""
    r, f, e, z = hexamer
    return fit_mace(r[:80], f[:80], e[:80], z, SMALL, version=1)


@pytest.fixture(scope="module")
def box():
    with np.load(DATA / "8h2o_box_gfn1xtb_md_300k.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def box_model(box):
    return fit_mace(box["R"], box["F"], box["E"], box["z"],
                    MaceSettings(epochs=3, committee=1),
                    version=1, cell=box["cell"], pbc=True)


def test_a_fit_is_a_deterministic_function_of_frames_and_seed(hexamer, hexamer_model):
    """Bit for bit, also when the second fit runs in a thread (as a learner may) while this
    one computes forces with another version: neither disturbs the other."""
    r, f, e, z = hexamer
    small = MaceSettings(channels=8, epochs=2, batch_size=5, committee=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a = fit_mace(r[:20], f[:20], e[:20], z, small, version=1)
        assert torch.get_num_threads() == 2  # the fit's one thread, then the caller's again
        torch.set_num_threads(small.threads)  # torch has one count for the process
        calc = hexamer_model.calculators()[0]
        expected = [_forces(calc, z, r[i]) for i in (50, 51)]
        with ThreadPoolExecutor(1) as pool:
            fitting = pool.submit(fit_mace, r[:20], f[:20], e[:20], z, small, version=1)
            calls = 0
            while not fitting.done() or calls < 2:
                assert np.array_equal(_forces(calc, z, r[50 + calls % 2]),
                                      expected[calls % 2])
                calls += 1
            b = fitting.result()
    finally:
        torch.set_num_threads(threads)
    for sa, sb in zip(a.states, b.states, strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    for ca, cb in zip(a.calculators(), b.calculators(), strict=True):
        assert np.array_equal(_forces(ca, z, r[50]), _forces(cb, z, r[50]))
    other = fit_mace(r[:20], f[:20], e[:20], z, MaceSettings(
        channels=8, epochs=2, batch_size=5, committee=1, seed=1), version=1)
    assert not np.array_equal(_forces(other.calculators()[0], z, r[50]),
                              _forces(a.calculators()[0], z, r[50]))


def test_the_main_model_learns_the_forces(hexamer, hexamer_model):
    """Finite forces and energies, a validation error well below the forces' spread, and the
    same text shape as an sGDML version's."""
    r, f, e, z = hexamer
    m = hexamer_model
    assert len(m.trained) == 72 and m.frames == 80 and len(m.states) == 3
    assert m.validation_force_mae < 0.25 * np.abs(f[:80]).mean()
    assert m.validation_energy_mae < np.abs(e[:80] - e[:80].mean()).mean()
    atoms = Atoms(numbers=z, positions=r[200])
    atoms.calc = m.calculators()[0]
    assert np.isfinite(atoms.get_forces()).all() and np.isfinite(atoms.get_potential_energy())
    assert m.describe() == (f"version 1: 72 of 80 frames, validation force error "
                            f"{m.validation_force_mae:.3g} eV/Å")


def test_more_passes_over_the_frames_learn_the_forces_better(hexamer):
    """`learn.epochs`: the same frames and seed, four passes against one: a lower force error
    on the frames held out."""
    r, f, e, z = hexamer
    one, four = (fit_mace(r[:40], f[:40], e[:40], z, MaceSettings(
        channels=8, epochs=n, committee=1), version=1) for n in (1, 4))
    assert four.validation_force_mae < 0.8 * one.validation_force_mae


def test_a_version_pickles_without_modules_and_predicts_the_same(hexamer, hexamer_model):
    r, _, _, z = hexamer
    before = _forces(hexamer_model.calculators()[0], z, r[130])
    copy = pickle.loads(pickle.dumps(hexamer_model))
    assert copy._modules is None
    assert np.array_equal(_forces(copy.calculators()[0], z, r[130]), before)


def test_the_committee_disagrees_where_the_data_do_not_reach(hexamer, hexamer_model):
    """On frames it was fitted to the committee agrees; on the same frames with every atom
    moved 0.1 Å at random (bonds stretched beyond anything seen) it parts."""
    r, _, _, z = hexamer
    seen = r[hexamer_model.trained[::20]]
    far = seen + np.random.default_rng(0).normal(0.0, 0.1, seen.shape)
    assert _spread(hexamer_model, z, far) > 2 * _spread(hexamer_model, z, seen)


def test_periodic_forces_do_not_depend_on_where_the_image_is(box, box_model):
    """A molecule moved across the boundary by a cell vector, wrapped or not: the same forces;
    and the boundary matters (the open cluster's forces differ)."""
    z, cell, r = box["z"], box["cell"], box["R"][-1]
    calc = box_model.calculators()[0]
    moved = r.copy()
    moved[:3] += cell[0]  # the first water, one box length along x
    atoms = Atoms(numbers=z, positions=moved, cell=cell, pbc=True)
    atoms.wrap()
    ref = _forces(calc, z, r, cell, True)
    assert np.isfinite(ref).all()
    assert np.abs(_forces(calc, z, moved, cell, True) - ref).max() < 1e-9
    assert np.abs(_forces(calc, z, atoms.positions, cell, True) - ref).max() < 1e-9
    assert np.abs(_forces(calc, z, r) - ref).max() > 1e-3
    assert box_model.validation_force_mae < 0.5 * np.abs(box["F"]).mean()


def test_a_warm_start_continues_from_the_previous_weights(hexamer, hexamer_model):
    """No epochs: the previous version's weights (atomic energies refitted to the frames);
    one epoch on the frames so far (as the learner hands them): better than one from
    scratch."""
    r, f, e, z = hexamer
    upto = slice(0, 120)
    same = fit_mace(r[upto], f[upto], e[upto], z, MaceSettings(epochs=0), version=2,
                    start_from=hexamer_model)
    for old, kept in zip(hexamer_model.states, same.states, strict=True):
        assert all(torch.equal(old[k], kept[k]) for k in old if "atomic_energies" not in k)
    one = MaceSettings(epochs=1, committee=1)
    warm = fit_mace(r[upto], f[upto], e[upto], z, one, version=2, start_from=hexamer_model)
    cold = fit_mace(r[upto], f[upto], e[upto], z, one, version=2)
    assert warm.validation_force_mae < 0.8 * cold.validation_force_mae


def test_a_model_file_is_fine_tuned_or_refused(hexamer, hexamer_model, box, tmp_path):
    """A MACE model file (here: the hexamer's main model, saved as mace saves one) starts a
    fit to the water box; frames with carbon are refused in one line."""
    path = tmp_path / "water.model"
    torch.save(hexamer_model.modules[0], path)
    one = MaceSettings(epochs=1, committee=1)
    tuned = fit_mace(box["R"][:30], box["F"][:30], box["E"][:30], box["z"], one, version=1,
                     cell=box["cell"], pbc=True, start_from=path)
    assert tuned.elements == [1, 8] and np.isfinite(tuned.validation_force_mae)
    with np.load(DATA / "ABC-4MeOH-300K-1-gdml.npz") as d:
        r, f, e, z = d["R"][:8], d["F"][:8] * KCAL_MOL, d["E"][:8] * KCAL_MOL, d["z"]
    with pytest.raises(ValueError) as err:
        fit_mace(r, f, e, z, one, version=1, start_from=path)
    assert "\n" not in str(err.value) and " C " in f" {str(err.value)} ".replace(",", " ")


def test_an_sgdml_version_offers_the_same_calculators(hexamer):
    """``LearnedModel.calculators()``: one ASE calculator per model, main first."""
    r, f, e, z = hexamer
    model = fit_force_field(r[:12], f[:12], e[:12], z, FitSettings(max_frames=8), version=1)
    calcs = model.calculators()
    assert len(calcs) == 3
    _, forces = model.force_fields[0](r[20][None])
    assert np.allclose(_forces(calcs[0], z, r[20]), forces[0])


def test_a_forecast_that_takes_a_water_out_of_the_models_reach_is_refused(hexamer,
                                                                        hexamer_model):
    """A water of the hexamer sent off at 0.1 Å/fs ends a 10 fs segment farther from the rest
    than the simulated frames ever had it (and the MACE model feels little of what its frames
    did not show), so the forecast is refused ("beyond reach"); the same forecast is taken once
    the version was fitted to simulated frames that had that water farther out and back, but
    not while it is still out, nor when only a check labeled it there (a check labels where
    forecasts went), and a forecast at rest is taken."""
    from dataclasses import replace

    from ase.data import atomic_masses
    from ase.units import fs

    from hybridmd.hybrid.dataset import ExpensiveFrames
    from hybridmd.hybrid.predictors import LearnedForceField
    from hybridmd.periodic import Cell
    from hybridmd.streaming.frames import CoarseFrame

    r, f, e, z = hexamer
    start = r[0]
    centre = start.mean(axis=0)
    oxygens = np.flatnonzero(z == 8)
    far = oxygens[np.argmax(np.linalg.norm(start[oxygens] - centre, axis=1))]
    water = [far] + [h for h in np.flatnonzero(z == 1)
                     if np.linalg.norm(start[h] - start[far]) < 1.2]
    masses = atomic_masses[z]
    away = (start[far] - centre) / np.linalg.norm(start[far] - centre)
    momenta = np.zeros_like(start)
    momenta[water] = 0.1 / fs * away * masses[water, None]
    apart = start.copy()
    apart[water] += 1.5 * away
    out_and_back = np.vstack([r[:78], apart[None], start[None]])

    def forecast(labeled: np.ndarray, p: np.ndarray, checked: int | None = None,
                 space_A: float = np.inf) -> object:
        frames = ExpensiveFrames(len(z))
        for k, frame in enumerate(labeled):
            frames.add(frame[None], f[:1], e[:1], "check" if k == checked else "simulation")
        ff = LearnedForceField(z, masses, Cell(np.zeros((3, 3)), (False,) * 3), 20, 0.5,
                               SMALL, None, frames, space_A=space_A)
        ff.model = replace(hexamer_model, trained=np.arange(len(labeled)))  # fitted to all
        return ff.forecast(CoarseFrame(0, 0.0, start, p), 0.5)

    def refused(outcome: object) -> bool:
        return isinstance(outcome, str) and outcome.startswith("beyond reach")

    assert refused(forecast(r[:80], momenta))
    # where the system has no room beyond the model's reach (a filled periodic cell) no
    # group can leave, and the guard is not kept
    assert not refused(forecast(r[:80], momenta, space_A=hexamer_model.reach - 0.1))
    assert not refused(forecast(out_and_back, momenta))
    assert refused(forecast(out_and_back[:-1], momenta))  # the water still out
    assert refused(forecast(out_and_back, momenta, checked=78))
    # at rest, within the gaps the calculator's frames went out to and came back from
    assert not isinstance(forecast(np.vstack([r[:80], start[None]]), np.zeros_like(start)), str)


def test_mace_is_imported_without_a_word(hexamer_model, tmp_path) -> None:
    """A run's stderr holds its own lines, not mace's missing-cuequivariance line nor e3nn's
    weights-only warning: the driver imports mace quietly before a version comes back from
    the learner (unpickling one imports mace)."""
    import subprocess
    import sys

    version = tmp_path / "version.pkl"
    version.write_bytes(pickle.dumps(hexamer_model))
    program = ("import pickle, sys; from hybridmd.hybrid.mace_force_field import import_mace; "
               f"import_mace(); pickle.loads(open({str(version)!r}, 'rb').read())")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_a_version_knows_its_energy_zero(hexamer_model):
    """The mean signed energy error on its validation frames: what an energy check removes
    (within the mean absolute error, which bounds it)."""
    assert hexamer_model.energy_offset is not None
    assert abs(hexamer_model.energy_offset) <= hexamer_model.validation_energy_mae + 1e-12
