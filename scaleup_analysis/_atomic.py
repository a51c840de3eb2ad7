"""Atomic file writes: the one place where the package writes a file.

Every writer of the package (tables and the ``MANIFEST`` in :mod:`scaleup_analysis.data`, the
simulated encounters, the study scaffold, the command line and the report outputs) goes through
:func:`atomic_write`: the content goes to a temporary file in the target's directory, is flushed to
disk and renamed over the target with :func:`os.replace`. A crash or kill mid-write therefore never
leaves a partial file under the target name (at most a hidden ``.<name>.*.tmp`` file).

This module imports nothing from the package but :mod:`scaleup_analysis.errors`, so that any module
can use it (``data.io`` and ``data.manifest`` both do, without importing each other).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path

from .errors import ScaleupDataError

__all__ = ["umask", "atomic_write", "atomic_write_bytes", "atomic_write_text"]


def umask() -> int:
    """The process's current umask (read without changing it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777  # replacing a file keeps its permissions
    except FileNotFoundError:
        return 0o666 & ~umask()


def atomic_write(path: str | PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The parent directory is created if needed; the new file gets the permissions of the file it
    replaces (or of a normal new file); the bytes and the rename are made durable (``fsync``).
    Returns the target path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates the file private (0600); give it the permissions of a normal new file
        os.chmod(tmp, _new_file_mode(target))
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename publishes them
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable (best effort; not possible on every platform)
        dir_fd = os.open(target.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return target
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
    return target


def atomic_write_bytes(path: str | PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same directory, then rename).

    Parameters
    ----------
    path : str or path-like
        Target file; its parent directory is created if needed. An existing file is replaced only
        once the new content is completely written.
    data : bytes
        The content.

    Returns
    -------
    pathlib.Path
        The target path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from scaleup_analysis.data.io import atomic_write_bytes
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(d / "hello.txt", b"hello").read_bytes()
    b'hello'
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ScaleupDataError(f"atomic_write_bytes: data must be bytes, got {type(data).__name__}.")

    def write(tmp: Path) -> None:
        tmp.write_bytes(bytes(data))

    return atomic_write(path, write)


def atomic_write_text(path: str | PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write_bytes`); newlines are kept as given.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from scaleup_analysis.data.io import atomic_write_text
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_text(d / "note.md", "# Titre\\n").read_text(encoding="utf-8")
    '# Titre\\n'
    """
    if not isinstance(text, str):
        raise ScaleupDataError(f"atomic_write_text: text must be str, got {type(text).__name__}.")
    return atomic_write_bytes(path, text.encode(encoding))
