"""MD integrated by i-PI, with forces from an ASE calculator served over i-PI's socket protocol.

i-PI 3 runs in this process (``ipi.scripting.InteractiveSimulation``, from an XML input built
here); the calculator answers i-PI as an ASE ``SocketClient`` in a thread of the same process, on
a unix socket whose name is unique to the run (or an inet port). The engine advances any number
of steps at a time and then exposes positions, momenta, forces and potential energy in ASE units,
so a driver uses it like the ASE engine.

A force client that never connects, or disconnects or dies, ends the run with ``IPIClientError``
after ``connect_timeout_s`` (at once when the engine's own client thread dies): never a hang.
i-PI's restart file is written to the output folder (``get_state`` and ``close``).

i-PI keeps process-wide state (its soft-exit handler, which also takes over SIGINT/SIGTERM
while it runs), so one engine runs at a time per process, created in the main thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import BaseCalculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.calculators.socketio import SocketClient, actualunixsocketname

from hybridmd.config import DynamicsConfig, IPIEngineConfig
from hybridmd.engines.ase_md import internal_degrees_of_freedom
from hybridmd.errors import SimulationError
from hybridmd.units import KB

log = logging.getLogger(__name__)

#: name of i-PI's restart file in the output folder
RESTART_NAME = "RESTART"

#: a molecule in vacuum sits in this cubic box (Å); i-PI needs a cell, the forces ignore it
_BOX_A = 50.0
#: how far from i-PI's upper-triangular cell matrix a periodic cell may be (Å)
_CELL_TOL_A = 1e-6

_WATCH_INTERVAL_S = 0.05

_active_engine: IPIEngine | None = None


class IPIClientError(SimulationError):
    """The force client of an i-PI run did not connect, disconnected or failed."""


def resets_are_disconnections() -> None:
    """Make i-PI read a connection reset while it receives forces as the client's
    disconnection, which it handles (the client is dropped, its request handed on).

    i-PI 3.3 turns a timeout or a short read into ``Disconnected`` there but lets a reset (a
    client that died mid-step and closed its socket with data unread) escape its polling
    thread, which then ends with a traceback on stderr. Installed once per process, on i-PI's
    socket driver class.
    """
    from ipi.interfaces import sockets

    for name in ("_recv_forces_bulk", "_recv_forces_bulk_batch"):
        original = getattr(sockets.Driver, name, None)
        if original is None or getattr(original, "_hybridmd_resets", False):
            continue

        def receive(self: Any, *args: Any, _original: Any = original) -> Any:
            try:
                return _original(self, *args)
            except ConnectionError as exc:
                log.debug("i-PI: the force client's connection was reset: %s", exc)
                raise sockets.Disconnected() from exc

        receive._hybridmd_resets = True  # type: ignore[attr-defined]
        setattr(sockets.Driver, name, receive)


def _ipi_units() -> dict[str, float]:
    """Factors from i-PI's atomic units to ASE units (Å, eV, eV/Å, amu·Å/ASE time)."""
    from ipi.utils.units import unit_to_user

    return {kind: unit_to_user(kind, "ase", 1.0)
            for kind in ("length", "energy", "force", "momentum", "mass")}


def unique_socket_name() -> str:
    """A unix socket name no other run uses: hybridmd-<pid>-<random>."""
    return f"hybridmd-{os.getpid()}-{uuid.uuid4().hex[:10]}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _thermostat_xml(dyn: DynamicsConfig, thermostat: str) -> str:
    if thermostat == "nve":
        return ""
    # svr couples to the kinetic energy with tau; langevin and pile_l (the centroid mode of
    # one bead) damp momenta with the friction of the dynamics section, as the ASE engine does
    tau_fs = dyn.tau_fs if thermostat == "svr" else 1.0 / dyn.friction_per_fs
    return (f"<thermostat mode='{thermostat}'><tau units='femtosecond'> {tau_fs!r} </tau>"
            "</thermostat>")


