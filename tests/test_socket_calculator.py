"""calculator type socket: real i-PI protocol clients in their own processes.

The client is `hybridmd serve` (ethanol with the shipped sGDML model), and CP2K where it is
installed (.ci/run installs it): PBE water, a few force calls.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from hybridmd.calculators import build_calculator
from hybridmd.config import ConfigError, SGDMLConfig, SocketCalculatorConfig, SystemConfig
from hybridmd.socket_calculator import SocketCalculator, SocketClientError
from hybridmd.structures import build_structure

ROOT = Path(__file__).resolve().parents[1]
HYBRIDMD = str(Path(sys.executable).parent / "hybridmd")


def _serve_input(tmp_path: Path, molecule: str = "ethanol") -> Path:
    path = tmp_path / f"serve-{molecule}.yaml"
    path.write_text(yaml.safe_dump({"system": {"molecule": molecule},
                                    "calculator": {"type": "sgdml", "model": molecule}}))
    return path


def _socket(command: str, files: list[Path] = (), **kwargs) -> SocketCalculator:
    cfg = SocketCalculatorConfig(type="socket", command=command, files=list(files), **kwargs)
    return build_calculator(cfg, build_structure(SystemConfig(molecule="ethanol")))


def _ethanol(calc: SocketCalculator | None = None):
    """Ethanol, on ``calc`` when given."""
    atoms = build_structure(SystemConfig(molecule="ethanol"))
    atoms.calc = calc
    return atoms


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone for our purpose
        return fh.read().split()[2] != "Z"


def test_a_client_process_gives_the_calculators_forces(tmp_path: Path) -> None:
    serve = _serve_input(tmp_path)
    calc = _socket(f"{HYBRIDMD} serve -q {serve.name} --address {{address}}", [serve])
    atoms = _ethanol(calc)
    reference = _ethanol()
    reference.calc = build_calculator(SGDMLConfig(type="sgdml", model="ethanol"), reference)
    try:
        for shift in (0.0, 0.02):
            atoms.positions[0, 0] += shift
            reference.positions[0, 0] += shift
            # the protocol carries Hartree and Bohr in float64: agreement to rounding
            assert np.allclose(atoms.get_forces(), reference.get_forces(), atol=1e-6)
            assert abs(atoms.get_potential_energy()
                       - reference.get_potential_energy()) < 1e-6
        assert calc.calls == 2
        pid = calc._proc.pid
        folder = calc.folder
    finally:
        calc.close()
    assert not _alive(pid)
    assert not folder.exists()  # a clean end leaves nothing behind
    assert not Path(f"/tmp/ipi_{calc.address}").exists()


def test_a_client_that_never_connects_fails_in_time(tmp_path: Path) -> None:
    calc = _socket("sleep 60", connect_timeout_s=1.5)
    atoms = _ethanol(calc)
    start = time.monotonic()
    with pytest.raises(SocketClientError, match=r"the client `sleep 60` started but did not "
                       r"connect to unix socket /tmp/ipi_hybridmd-.* within 1.5 s "
                       r"\(calculator.connect_timeout_s\)"):
        atoms.get_forces()
    assert time.monotonic() - start < 30  # not the 60 s the client would sleep
    assert calc._proc is None  # the client was ended


def test_a_client_that_exits_is_named_with_its_exit_code_and_log(tmp_path: Path) -> None:
    calc = _socket("echo no licence here; exit 3")
    atoms = _ethanol(calc)
    with pytest.raises(SocketClientError, match=r"exited with code 3 before it connected .*"
                       r"its output: (.*client.log)") as info:
        atoms.get_forces()
    log = Path(str(info.value).split("its output: ")[1].split(")")[0])
    assert log.read_text().strip() == "no licence here"  # kept for the user to read


_WRONG_CLIENT = """
import socket, sys
import numpy as np
from ase.calculators.socketio import IPIProtocol, actualunixsocketname
sock = socket.socket(socket.AF_UNIX)
sock.connect(actualunixsocketname(sys.argv[1]))
protocol = IPIProtocol(sock)
while True:
    msg = protocol.recvmsg()
    if msg == "STATUS":
        protocol.sendmsg("HAVEDATA" if "data" in dir() else "READY")
    elif msg == "POSDATA":
        data = protocol.recvposdata()
    elif msg == "GETFORCE":
        protocol.sendforce(0.0, np.zeros((3, 3)), np.zeros((3, 3)))
        del data
    else:
        break
