"""The ``MANIFEST`` of a raw-data directory: the sha256 of every file, to keep raw data immutable.

The file uses the format of GNU ``sha256sum`` (``<64 hex digits><two spaces><file name>``, one line per
file, sorted by name), so ``cd data/raw && sha256sum -c MANIFEST`` checks it without Python.
"""

from __future__ import annotations

import hashlib
import re
from os import PathLike
from pathlib import Path

from .._checks import checked_inputs
from .._atomic import atomic_write_text
from ..errors import RawDataChangedError, ScaleupDataError

__all__ = ["write_manifest", "check_manifest", "MANIFEST_NAME", "sha256_file"]

#: Name of the manifest file inside a data directory.
MANIFEST_NAME = "MANIFEST"

_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def sha256_file(path: str | PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks (memory stays small for large files).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from scaleup_analysis.data.manifest import sha256_file
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty.csv"
    >>> _ = p.write_bytes(b"")
    >>> sha256_file(p)
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_files(directory: Path) -> list[Path]:
    # every regular, non-hidden file except the manifest itself (hidden files include the
    # temporary files of atomic writes); sub-directories are not covered
    return sorted(
        (f for f in directory.iterdir() if f.is_file() and f.name != MANIFEST_NAME and not f.name.startswith(".")),
        key=lambda f: f.name,
    )


def _as_dir(directory: str | PathLike) -> Path:
    d = Path(directory)
    if not d.is_dir():
        raise ScaleupDataError(f"{str(d)!r} is not a directory; give the folder that holds the data files.")
    return d


@checked_inputs
def write_manifest(directory: str | PathLike) -> Path:
    """Write ``<directory>/MANIFEST`` with the sha256 of every data file in the directory.

    Parameters
    ----------
    directory : str or path-like
        A data directory (e.g. ``data/raw``). Every regular file in it is covered except ``MANIFEST``
        itself and hidden files (names starting with ``.``); sub-directories are not covered.

    Returns
    -------
    pathlib.Path
        Path of the ``MANIFEST`` (written atomically; ``sha256sum -c MANIFEST`` can check it).

    Notes
    -----
    Write the manifest once, when the raw data arrive; raw data are immutable afterwards. Derived
    data belong in another directory (e.g. ``data/processed``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scaleup_analysis as sa
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "regions.csv").write_text("rss_code,name,settlement_type\\n", encoding="utf-8")
    >>> digest, name = sa.write_manifest(d).read_text(encoding="utf-8").split()
    >>> name, len(digest)
    ('regions.csv', 64)
    """
    d = _as_dir(directory)
    lines = [f"{sha256_file(f)}  {f.name}\n" for f in _data_files(d)]
    return atomic_write_text(d / MANIFEST_NAME, "".join(lines))


def _read_manifest(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ScaleupDataError(
            f"{str(path)!r} is not a text MANIFEST (not UTF-8). Restore it from version control."
        ) from None
    expected: dict[str, str] = {}
    bad: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if m is None:
            bad.append(f"line {lineno}: {line[:80]!r}")
            continue
        expected[m.group(2)] = m.group(1).lower()
    if bad:
        raise ScaleupDataError(
            f"{str(path)!r} has {len(bad)} malformed line(s) ({'; '.join(bad[:5])}); each line must be "
            "'<64 hex sha256>  <file name>' as written by write_manifest / sha256sum. Restore the MANIFEST "
            "from version control."
        )
    return expected


@checked_inputs
def check_manifest(directory: str | PathLike) -> dict[str, str]:
    """Check that every file of a data directory still has the sha256 recorded in its ``MANIFEST``.

    Parameters
    ----------
    directory : str or path-like
        Directory holding a ``MANIFEST`` written by :func:`write_manifest`.

    Returns
    -------
    dict of str to str
        File name -> sha256 (hex) of the verified files.

    Raises
    ------
    RawDataChangedError
        Naming each changed file (expected vs actual sha256), each listed file that is missing and
        each unexpected file not listed in the manifest.
    ScaleupDataError
        If there is no ``MANIFEST`` or it is malformed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scaleup_analysis as sa
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "regions.csv").write_text("rss_code,name,settlement_type\\n", encoding="utf-8")
    >>> _ = sa.write_manifest(d)
    >>> list(sa.check_manifest(d))
    ['regions.csv']
    >>> _ = (d / "regions.csv").write_text("rss_code,name,settlement_type\\n01,X,rural\\n", encoding="utf-8")
    >>> sa.check_manifest(d)
    Traceback (most recent call last):
    ...
    scaleup_analysis.errors.RawDataChangedError: Raw data in ... changed since its MANIFEST was written (1 file): ...
    """
    d = _as_dir(directory)
    mpath = d / MANIFEST_NAME
    if not mpath.is_file():
        raise ScaleupDataError(
            f"No MANIFEST in {str(d)!r}: nothing to check against. Create it once, when the raw data "
            "arrive, with sa.write_manifest(directory)."
        )
    expected = _read_manifest(mpath)
    actual = {f.name: sha256_file(f) for f in _data_files(d)}
    problems: list[str] = []
    for name in sorted(expected):
        if name not in actual:
            problems.append(f"  - {name}: missing (expected sha256 {expected[name]})")
        elif actual[name] != expected[name]:
            problems.append(f"  - {name}: changed (expected sha256 {expected[name]}, actual {actual[name]})")
    for name in sorted(set(actual) - set(expected)):
        problems.append(f"  - {name}: unexpected file, not in the MANIFEST (actual sha256 {actual[name]})")
    if problems:
        raise RawDataChangedError(
            f"Raw data in {str(d)!r} changed since its MANIFEST was written ({len(problems)} file"
            f"{'s' if len(problems) > 1 else ''}):\n"
            + "\n".join(problems)
            + "\nRaw data are immutable: restore the original file(s) (e.g. from version control or "
            "the original delivery), or regenerate the data into a new directory "
            "(e.g. `scaleup simulate --out data/raw_v2`) and point the analysis to it. Never edit "
            "raw files or the MANIFEST by hand; derived tables belong in data/processed/."
        )
    return {name: actual[name] for name in sorted(actual)}
