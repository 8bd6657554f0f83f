"""Single-point checks: one expensive call at an ML segment's end instead of a re-simulation.

A monitor re-simulates a whole segment (n calls) to measure one forecast's end-position error;
a check asks the calculator once, at the end frame of an ML segment the learned force field
made, and compares the forces there with the learned ones. Checks are chosen as monitors are
(``hybridmd.hybrid.selection``): a random share of the ML segments, and those whose
uncertainty is among the largest of the recent ones. With ``halve_after`` the random share
follows the model: every ML segment is checked at first, and again after a failed check or a
monitor beyond tolerance (a model that is wrong somewhere is checked everywhere), and each
``halve_after`` passed checks halve the share down to ``fraction``: a model that keeps
passing costs fewer and fewer calls, one that starts failing is caught at once. With ``doubtful``
the loop also checks every forecast whose predicted error is beyond ``switch.disagreement_A``
(which it would otherwise refuse): the model's doubt is where one call teaches it most.

With ``energy_tolerance_eV_atom`` a check also compares energies: the learned model's energy at
the frame minus the calculator's, less the model's own energy zero (its mean error on the
frames it was validated on), per atom. Forces are local and each can be nearly right where
their sum is not: a cluster loosened as a whole by a model that makes its loose shapes too
cheap can pass every force check, and its energy error is where that would show.

A check within the tolerances marks the frame ``checked`` and gives it the
calculator's forces and energy (so a segment simulated from it needs no call at its start);
one beyond rejects the forecast, and the loop simulates that segment instead. Either way the
learner gets the frame: the frames the model is least sure of are the ones a fit learns most
from. With ``refit_on_failure`` a failed check does not wait for the next regular fit and a
shadow forecast that agrees: the loop refits with the new frames at once and goes on in ML,
every segment checked again (the checks, not a re-simulation, decide whether the new version
holds).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms

from hybridmd.config import CheckConfig
from hybridmd.hybrid.ledger import CallLedger
from hybridmd.hybrid.selection import MonitorChoice


@dataclass
class CheckResult:
    """The calculator's forces and energy at a checked frame, and how far the ML was off."""

    forces: np.ndarray
    energy: float
    force_error: float  #: largest per-atom force error of the learned model, eV/Å
    ok: bool
    #: |model - calculator - the model's energy zero| per atom, eV (None: not compared)
    energy_error: float | None = None
    force_ok: bool = True  #: the forces within their tolerance

    @property
    def failed(self) -> str | None:
        """The check that failed: "force check" or "energy check" (None: passed)."""
        if self.ok:
            return None
        return "energy check" if self.force_ok else "force check"


class PointChecks:
    """Chooses the ML segment ends to check and checks them with the driver's calculator."""

    def __init__(self, cfg: CheckConfig, atoms: Atoms, ledger: CallLedger,
                 rng: np.random.Generator):
        self.cfg, self.atoms, self.ledger = cfg, atoms, ledger
        self.choice = MonitorChoice(cfg.fraction, cfg.uncertain_fraction, rng)
        self.rate = 1.0 if cfg.halve_after else cfg.fraction  #: the random share now

    @property
    def enabled(self) -> bool:
        c = self.cfg
        return c.fraction > 0 or c.uncertain_fraction > 0 or c.halve_after > 0

    @property
    def doubtful(self) -> bool:
        """Whether a forecast beyond ``switch.disagreement_A`` is checked, not refused."""
        return self.enabled and self.cfg.doubtful

    def doubts(self, uncertainty: float, disagreement: float) -> bool:
        """Whether a forecast with this predicted error is checked as doubtful."""
        return self.doubtful and uncertainty > disagreement

    def choose(self, uncertainty: float) -> str | None:
        """Whether (and why) the segment with this uncertainty is checked; draws from the
        run's monitor generator only when checks are on, so a run without them is as before."""
        if not self.enabled:
            return None
        self.choice.fraction = self.rate
        return self.choice.choose(uncertainty)

    def alarm(self) -> None:
        """A check failed or a monitor found a segment beyond tolerance: check everything."""
        if self.cfg.halve_after:
            self.rate = 1.0

    def check(self, positions: np.ndarray, forces: np.ndarray, energy: float | None = None,
              energy_zero: float | None = None) -> CheckResult:
        """One expensive call at ``positions``, against the learned ``forces`` (and, with an
        energy tolerance, the learned ``energy`` less the model's ``energy_zero``)."""
        self.atoms.set_positions(positions)
        with self.ledger.charge("checks"):
            true_forces = np.array(self.atoms.get_forces())
            true_energy = float(self.atoms.get_potential_energy())
        error = float(np.linalg.norm(forces - true_forces, axis=1).max())
        force_ok = bool(np.isfinite(error)) and error <= self.cfg.force_tolerance_eV_A
        energy_error = None
        if self.cfg.energy_tolerance_eV_atom and energy is not None and energy_zero is not None:
            energy_error = abs(energy - true_energy - energy_zero) / len(positions)
        ok = force_ok and (energy_error is None
                           or energy_error <= self.cfg.energy_tolerance_eV_atom)
        if not ok:
            self.alarm()
        elif self.cfg.halve_after:
            self.rate = max(self.cfg.fraction, self.rate * 0.5 ** (1 / self.cfg.halve_after))
        return CheckResult(true_forces, true_energy, error, ok, energy_error, force_ok)

    def state_dict(self) -> dict[str, Any]:
        return {**self.choice.state_dict(), "rate": self.rate}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.choice.load_state_dict(state)
        self.rate = state.get("rate", self.rate)