def ipi_cell(atoms: Atoms) -> np.ndarray:
    """i-PI's cell matrix (Å; the cell vectors as columns, upper triangular) of a periodic
    system, or a 50 Å cube for a molecule in vacuum (the forces ignore it). A ValueError for a
    periodic cell i-PI cannot hold as it is: its first vector not along x or its second not
    in the xy plane."""
    if not any(atoms.pbc):
        return np.eye(3) * _BOX_A
    h = atoms.cell.array.T
    if np.abs(np.tril(h, -1)).max() > _CELL_TOL_A:
        raise ValueError(
            "i-PI needs the cell's first vector along x and its second in the xy plane; "
            "turn the structure into that orientation (with ASE: atoms.set_cell("
            "atoms.cell.standard_form()[0], scale_atoms=True)) or use engine: ase")
    return np.triu(h)


def build_ipi_xml(atoms: Atoms, dyn: DynamicsConfig, cfg: IPIEngineConfig, address: str,
                  port: int | None, output_prefix: str, fixcom: bool = True) -> str:
    """i-PI input: socket force field, NVE or NVT, seed, no i-PI outputs; the system's
    periodic cell, or a large box around a molecule in vacuum. ``fixcom``: i-PI removes the
    centre-of-mass motion at every step (off where momenta come from outside each segment).

    Masses are ASE's, so that momenta and kinetic energies agree with the ASE engine's.
    Positions are never wrapped (``pbc='false'`` on the socket): each atom keeps its
    continuous path, as the ASE engine's do; the client gets the cell with them.
    """
    from ipi.engine.beads import Beads
    from ipi.engine.cell import Cell
    from ipi.inputs.beads import InputBeads
    from ipi.inputs.cell import InputCell

    units = _ipi_units()
    beads = Beads(nbeads=1, natoms=len(atoms))
    beads.q = atoms.positions.flatten() / units["length"]
    beads.names = np.array(atoms.get_chemical_symbols())
    beads.m = atoms.get_masses() / units["mass"]
    input_beads = InputBeads()
    input_beads.store(beads)
    input_cell = InputCell()
    input_cell.store(Cell(h=ipi_cell(atoms) / units["length"]))
    ensemble = "nve" if cfg.thermostat == "nve" else "nvt"
    temperature = ("" if ensemble == "nve" else
                   f"<ensemble><temperature units='kelvin'> {dyn.temperature_K!r} "
                   "</temperature></ensemble>")
    inet_port = f"<port> {port} </port>" if cfg.socket == "inet" else ""
    return f"""
<simulation verbosity='quiet' safe_stride='1000000' threading='false'>
  <total_steps> 1 </total_steps>
  <prng><seed> {dyn.seed} </seed></prng>
  <ffsocket name='hybridmd' mode='{cfg.socket}' pbc='false'>
    <address> {address} </address>{inet_port}
    <latency> 1e-4 </latency>
    <timeout> 0 </timeout>
  </ffsocket>
  <output prefix='{output_prefix}'> </output>
  <system>
    {input_beads.write("beads")}
    {input_cell.write("cell")}
    <forces><force forcefield='hybridmd'> </force></forces>
    {temperature}
    <motion mode='dynamics'>
      <fixcom> {'true' if fixcom else 'false'} </fixcom>
      <dynamics mode='{ensemble}'>
        <timestep units='femtosecond'> {dyn.timestep_fs!r} </timestep>
        {_thermostat_xml(dyn, cfg.thermostat)}
      </dynamics>
    </motion>
  </system>
</simulation>
"""


class _ClientThread(threading.Thread):
    """An ASE ``SocketClient`` answering i-PI with ``calculator``; keeps what ended it."""

    def __init__(self, atoms: Atoms, calculator: BaseCalculator, unixsocket: str | None,
                 host: str, port: int | None):
        super().__init__(name="hybridmd-ipi-client", daemon=True)
        self.atoms = atoms.copy()
        self.atoms.calc = calculator
        self.kwargs = {"unixsocket": unixsocket, "host": host, "port": port}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            SocketClient(**self.kwargs).run(self.atoms)
        except BaseException as exc:  # reported by the engine's watchdog
            self.error = exc


