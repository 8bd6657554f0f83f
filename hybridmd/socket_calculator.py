"""The expensive calculator as an external program that speaks i-PI's socket protocol.

CP2K (``&MOTION &DRIVER``), Quantum ESPRESSO (``pw.x --ipi``), FHI-aims, LAMMPS, VASP and
``hybridmd serve`` all answer force requests as clients of an i-PI socket. ``SocketCalculator``
is the server side as an ASE calculator: it opens the socket, starts the client with the
input's ``command`` (or waits for one the user started), sends positions and cell, and reads
back energy and forces. Each instance has a socket and a client of its own, so a run's
monitors (which build their own calculator) get their own client processes.

What can go wrong ends in one ``SocketClientError`` line naming the socket and the client's
log: no client within ``connect_timeout_s``, a client that exits or drops the connection, an
answer for another number of atoms, a message out of protocol. A started client is put in a
process group of its own and ended with it; it also gets SIGKILL when this process dies
(``PR_SET_PDEATHSIG``), so a killed run leaves no client behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.socketio import IPIProtocol, SocketClosed, actualunixsocketname

from hybridmd.engines.ipi import unique_socket_name
from hybridmd.errors import SimulationError

log = logging.getLogger(__name__)

#: the name of the client's output file in its folder
CLIENT_LOG = "client.log"
#: how often a wait for the client looks whether it is still alive, s
_POLL_S = 0.2
#: how long a client may take to exit after EXIT before it is killed, s
_EXIT_GRACE_S = 5.0
_PR_SET_PDEATHSIG = 1
#: the shell's exit code for a command it cannot find
_NOT_FOUND = 127


class SocketClientError(SimulationError):
    """The i-PI client did not connect, died, or answered out of protocol."""


def _libc_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


#: resolved here, not in the child: between fork and exec only this plain call runs
_PRCTL = _libc_prctl()


def _die_with_parent() -> None:  # pragma: no cover (runs in the child before exec)
    """In the client's process: SIGKILL when the process that started it dies."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


