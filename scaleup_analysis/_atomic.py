"""Atomic file writes: the one place where the package writes a file.

Every writer of the package (tables and the ``MANIFEST`` in :mod:`scaleup_analysis.data`, the
simulated encounters, the study scaffold, the command line and the report outputs) goes through
:func:`atomic_write`: the content goes to a temporary file in the target's directory, is flushed to
disk and renamed over the target with :func:`os.replace`. A crash or kill mid-write therefore never
leaves a partial file under the target name (at most a hidden ``.<name>.*.tmp`` file).

Folders are published the same way: a command that writes a whole folder (``scaleup simulate``,
``scaleup init``, a report) writes it into a hidden *staging* folder beside the target
(:func:`staging_folder`) and moves it into place with :func:`publish_folder`, under a
:class:`FolderLock` so that two runs on one target cannot both claim success;
:func:`clear_leftovers` removes (or restores) what a killed run left behind, and
:func:`check_writable` refuses an output that cannot be written before any work is done.

This module imports nothing from the package but :mod:`scaleup_analysis.errors`, so that any module
can use it (``data.io`` and ``data.manifest`` both do, without importing each other).
"""

from __future__ import annotations

import errno
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from os import PathLike
from pathlib import Path

from .errors import ScaleupDataError

try:  # POSIX: a lock held by a process is released by the kernel when the process dies
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["umask", "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_writable",
           "FolderLock", "staging_folder", "publish_folder", "clear_leftovers"]


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


#: errno values that mean "this place cannot be written" (reported as a ScaleupDataError)
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.ENOSPC,
               errno.EDQUOT}