class IPIEngine:
    """One molecule advanced by i-PI; state read back in ASE units after each ``advance``.

    ``atoms`` holds the initial positions and momenta and (unless ``calculator`` is given) the
    calculator; after every ``advance`` it holds the new positions and momenta, and a
    single-point calculator with i-PI's forces and energy, so it can be written as a frame.
    With ``start_client=False`` no client is started here: an external one (e.g.
    ``hybridmd serve``) must connect to ``socket_path`` / ``address``:``port``.
    """

    def __init__(self, atoms: Atoms, dynamics: DynamicsConfig, cfg: IPIEngineConfig,
                 directory: Path, calculator: BaseCalculator | None = None,
                 start_client: bool = True, fixcom: bool = True,
                 known: tuple[np.ndarray, float] | None = None):
        global _active_engine
        if _active_engine is not None:
            raise RuntimeError("an i-PI engine is already running in this process; close it "
                               "first (i-PI keeps process-wide state)")
        from ipi.scripting import InteractiveSimulation

        resets_are_disconnections()
        self.atoms = atoms
        self.dynamics = dynamics
        self.cfg = cfg
        self.directory = Path(directory)
        self.restart_path = self.directory / RESTART_NAME
        self._units = _ipi_units()
        calculator = calculator or atoms.calc
        if calculator is None and start_client:
            raise ValueError("the i-PI engine needs a calculator to serve (atoms.calc)")
        if cfg.socket == "unix":
            self.address = cfg.address or unique_socket_name()
            self.port: int | None = None
            self.socket_path = actualunixsocketname(self.address)
            self.where = f"unix socket {self.socket_path}"
        else:
            self.address = cfg.address or "localhost"
            self.port = cfg.port or _free_port(self.address)
            self.socket_path = None
            self.where = f"inet socket {self.address}:{self.port}"
        # i-PI only counts the centre of mass out (fixcom); a molecule started without rotation
        # keeps none under NVE and SVR, so these move in the internal degrees of freedom only
        n = len(atoms)
        self.ndof = (internal_degrees_of_freedom(atoms) if cfg.thermostat in ("nve", "svr")
                     else 3 * n - 3)
        self._abort_reason: str | None = None
        self._busy = threading.Event()
        self._closed = False
        self.step_count = 0

        self.directory.mkdir(parents=True, exist_ok=True)
        xml = build_ipi_xml(atoms, dynamics, cfg, self.address, self.port,
                            str(self.directory / "ipi"), fixcom)
        log.info("starting i-PI (%s, thermostat %s) on %s", "NVE" if cfg.thermostat == "nve"
                 else "NVT", cfg.thermostat, self.where)
        self.sim = InteractiveSimulation(xml)
        _active_engine = self
        self.sim.chk.filename = str(self.restart_path)
        self.sim.chk._continued = True  # overwrite, no '#RESTART#0#' backups (absolute path)
        system = self.sim.syslist[0]
        self._system = system
        if cfg.thermostat == "svr":
            system.motion.thermostat.ndof = float(self.ndof)
        system.beads.p[0] = (atoms.get_momenta().flatten() / self._units["momentum"])
        self._forcefield = self.sim.fflist["hybridmd"]

        self.client: _ClientThread | None = None
        if start_client:
            self.client = _ClientThread(atoms, calculator, self.address
                                        if cfg.socket == "unix" else None,
                                        self.address, self.port)
            self.client.start()
        self._stop_watch = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="hybridmd-ipi-watchdog",
                                          daemon=True)
        self._watchdog.start()
        if known is not None:
            self._inject(*known)
        try:
            self._guarded(self._sync)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ stepping

    def advance(self, steps: int = 1) -> None:
        """Advance ``steps`` MD steps; the new state is then in ``atoms`` and the properties."""
        if self._closed:
            raise RuntimeError("the i-PI engine is closed")
        if steps < 1:
            raise ValueError(f"steps must be positive, got {steps}")
        self._guarded(self._run, steps)
        self.step_count += steps
        self._guarded(self._sync)

    def step(self) -> None:
        """Advance one MD step (the interface of the ASE engine)."""
        self.advance(1)

    def _run(self, steps: int) -> None:
        # InteractiveSimulation.run without its RESTART write per call (see get_state)
        from ipi.engine.simulation import Simulation as IPISimulation

        sim = self.sim
        sim.tsteps = sim.step + steps
        IPISimulation.run(sim, write_outputs=False)
        sim.step += 1

    def _guarded(self, func: Any, *args: Any) -> None:
        """Run an i-PI call that may wait for forces; turn i-PI's soft exit into an error."""
        from ipi.utils.softexit import softexit

        self._busy.set()
        chatter = io.StringIO()
        try:
            # i-PI prints its soft exit on stdout whatever its verbosity; the run says why
            # it stopped in its own error line, and the chatter goes to the debug log
            with contextlib.redirect_stdout(chatter):
                func(*args)
        except SystemExit:
            raise IPIClientError(self._abort_reason or "i-PI stopped (soft exit requested, "
                                 "e.g. by a signal)") from None
        finally:
            self._busy.clear()
            if chatter.getvalue():
                log.debug("i-PI: %s", chatter.getvalue().strip())
        if softexit.triggered:
            raise IPIClientError(self._abort_reason or "i-PI stopped (soft exit requested)")

    def place(self, positions: np.ndarray, momenta: np.ndarray,
              known: tuple[np.ndarray, float] | None = None) -> None:
        """Set i-PI's state to (positions, momenta) in ASE units. i-PI asks the client for
        the forces there unless ``known`` gives them (forces, energy) from the same
        calculator. The state is a function of the given numbers alone, so a run that starts
        again from a saved frame continues exactly as one that never stopped."""
        u = self._units
        beads = self._system.beads
        beads.q[0] = np.asarray(positions, dtype=float).flatten() / u["length"]
        if known is not None:
            self._inject(*known)
        beads.p[0] = np.asarray(momenta, dtype=float).flatten() / u["momentum"]
        self._guarded(self._sync)

    def _inject(self, forces: np.ndarray, energy: float) -> None:
        """Give i-PI the forces and energy at its current positions, so it does not ask."""
        u = self._units
        bead = self._system.forces.mforces[0]._forces[0]
        # read what the forces depend on, as a request would: a dependency left stale stops
        # i-PI's invalidation walk there, and the forces would never be asked for again
        bead.atoms.q  # noqa: B018
        bead.cell.h  # noqa: B018
        extra = {"raw": ""}
        bead._ufvx.set([energy / u["energy"],
                        np.asarray(forces, dtype=float).flatten() / u["force"],
                        np.zeros((3, 3)), extra], manual=False)

    def _sync(self) -> None:
        """Copy i-PI's state into ``atoms`` in ASE units (forces at the current positions)."""
        system, u = self._system, self._units
        self._positions = np.array(system.beads.q[0]).reshape(-1, 3) * u["length"]
        self._momenta = np.array(system.beads.p[0]).reshape(-1, 3) * u["momentum"]
        self._forces = np.array(system.forces.f[0]).reshape(-1, 3) * u["force"]
        self._energy = float(system.forces.pots[0]) * u["energy"]
        conserved = system.properties["conserved"][0] * u["energy"]
        kinetic = 0.5 * float(np.sum(self._momenta**2 / self.atoms.get_masses()[:, None]))
        self._thermostat_energy = conserved - self._energy - kinetic
        atoms = self.atoms
        atoms.set_positions(self._positions)
        atoms.set_momenta(self._momenta)
        atoms.calc = SinglePointCalculator(atoms, energy=self._energy,
                                           forces=self._forces.copy())

    # ------------------------------------------------------------------ the watchdog

    def _watch(self) -> None:
        """Abort i-PI when no client is there to answer within the timeout, or ours died."""
        timeout = self.cfg.connect_timeout_s
        waiting_since: float | None = None
        while not self._stop_watch.wait(_WATCH_INTERVAL_S):
            if not self._busy.is_set():
                waiting_since = None
                continue
            client = self.client
            if client is not None and not client.is_alive():
                if isinstance(client.error, SimulationError):  # it says what and where
                    self._abort(f"i-PI's force client stopped: {client.error}")
                    return
                reason = repr(client.error) if client.error else "it ended"
                if isinstance(client.error, (ConnectionError, FileNotFoundError)):
                    reason += f"; check that nothing else uses {self.where}"
                self._abort(f"the force client on {self.where} stopped: {reason}")
                return
            if self._forcefield.socket.clients:
                waiting_since = None
                continue
            waiting_since = waiting_since or time.monotonic()
            if time.monotonic() - waiting_since > timeout:
                self._abort(
                    f"no force client connected to i-PI on {self.where} within "
                    f"{timeout:g} s (engine.connect_timeout_s); check that the client (ASE "
                    "SocketClient, `hybridmd serve`) runs, uses the same socket and did not "
                    "crash")
                return

    def _abort(self, reason: str) -> None:
        from ipi.utils.softexit import softexit

        self._abort_reason = reason
        log.debug("%s", reason)  # raised in the main thread: the run's one error line
        # runs i-PI's clean-up (restart file, sockets); the main thread, waiting for forces,
        # sees the soft exit within a second and leaves i-PI with SystemExit
        softexit.cleanup(status="bad", message=f" @hybridmd: {reason}")

    # ------------------------------------------------------------------ the state

    @property
    def positions(self) -> np.ndarray:
        """Positions, Å."""
        return self._positions.copy()

    @property
    def momenta(self) -> np.ndarray:
        """Momenta in ASE units (amu·Å/ASE time), as ``Atoms.get_momenta``."""
        return self._momenta.copy()

    @property
    def forces(self) -> np.ndarray:
        """Forces at the current positions, eV/Å."""
        return self._forces.copy()

    @property
    def energy(self) -> float:
        """Potential energy at the current positions, eV."""
        return self._energy

    def temperature(self) -> float:
        """Kinetic temperature over the degrees of freedom the dynamics moves, K."""
        kinetic = 0.5 * float(np.sum(self._momenta**2 / self.atoms.get_masses()[:, None]))
        return 2.0 * kinetic / (self.ndof * KB)

    def thermostat_energy(self) -> float:
        """Energy i-PI's thermostat has taken out so far (eV), sign as in E_cons."""
        return self._thermostat_energy

    def conserved_energy(self, potential_energy: float) -> float:
        """E_pot + E_kin + the thermostat's account (i-PI's conserved quantity), eV."""
        return potential_energy + self.atoms.get_kinetic_energy() + self._thermostat_energy

    def get_state(self) -> dict[str, Any]:
        """Write i-PI's restart file; return where it is (JSON-able)."""
        if not self._closed:
            self._write_restart()
        return {"ipi_restart": str(self.restart_path), "step": self.step_count}

    def _write_restart(self) -> None:
        chk = self.sim.chk
        chk.store()
        chk.status.step.store(self.sim.step)  # steps done: where `i-pi RESTART` continues
        chk.status.total_steps.store(max(self.dynamics.n_steps, self.sim.step))
        chk.write(store=False)

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Write the restart file, stop i-PI and the client, remove the socket file."""
        global _active_engine
        if self._closed:
            return
        from ipi.utils.softexit import softexit

        try:
            if softexit.triggered:
                with contextlib.redirect_stdout(io.StringIO()):
                    softexit.cleanup()  # what an abort left pending (i-PI's restart file)
            else:
                self._write_restart()
        finally:
            self._closed = True
            self._stop_watch.set()
            self.sim.stop()  # closes the server socket (the client sees EXIT) and its file
            if self.client is not None:
                self.client.join(timeout=10)
                if self.client.is_alive():
                    log.warning("the force client thread did not stop")
            self._watchdog.join(timeout=5)
            softexit.reset()  # i-PI's soft exit is process-wide: leave it clean for the next
            if self.socket_path and os.path.exists(self.socket_path):
                os.unlink(self.socket_path)
            _active_engine = None

    def __enter__(self) -> IPIEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(atoms: Atoms, calculator: BaseCalculator, address: str | None = None,
          host: str | None = None, port: int | None = None, timeout_s: float = 60.0) -> int:
    """Answer an i-PI server's force requests with ``calculator`` until it sends EXIT.

    ``address`` is the unix socket name of i-PI's ``<ffsocket mode='unix'><address>``;
    ``host``/``port`` an inet socket instead. Connecting is retried for ``timeout_s`` seconds.
    Returns the number of force evaluations.
    """
    if (address is None) == (port is None):
        raise ValueError("give a unix socket name, or a host and port")
    where = (f"unix socket {actualunixsocketname(address)}" if address is not None
             else f"inet socket {host or 'localhost'}:{port}")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client = SocketClient(host=host or "localhost", port=port, unixsocket=address)
            break
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > deadline:
                raise IPIClientError(
                    f"no i-PI server on {where} after {timeout_s:g} s ({exc.strerror}); check "
                    "that i-PI runs and that its <ffsocket> uses this "
                    + ("<address> (unix sockets live at /tmp/ipi_<address>)"
                       if address is not None else "<address> and <port> with mode='inet'")
                ) from None
            time.sleep(0.1)
    log.info("connected to i-PI on %s", where)
    atoms = atoms.copy()
    atoms.calc = calculator
    calls = 0
    for _ in client.irun(atoms, use_stress=False):
        calls += 1
    log.info("i-PI closed the connection after %d force evaluations", calls)
    return calls