class SocketCalculator(Calculator):
    """Energy and forces from an i-PI socket client (see the module docstring).

    ``command``: a shell command started in a folder of its own (``files`` copied there)
    when the first calculation needs it; ``{address}`` and ``{port}`` in it are replaced by the
    socket's. Without a command, a client started by the user must connect to ``address``
    (unix) or ``port`` (inet). ``box_A``: the cube sent as the cell for a molecule in vacuum,
    the molecule at its centre (a periodic system sends its own cell and positions), as codes
    such as CP2K build their grid from it.
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, command: str | None = None, files: list[Path] | None = None,
                 socket_kind: str = "unix", address: str | None = None,
                 port: int | None = None, connect_timeout_s: float = 60.0,
                 box_A: float = 10.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.command = command
        self.files = [Path(f) for f in files or []]
        self.socket_kind = socket_kind
        self.connect_timeout_s = connect_timeout_s
        self.box_A = box_A
        if socket_kind == "unix":
            self.address = address or unique_socket_name()
            self.port: int | None = None
            self.where = f"unix socket {actualunixsocketname(self.address)}"
        else:
            self.address = address or "localhost"
            self.port = port if port is not None else 0
            self.where = "inet socket (not yet open)"
        self.folder: Path | None = None
        self._server: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._protocol: IPIProtocol | None = None
        self._proc: subprocess.Popen | None = None
        self._log_file: Any = None
        self._failed = False
        self.calls = 0

    # ------------------------------------------------------------------ ASE calculator

    def calculate(self, atoms: Atoms | None = None, properties: Any = ("energy", "forces"),
                  system_changes: Any = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if self._protocol is None:
            self._connect()
        if any(atoms.pbc):
            cell, positions = atoms.cell.array, atoms.positions
        else:  # the molecule in the middle of its box, where a grid code wants it
            cell = np.eye(3) * self.box_A
            positions = atoms.positions - atoms.positions.mean(axis=0) + 0.5 * self.box_A
        try:
            energy, forces = self._exchange(positions, cell)
        except SocketClientError:
            self.close(failed=True)
            raise
        if forces.shape != (len(atoms), 3):
            self.close(failed=True)
            raise SocketClientError(
                f"the i-PI client on {self.where} answered with forces on {len(forces)} "
                f"atoms for a system of {len(atoms)}; give the client the same structure "
                f"(atoms in the same order){self._see_log()}")
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            raise SocketClientError(f"the i-PI client on {self.where} answered with a "
                                    f"non-finite energy or force{self._see_log()}")
        self.calls += 1
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}

    def _exchange(self, positions: np.ndarray, cell: np.ndarray) -> tuple[float, np.ndarray]:
        """One force request; every failure of the connection as a ``SocketClientError``."""
        protocol = self._protocol
        assert protocol is not None
        try:
            status = protocol.status()
            if status == "NEEDINIT":
                protocol.sendinit()
                status = protocol.status()
            self._expect(status, "READY")
            protocol.sendposdata(cell, np.linalg.inv(cell).T, positions)
            self._expect(protocol.status(), "HAVEDATA")
            # ASE's IPIProtocol.sendrecv_force, with the wait for a client that computes
            # (however long; not past its death) between the request and the answer
            protocol.sendmsg("GETFORCE")
            self._wait_readable()
            self._expect(protocol.recvmsg(), "FORCEREADY")
            energy = protocol.recv(1, np.float64)[0] * units.Ha
            natoms = int(protocol.recv(1, np.int32)[0])
            forces = protocol.recv((max(natoms, 0), 3), np.float64) * (units.Ha / units.Bohr)
            protocol.recv((3, 3), np.float64)  # the virial
            protocol.recv(protocol.recv(1, np.int32)[0], np.byte)  # the extra bytes
        except (TimeoutError, SocketClosed, ConnectionError, AssertionError) as exc:
            raise SocketClientError(
                f"the i-PI client on {self.where} dropped the connection or answered out of "
                f"protocol ({type(exc).__name__}: {exc}){self._exited()}{self._see_log()}"
            ) from None
        return float(energy), np.array(forces, dtype=float)

    def _expect(self, status: str, due: str) -> None:
        if status != due:
            raise SocketClientError(f"the i-PI client on {self.where} said {status!r} where "
                                    f"{due} was due{self._see_log()}")

    def _wait_readable(self) -> None:
        """Wait for the client's answer while it computes, however long; not past its death."""
        conn = self._conn
        assert conn is not None
        while True:
            ready, _, _ = select.select([conn], [], [], _POLL_S)
            if ready:
                return
            if self._proc is not None and self._proc.poll() is not None:
                raise SocketClosed(f"the client process exited with code "
                                   f"{self._proc.returncode}")

    # ------------------------------------------------------------------ connecting

    def _connect(self) -> None:
        """Open the socket, start the client (if a command is given), accept it in time."""
        self._open_server()
        if self.command:
            self._start_client()
        deadline = time.monotonic() + self.connect_timeout_s
        assert self._server is not None
        self._server.settimeout(_POLL_S)
        while True:
            try:
                conn, _ = self._server.accept()
                break
            except TimeoutError:
                pass
            if self._proc is not None and self._proc.poll() is not None:
                code = self._proc.returncode
                self.close(failed=True)
                hint = ("the shell found no such program: check the name and that it is on "
                        "PATH" if code == _NOT_FOUND else "check the command, and that it "
                        "passes the socket name to the client as {address}")
                raise SocketClientError(
                    f"the i-PI client `{self.command}` exited with code {code} before it "
                    f"connected to {self.where}{self._see_log()}; {hint}")
            if time.monotonic() > deadline:
                self.close(failed=True)
                started = (f"the client `{self.command}` started but" if self.command
                           else "no client")
                raise SocketClientError(
                    f"{started} did not connect to {self.where} within "
                    f"{self.connect_timeout_s:g} s (calculator.connect_timeout_s){self._see_log()}"
                    "; start the client with this socket (unix: its address, inet: host and "
                    "port), or give calculator.command")
        conn.settimeout(None)
        self._conn = conn
        self._protocol = IPIProtocol(conn)
        log.info("i-PI client connected on %s", self.where)

    def _open_server(self) -> None:
        if self.socket_kind == "unix":
            path = actualunixsocketname(self.address)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.bind(path)
            except OSError as exc:
                server.close()
                raise SocketClientError(
                    f"cannot open {self.where}: {exc.strerror}; another run may use the name "
                    f"{self.address!r} (leave calculator.address out for a unique one)"
                ) from None
        else:
            server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind((self.address, self.port or 0))
            except OSError as exc:
                server.close()
                raise SocketClientError(
                    f"cannot open inet socket {self.address}:{self.port}: {exc.strerror}; "
                    "choose another calculator.port or leave it out for a free one") from None
            self.port = server.getsockname()[1]
            self.where = f"inet socket {self.address}:{self.port}"
        server.listen(1)
        self._server = server

    def _start_client(self) -> None:
        """Start ``command`` in a fresh folder with ``files``, its output in client.log."""
        assert self.command is not None
        self.folder = Path(tempfile.mkdtemp(prefix=f"hybridmd-client-{os.getpid()}-"))
        for path in self.files:
            shutil.copy(path, self.folder / path.name)
        command = self.command.replace("{address}", self.address).replace(
            "{port}", str(self.port or ""))
        self._log_file = open(self.folder / CLIENT_LOG, "wb")  # noqa: SIM115 (closed in close)
        env = dict(os.environ, HYBRIDMD_SOCKET=self.address,
                   HYBRIDMD_PORT=str(self.port or ""))
        env.setdefault("OMP_NUM_THREADS", "1")
        log.info("starting the i-PI client: %s (in %s)", command, self.folder)
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", command], cwd=self.folder, env=env, stdin=subprocess.DEVNULL,
                stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        except OSError as exc:
            self.close(failed=True)
            raise SocketClientError(f"cannot start the i-PI client `{command}`: "
                                    f"{exc.strerror}") from None

    # ------------------------------------------------------------------ messages

    def _see_log(self) -> str:
        if self.folder is None:
            return ""
        return f" (its output: {self.folder / CLIENT_LOG})"

    def _exited(self) -> str:
        """The client's exit code, given a moment to exit after it dropped the connection."""
        if self._proc is None:
            return ""
        try:
            code = self._proc.wait(timeout=_EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            return ""
        return f"; the client exited with code {code}"

    # ------------------------------------------------------------------ shutdown

    def close(self, failed: bool = False) -> None:
        """Send EXIT, end the client and its process group, remove the socket file; the
        client's folder is removed too unless something failed (it has the client's log)."""
        self._failed = self._failed or failed
        clean = not self._failed
        told_to_exit = self._protocol is not None
        if self._protocol is not None:
            with contextlib.suppress(OSError):
                self._protocol.end()
        for sock in (self._conn, self._server):
            if sock is not None:
                sock.close()
        self._protocol = self._conn = self._server = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=_EXIT_GRACE_S if told_to_exit and clean else 0)
            except subprocess.TimeoutExpired:
                if told_to_exit and clean:
                    log.warning("the i-PI client did not exit after EXIT; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
            self._proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.socket_kind == "unix":
            path = actualunixsocketname(self.address)
            if os.path.exists(path):
                os.unlink(path)
        if clean and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