def _blocking_file(path: Path) -> Path | None:
    """The first ancestor of ``path`` that exists and is not a folder (None when there is none)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def _write_error(target: Path, exc: OSError) -> ScaleupDataError:
    """A clear error for an OSError raised while writing ``target`` (names the path and the fix)."""
    blocker = _blocking_file(target)
    if blocker is not None or exc.errno in (errno.ENOTDIR, errno.EEXIST):
        where = blocker or target.parent
        return ScaleupDataError(
            f"cannot write {str(target)!r}: {str(where)!r} is a file, not a folder. Choose an output path "
            "whose folders are folders (or move that file away)."
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ScaleupDataError(
            f"cannot write {str(target)!r}: the disk is full ({exc.strerror}). Free some space or choose "
            "another output folder."
        )
    return ScaleupDataError(
        f"cannot write {str(target)!r}: {exc.strerror or exc} (the folder {str(target.parent)!r} is not "
        "writable). Choose an output folder you can write to, or change its permissions."
    )


def atomic_write(path: str | PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``.

    The parent directory is created if needed; the new file gets the permissions of the file it
    replaces (or of a normal new file); the bytes and the rename are made durable (``fsync``).
    Returns the target path.
    """
    target = Path(path)
    if target.is_dir():
        raise ScaleupDataError(
            f"cannot write the file {str(target)!r}: a folder of that name exists. Choose another file name, "
            "or move the folder away."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(target, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates the file private (0600); give it the permissions of a normal new file
        os.chmod(tmp, _new_file_mode(target))
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename publishes them
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in _UNWRITABLE:
            raise _write_error(target, exc) from None
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


# ----------------------------------------------------------------------------------------------
# whole folders: writability, lock, staging, publication
# ----------------------------------------------------------------------------------------------
def check_writable(folder: str | PathLike, what: str = "--out") -> None:
    """Refuse, before any work, an output ``folder`` that cannot be created or replaced.

    The folder's nearest existing ancestor must be a writable folder (the output, its staging
    folder and its lock are created there), and an existing ``folder`` must be a writable folder
    (it is replaced as a whole). ``what`` names the argument in the message.
    """
    target = Path(folder)
    blocker = _blocking_file(target / "x")
    if blocker is not None:
        raise ScaleupDataError(
            f"{what} {str(target)!r} cannot be created: {str(blocker)!r} is a file, not a folder. "
            "Choose another output folder."
        )
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    checks = [(parent, "the folder that would hold it")]
    if target.exists():
        checks.append((target, "the folder itself"))
    for place, role in checks:
        if not os.access(place, os.W_OK | os.X_OK):
            raise ScaleupDataError(
                f"{what} {str(target)!r} cannot be written: {role} ({str(place)!r}) is read-only for this "
                "user. Choose an output folder you can write to, or change its permissions; nothing was run."
            )


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a process we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class FolderLock:
    """An exclusive lock on a folder: the file ``.<name>.lock`` beside it, holding the owner's pid.

    On POSIX the lock is an ``flock`` on that file, released by the kernel when its process ends
    (also on ``kill -9``), so a killed run never blocks the next one; a lock file written by a process
    that is still alive (e.g. by hand, or on a system without ``flock``) is respected too. Entering
    raises :class:`~scaleup_analysis.ScaleupDataError` ``"Another <what> (process N) is writing ..."``
    when another run holds the lock.
    """

    def __init__(self, folder: str | PathLike, what: str = "run") -> None:
        folder = Path(folder)
        self.folder = folder
        self.what = what
        self.path = folder.parent / f".{folder.name}.lock"
        self._fd: int | None = None

    def _busy(self, pid: int) -> ScaleupDataError:
        who = f" (process {pid})" if pid else ""
        return ScaleupDataError(
            f"Another {self.what}{who} is writing {str(self.folder)!r}; wait for it to finish, or choose "
            "another --out."
        )

    def _read_pid(self) -> int:
        try:
            return int(self.path.read_text().strip() or "0")
        except (OSError, ValueError):
            return 0

    def __enter__(self) -> "FolderLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _write_error(self.path, exc) from None
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR | (0 if fcntl else os.O_EXCL), 0o644)
            except FileExistsError:  # pragma: no cover - without flock only
                pid = self._read_pid()
                if _alive(pid):
                    raise self._busy(pid) from None
                self.path.unlink(missing_ok=True)  # stale lock of a killed run
                continue
            except OSError as exc:
                raise _write_error(self.path, exc) from None
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    raise self._busy(self._read_pid()) from None
                try:  # the previous holder may have removed the file after we opened it
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                pid = self._read_pid()
                if _alive(pid):  # a live process's lock file without flock (by hand, or no flock there)
                    os.close(fd)
                    raise self._busy(pid)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
            self._fd = fd
            return self
        raise ScaleupDataError(f"Could not take the lock {str(self.path)!r}; remove it if no run is active.")

    def __exit__(self, *exc) -> None:
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # before releasing, so a waiter re-checks the file
        os.close(self._fd)
        self._fd = None


def staging_folder(target: str | PathLike) -> Path:
    """A new hidden folder ``.<name>.staging-<pid>-*`` beside ``target`` (created with normal permissions)."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))
    except OSError as exc:
        raise _write_error(target, exc) from None
    staging.chmod(0o777 & ~umask())  # mkdtemp makes it private; the published folder is not
    return staging


def publish_folder(staging: str | PathLike, target: str | PathLike, keep=None) -> None:
    """Put the complete folder ``staging`` in place of ``target``.

    When ``target`` does not exist (or is an empty folder) this is one rename. Otherwise the files of
    ``target`` for which ``keep(path)`` is true are first copied into ``staging``, then ``target`` is
    renamed to a hidden ``.<name>.old-<pid>-*`` folder, ``staging`` to ``target``, and the old folder
    is removed. A kill between the two renames leaves no ``target`` and the old folder: the next
    :func:`clear_leftovers` puts it back.
    """
    staging, target = Path(staging), Path(target)
    if target.exists() and not any(target.iterdir()):
        target.rmdir()
    if not target.exists():
        os.replace(staging, target)
        return
    for p in target.iterdir():
        if keep is not None and keep(p) and not (staging / p.name).exists():
            if p.is_dir():
                shutil.copytree(p, staging / p.name, symlinks=True)
            else:
                shutil.copy2(p, staging / p.name, follow_symlinks=False)
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{os.getpid()}-", dir=target.parent))
    old.rmdir()
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


_LEFTOVER = re.compile(r"\.(staging|old)-(\d+)-[^.]*")


def clear_leftovers(target: str | PathLike) -> list[Path]:
    """Clean what killed runs left beside ``target``; return the folders removed or restored.

    Staging folders of dead processes are removed. An ``.old`` folder of a dead process is the
    previous ``target`` of an interrupted :func:`publish_folder`: it is put back when ``target`` is
    missing (the publication did not happen), removed otherwise. Call it under the
    :class:`FolderLock` of ``target``.
    """
    target = Path(target)
    done = []
    if not target.parent.is_dir():
        return done
    for p in sorted(target.parent.glob(f".{glob.escape(target.name)}.*-*")):
        m = _LEFTOVER.fullmatch(p.name[len(target.name) + 1:])
        if not (p.is_dir() and m and not _alive(int(m.group(2)))):
            continue
        if m.group(1) == "old" and not target.exists():
            os.replace(p, target)
        else:
            shutil.rmtree(p, ignore_errors=True)
        done.append(p)
    return done

