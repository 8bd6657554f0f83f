"""One run at a time in a run folder: an OS lock held for the run's life.

A run (``run``, ``simulate``, ``train``, ``HybridDynamics``) takes an exclusive ``flock`` on a
lock file in its folder before it touches anything there, and holds it until it ends. The
operating system drops the lock when the process ends, however it ends (kill -9 included), so
a lock never outlives its run. A second run into a held folder is refused with one line that
names the run (its pid) holding it; nothing of the first run's is touched.

The lock is taken in two steps so that a refused input writes nothing: ``probe`` takes it
where its file exists (a folder that has held a run: no write), ``claim`` creates the file
if need be and writes this process's pid into it once the run's checks have passed. The file
stays in the folder (emptied when the run ends), so a later run only probes it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from hybridmd.errors import RunInputError

#: the lock file in a run folder
LOCK_NAME = ".hybridmd.lock"


class FolderInUseError(RunInputError):
    """Another run holds the folder (or the checkpoint) a run was to write."""


class RunLock:
    """The exclusive lock of one run folder (``path``: its lock file); ``key``: the input key
    or argument that named the folder, and ``what``: the folder in words, for the message."""

    def __init__(self, path: Path, key: str, what: str):
        self.path, self.key, self.what = Path(path), key, what
        self._fd: int | None = None
        self._claimed = False

    @classmethod
    def of_folder(cls, directory: Path, key: str = "output.directory") -> RunLock:
        """The lock of a run folder."""
        return cls(Path(directory) / LOCK_NAME, key, f"the run folder {directory}")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def probe(self) -> RunLock:
        """Take the lock now if its file exists (refused if another run holds it); writes
        nothing."""
        if self._fd is None and self.path.exists():
            self._take(create=False)
        return self

    def claim(self) -> RunLock:
        """Take the lock (creating its folder and file) and write this process's pid in it."""
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._take(create=True)
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)
        except FolderInUseError:
            raise
        except OSError as exc:  # a read-only or foreign folder: said before anything is run
            raise RunInputError(
                f"{self.key}: cannot write in {self.path.parent} ({exc.strerror or exc}); "
                f"choose a folder you can write to as {self.key}") from None
        self._claimed = True
        return self

    def release(self) -> None:
        """Let the lock go (a claimed lock file is emptied first)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._claimed:
                os.ftruncate(fd, 0)
        finally:
            self._claimed = False
            os.close(fd)  # the flock goes with the last descriptor of the open file

    def _take(self, create: bool) -> None:
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            if create:
                raise
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderInUseError(
                f"{self.key}: another run ({holder}) holds {self.what}; wait for it to end "
                f"(or stop it), or choose another {self.key}") from None
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)


def _holder(fd: int) -> str:
    """The pid that holds the lock on ``fd``'s file, in words (written by its run, or from
    /proc/locks while that run is still checking its input)."""
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    if text.isdigit():
        return f"pid {text}"
    stat = os.fstat(fd)
    try:
        with open("/proc/locks") as fh:
            for line in fh:
                fields = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].split(":")[-1] == str(
                        stat.st_ino):
                    return f"pid {fields[4]}"
    except OSError:
        pass
    return "pid unknown"
