"""Bad input as one clear error: what is wrong with which file or key, and how to fix it.

``InputError`` is every problem a user can fix by changing an input, a file or a flag; the
command line reports it in one message and exits with code 2. ``reading`` is the one place that
turns a failure while reading a file (whatever the reader raised: ASE's ``UnknownFileTypeError``
or ``InvalidULMFileError``, a ``StopIteration`` past the last frame, an ``UnpicklingError``, a
``MemoryError`` from a corrupt header, ...) into an ``InputError`` that names the file, says what
was expected and what to do. The original exception stays chained, for ``--debug``.
``SimulationError`` is a run that stopped on an unphysical state; ``RunInputError`` a run that
cannot start as set up (both a run's own findings).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class InputError(ValueError):
    """An input, file or flag that cannot be used; the message names it and says the fix."""


class MissingFileError(InputError, FileNotFoundError):
    """A file an input or flag names does not exist."""


#: what a path is when it is neither a regular file nor a folder
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))


def unusable_file(path: Path | str) -> str | None:
    """Why an existing ``path`` cannot be read as an input file, or None (also when it does
    not exist or is a folder: the callers say that in their own words).

    A device or a named pipe (``/dev/null``, ``mkfifo``) is not "not found", and reading a
    FIFO would wait forever; a file without read permission is not "corrupt".
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return f"{path} is {kind}, not a regular file; give a file"
    if not os.access(path, os.R_OK):
        return (f"{path} cannot be read: permission denied; make it readable (chmod +r) or "
                "give another file")
    return None


def _reason(exc: BaseException) -> str:
    """The reader's own words for what went wrong, made readable where they are not."""
    if isinstance(exc, StopIteration):
        return "it has fewer frames than asked for"
    if isinstance(exc, MemoryError):
        return "its header announces an impossible size (corrupt or not this format)"
    if isinstance(exc, EOFError):
        return "it ends early (empty or truncated)"
    if isinstance(exc, UnicodeDecodeError):
        return "it is binary, not text"
    if isinstance(exc, OSError) and exc.strerror and not str(exc).startswith(exc.strerror):
        return exc.strerror.lower()
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if len(text) > 100 and ". " in text:  # a library's paragraph: its first sentence
        text = text[:text.index(". ") + 1]
    name = type(exc).__name__
    return f"{text} ({name})" if text else name


def describe_read_error(path: Path | str, what: str, exc: BaseException,
                        fix: str | None = None, key: str | None = None) -> str:
    """One line: which key and file, that it could not be read as ``what``, why, the fix."""
    prefix = f"{key}: " if key else ""
    return prefix + _describe(Path(path), what, exc, fix)


def _describe(path: Path, what: str, exc: BaseException, fix: str | None) -> str:
    if isinstance(exc, FileNotFoundError) and not path.exists():
        return f"{path}: no such file; check the path"
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return f"{path} is a folder, not {what}; give the file"
    if unusable_file(path):
        return str(unusable_file(path))
    if isinstance(exc, PermissionError):
        return f"{path} cannot be read: permission denied; make it readable (chmod +r)"
    if path.is_file() and path.stat().st_size == 0:
        return f"{path} is empty, not {what}; give a file that holds {what}"
    message = f"{path} could not be read as {what}: {_reason(exc)}"
    return message + f"; {fix or 'the file may be truncated or corrupt: give an intact one'}"


@contextmanager
def reading(path: Path | str, what: str, fix: str | None = None,
            key: str | None = None) -> Iterator[None]:
    """Turn any failure while reading ``path`` as ``what`` into an ``InputError``.

    ``key``: the input key or flag that named the file, put first in the message. An
    ``InputError`` raised inside passes unchanged (with ``key`` put first); a ``ValueError``
    whose message already names the file (the readers' own checks) keeps its message. A
    device, a named pipe or an unreadable file is refused before the reader starts.
    """
    prefix = f"{key}: " if key else ""
    problem = unusable_file(path)  # before a reader opens it: a FIFO would block it
    if problem:
        raise InputError(prefix + problem)
    try:
        yield
    except InputError as exc:
        text = str(exc)
        if str(path) not in text and Path(path).name not in text:
            text = f"{path}: {text}"
        if prefix and not text.startswith(prefix):
            text = prefix + text
        if text == str(exc):
            raise
        cls = MissingFileError if isinstance(exc, MissingFileError) else InputError
        raise cls(text) from exc
    except Exception as exc:  # noqa: BLE001 (any reader failure is a problem of the file)
        if isinstance(exc, FileNotFoundError) and not Path(path).exists():
            raise MissingFileError(describe_read_error(path, what, exc, fix, key)) from exc
        text = str(exc)
        if isinstance(exc, ValueError) and str(path) in text:
            raise InputError(prefix + text) from exc
        raise InputError(describe_read_error(path, what, exc, fix, key)) from exc


class SimulationError(RuntimeError):
    """A run stopped because its state became unphysical; the message says what and what to do."""


class RunInputError(SimulationError, InputError):
    """A run that cannot start as set up, found by the run itself: its output folder does not
    fit the flags (a run there and neither --resume nor --overwrite, nothing to resume, an
    input changed since, damaged files), or a model does not fit the system. Bad input."""