"""


def test_a_client_program_that_is_not_there_is_named() -> None:
    calc = _socket("no-such-dft-code -i x.inp {address}")
    atoms = _ethanol(calc)
    with pytest.raises(SocketClientError, match=r"`no-such-dft-code -i x.inp \{address\}` "
                       r"exited with code 127 .* no such program: check the name and that "
                       r"it is on PATH"):
        atoms.get_forces()


def test_a_client_answering_for_other_atoms_is_refused(tmp_path: Path) -> None:
    client = tmp_path / "three_atoms.py"
    client.write_text(_WRONG_CLIENT)
    calc = _socket(f"{sys.executable} {client.name} {{address}}", [client])
    atoms = _ethanol(calc)
    with pytest.raises(SocketClientError, match=r"answered with forces on 3 atoms for a "
                       r"system of 9; give the client the same structure"):
        atoms.get_forces()


def test_a_client_that_fails_on_the_structure_is_named_with_its_exit_code(
        tmp_path: Path) -> None:
    serve = tmp_path / "serve-water.yaml"  # 3 atoms: serve fails on ethanol's 9 positions
    serve.write_text(yaml.safe_dump({
        "system": {"file": str(ROOT / "inputs" / "structures" / "water.xyz")},
        "calculator": {"type": "ase", "import_path": "ase.calculators.lj:LennardJones"}}))
    calc = _socket(f"{HYBRIDMD} serve -q {serve.name} --address {{address}}", [serve])
    atoms = _ethanol(calc)
    with pytest.raises(SocketClientError, match=r"dropped the connection .*; the client "
                       r"exited with code 1 \(its output: .*client.log\)$"):
        atoms.get_forces()


def test_a_client_killed_mid_run_ends_the_calculation_with_one_error(tmp_path: Path) -> None:
    serve = _serve_input(tmp_path)
    calc = _socket(f"{HYBRIDMD} serve -q {serve.name} --address {{address}}", [serve])
    atoms = _ethanol(calc)
    atoms.get_forces()
    os.killpg(calc._proc.pid, signal.SIGKILL)
    atoms.positions[0, 0] += 0.01
    with pytest.raises(SocketClientError, match=r"dropped the connection .* the client "
                       r"exited with code -9"):
        atoms.get_forces()


def test_a_killed_driver_leaves_no_client_behind(tmp_path: Path) -> None:
    """kill -9 of the process that started the client: the client's shell is killed with
    it, and the client ends on the closed socket."""
    serve = _serve_input(tmp_path)
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        from hybridmd.calculators import build_calculator
        from hybridmd.config import SocketCalculatorConfig, SystemConfig
        from hybridmd.structures import build_structure
        atoms = build_structure(SystemConfig(molecule="ethanol"))
        atoms.calc = build_calculator(SocketCalculatorConfig(
            type="socket", command="{HYBRIDMD} serve -q {serve.name} --address {{address}}",
            files=["{serve}"]), atoms)
        atoms.get_forces()
        print(atoms.calc._proc.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL
    shell = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(shell) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(shell)  # SIGKILL with the driver (PR_SET_PDEATHSIG)

    def leftover() -> list[str]:
        return subprocess.run(["pgrep", "-f", f"serve -q {serve.name}"], capture_output=True,
                              text=True).stdout.split()

    # the client itself reads the closed socket and ends
    while leftover() and time.monotonic() < deadline + 10:
        time.sleep(0.2)
    assert leftover() == []


@pytest.mark.parametrize(("section", "problem"), [
    ({}, "give `command:` .* or, for a client you start yourself, `address:`"),
    ({"socket": "inet"}, "give `command:` .* `port:`"),
    ({"command": "x {address}", "address": "mine"}, "`address:` is for a client you start"),
    ({"address": "a/b"}, "is a unix socket name, not a path"),
    ({"command": "x", "port": 4000}, "`port:` needs `socket: inet`"),
    ({"command": "x", "files": ["nowhere.inp"]}, "file not found: .*nowhere.inp"),
])
def test_the_section_is_checked(section: dict, problem: str) -> None:
    from hybridmd.config import parse_config
    from hybridmd.config.calculator import SocketCalculatorConfig as Model

    with pytest.raises(ConfigError, match=problem):
        parse_config({"type": "socket", **section}, Model, "test.yaml")


# ----------------------------------------------------------------------------- CP2K

CP2K = shutil.which("cp2k")


@pytest.mark.skipif(CP2K is None, reason="CP2K is not installed (apt-get install cp2k; "
                    ".ci/run installs it)")
def test_cp2k_answers_as_a_client_with_its_own_forces(tmp_path: Path) -> None:
    """The shipped CP2K input (PBE, DZVP-MOLOPT, water): finite forces that sum to about zero
    and agree with a finite difference of CP2K's own energy."""
    inp = ROOT / "inputs" / "cp2k" / "water-pbe.inp"
    cfg = SocketCalculatorConfig(type="socket", command=f"cp2k -i {inp.name} -E "
                                 "SOCKET={address}", files=[inp], box_A=8.0)
    atoms = read(ROOT / "inputs" / "structures" / "water.xyz")
    calc = build_calculator(cfg, atoms)
    atoms.calc = calc
    try:
        forces = atoms.get_forces()
        assert np.isfinite(forces).all() and np.abs(forces).max() > 0.05
        assert np.abs(forces.sum(axis=0)).max() < 0.05
        h = 2e-3
        energies = []
        for step in (h, -2 * h):
            atoms.positions[1, 1] += step
            energies.append(atoms.get_potential_energy())
        assert abs(-(energies[0] - energies[1]) / (2 * h) - forces[1, 1]) < 0.02
        assert calc.calls == 3
    finally:
        calc.close()


def test_simulate_with_a_client_process_ends_it_with_the_run(tmp_path: Path) -> None:
    serve = _serve_input(tmp_path)
    data = {"system": {"molecule": "ethanol"},
            "calculator": {"type": "socket", "files": [str(serve)],
                           "command": f"{HYBRIDMD} serve -q {serve.name} --address {{address}}"},
            "dynamics": {"integrator": "bussi", "timestep_fs": 0.5, "steps": 10,
                         "temperature_K": 300, "seed": 1},
            "output": {"directory": str(tmp_path / "sim"), "stride": 5}}
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(data))
    done = subprocess.run([HYBRIDMD, "simulate", "-q", "sim.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(read(tmp_path / "sim" / "trajectory.traj", ":")) == 3
    assert subprocess.run(["pgrep", "-f", f"serve -q {serve.name}"], capture_output=True,
                          text=True).stdout.split() == []
