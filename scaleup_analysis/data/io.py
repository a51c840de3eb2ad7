"""Loading tables from files (CSV, Parquet, Excel) and writing them atomically.

A data directory (e.g. ``data/raw/``) holds one file per table, named after the table
(``regions.csv``, ``sites.parquet``, ``outcomes.xlsx``, ...; see ``docs/data_dictionary.md``).
:func:`load_tables` reads every table present, checks the directory's ``MANIFEST`` when there is one
and validates all tables together: either every table is returned, validated and typed, or one
:class:`~scaleup_analysis.errors.ScaleupDataError` lists every problem and nothing is returned.

Files are written atomically (:func:`write_table_atomic`, :func:`atomic_write_bytes`,
:func:`atomic_write_text`): the content goes to a temporary file in the same directory, which is then
renamed over the target with :func:`os.replace`. A crash or kill mid-write therefore never leaves a
partial file under the target name.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable
from os import PathLike
from pathlib import Path

import pandas as pd

from ..errors import ScaleupDataError, ScaleupWarning
from .schemas import _SPEC_BY_NAME, REQUIRED_TABLES, TABLES, _FOREIGN_KEYS, validate_table, validate_tables

__all__ = [
    "load_table",
    "load_tables",
    "write_table_atomic",
    "atomic_write_bytes",
    "atomic_write_text",
    "DATA_SUFFIXES",
]

#: File suffixes recognised as table files, in order of preference.
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".xlsx")

# ----------------------------------------------------------------------------------------------
# atomic writes
# ----------------------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _new_file_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777  # replacing a file keeps its permissions
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _atomic_write(path: str | PathLike, write: Callable[[Path], None]) -> Path:
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

    return _atomic_write(path, write)


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


def write_table_atomic(df: pd.DataFrame, path: str | PathLike) -> Path:
    """Write a table to CSV or Parquet (chosen by the suffix) atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its index is not written.
    path : str or path-like
        Target file ending in ``.csv`` (UTF-8, ``\\n`` line ends, missing values as empty cells) or
        ``.parquet``. The parent directory is created if needed.

    Returns
    -------
    pathlib.Path
        The target path.

    Notes
    -----
    The table is written to a temporary file in the target's directory, flushed to disk, then renamed
    over the target (:func:`os.replace`, atomic on POSIX and Windows). If writing fails or the process
    is interrupted, the target is either absent or still holds its previous content, never a partial
    table; a hard kill can at most leave a hidden ``.<name>.*.tmp`` file behind.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scaleup_analysis as sa
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> regions = sa.load_dataset("quebec_regions")
    >>> path = sa.write_table_atomic(regions, d / "regions.csv")
    >>> sa.load_table(path).equals(regions)
    True
    """
    if not isinstance(df, pd.DataFrame):
        raise ScaleupDataError(f"write_table_atomic: df must be a pandas DataFrame, got {type(df).__name__}.")
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".csv":

        def write(tmp: Path) -> None:
            df.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")

    elif suffix == ".parquet":

        def write(tmp: Path) -> None:
            df.to_parquet(tmp, index=False)

    else:
        raise ScaleupDataError(
            f"write_table_atomic: cannot write {target.name!r}: the suffix must be .csv or .parquet "
            f"(got {suffix or 'none'!r})."
        )
    return _atomic_write(target, write)


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------


def _text_columns(table: str) -> list[str]:
    """Columns to read as text (identifiers and categories), so that "01" stays "01"."""
    return [c.name for c in _SPEC_BY_NAME[table].columns if c.kind in ("str", "category")]


def _decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start
        line = raw.count(b"\n", 0, offset) + 1
        bad = raw[offset : offset + 4]
        raise ScaleupDataError(
            f"File {str(path)!r} is not valid UTF-8: byte {bad[:1]!r} at byte offset {offset} "
            f"(file line {line}) cannot be decoded. It was probably saved as Latin-1/Windows-1252 "
            "(e.g. 'Montréal' written by an old Excel). Re-encode it as UTF-8, e.g. in Excel "
            "'Save as > CSV UTF-8', or `iconv -f WINDOWS-1252 -t UTF-8 old.csv > new.csv`, "
            "then load the new file."
        ) from None


def _read_csv(path: Path, table: str) -> pd.DataFrame:
    text = _decode_utf8(path.read_bytes(), path)
    if not text.strip():
        raise ScaleupDataError(
            f"File {str(path)!r} is empty: a table file needs a header line with the column names "
            f"of table '{table}' (see docs/data_dictionary.md)."
        )
    fix = (
        "Check that every line has as many commas as the header (text containing commas must be "
        "quoted) and that the separator is a comma."
    )
    try:
        with warnings.catch_warnings():
            # index_col=False: never turn surplus leading fields into an index silently
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                io.StringIO(text),
                dtype={c: str for c in _text_columns(table)},
                float_precision="round_trip",
                index_col=False,
            )
    except pd.errors.EmptyDataError:  # e.g. only separators or line ends: no column names
        raise ScaleupDataError(
            f"File {str(path)!r} has no column names: a table file needs a header line with the column "
            f"names of table '{table}' (see docs/data_dictionary.md)."
        ) from None
    except pd.errors.ParserError as exc:
        raise ScaleupDataError(f"File {str(path)!r} is not a well-formed CSV file: {exc}. {fix}") from None
    except pd.errors.ParserWarning:
        try:  # newline="": the csv module must see the line ends itself (stray \r inside fields)
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise ScaleupDataError(f"File {str(path)!r} is not a well-formed CSV file: {exc}. {fix}") from None
        width = len(rows[0])
        long = [i + 1 for i, r in enumerate(rows) if len(r) > width]
        shown = ", ".join(str(n) for n in long[:5]) + (", ..." if len(long) > 5 else "")
        raise ScaleupDataError(
            f"File {str(path)!r} is not a well-formed CSV file: {len(long)} line(s) have more fields "
            f"than the {width} of the header (file line {shown}). {fix}"
        ) from None


def _header_row_score(values: Iterable, expected: set[str]) -> int:
    return sum(1 for v in values if isinstance(v, str) and v.strip() in expected)


def _read_excel(path: Path, table: str) -> pd.DataFrame:
    try:
        with pd.ExcelFile(path, engine="openpyxl") as xls:
            sheet = table if table in xls.sheet_names else xls.sheet_names[0]
            peek = pd.read_excel(xls, sheet_name=sheet, header=None, nrows=10, dtype=object)
            expected = {c.name for c in _SPEC_BY_NAME[table].columns}
            if len(peek):
                scores = [_header_row_score(peek.iloc[i].tolist(), expected) for i in range(len(peek))]
                best = max(range(len(scores)), key=lambda i: (scores[i], -i))
                if best > 0 and scores[best] > scores[0]:
                    raise ScaleupDataError(
                        f"Sheet {sheet!r} of {str(path)!r} has a multi-row header: the column names of "
                        f"table '{table}' are on sheet row {best + 1}, below {best} other header "
                        f"row{'s' if best > 1 else ''} (titles, merged cells or units). Delete the rows "
                        f"above so that sheet row 1 holds exactly the column names, one per column, "
                        f"and the data start on row 2."
                    )
            df = pd.read_excel(xls, sheet_name=sheet, dtype={c: str for c in _text_columns(table)})
    except ScaleupDataError:
        raise
    except Exception as exc:  # corrupt or non-xlsx file: openpyxl raises many different types
        raise ScaleupDataError(
            f"Cannot read {str(path)!r} as an Excel .xlsx workbook ({type(exc).__name__}: {exc}). "
            "Re-save it from Excel as .xlsx, or export it as CSV UTF-8."
        ) from None
    unnamed = [str(c) for c in df.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        raise ScaleupDataError(
            f"Sheet {sheet!r} of {str(path)!r} has {len(unnamed)} empty header cell(s) in sheet row 1 "
            f"(columns {', '.join(str(df.columns.get_loc(c) + 1) for c in unnamed[:5])}): merged cells "
            "or a multi-row header? Put exactly one column name in each cell of row 1 and delete the "
            "other header rows and empty columns."
        )
    return df


def _read_parquet(path: Path, table: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise ScaleupDataError(
            f"Cannot read {str(path)!r} as a Parquet file ({type(exc).__name__}: {exc}). "
            "Rewrite it with sa.write_table_atomic(df, path) or export it as CSV."
        ) from None


_READERS = {".csv": _read_csv, ".parquet": _read_parquet, ".xlsx": _read_excel}


def _table_name(path: Path, table: str | None) -> str:
    name = table if table is not None else path.stem
    if name not in _SPEC_BY_NAME:
        how = (
            f"pass table=... (one of {', '.join(TABLES)})"
            if table is None
            else f"use one of {', '.join(TABLES)}"
        )
        raise ScaleupDataError(
            f"Cannot tell which table {str(path)!r} holds: {name!r} is not a table name. Rename the file "
            f"after its table (e.g. sites.csv) or {how}."
        )
    return name


def _read_raw(path: Path, table: str) -> pd.DataFrame:
    if not path.is_file():
        raise ScaleupDataError(f"File {str(path)!r} does not exist (or is not a file); check the path.")
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise ScaleupDataError(
            f"Cannot read {str(path)!r}: unsupported file type {suffix or '(none)'!r}. "
            "Table files must be .csv (UTF-8), .parquet or .xlsx."
        )
    return reader(path, table)


def load_table(path: str | PathLike, table: str | None = None) -> pd.DataFrame:
    """Read one table file and validate it against its schema.

    Parameters
    ----------
    path : str or path-like
        A ``.csv`` (must be UTF-8; a UTF-8 byte-order mark is accepted), ``.parquet`` or ``.xlsx``
        file (the sheet named after the table, else the first sheet; exactly one header row).
    table : str, optional
        Table name (see ``docs/data_dictionary.md``); by default the file name without suffix, so
        ``data/raw/sites.csv`` is table ``sites``.

    Returns
    -------
    pandas.DataFrame
        The validated, typed table (see :func:`scaleup_analysis.validate_table`). Identifier and text
        columns are read as strings, so ``"01"`` stays ``"01"``.

    Raises
    ------
    ScaleupDataError
        If the file is missing, not UTF-8 (the message gives the byte offset), malformed, has a
        multi-row Excel header, or the table breaks its schema (the message gives file lines).
        Foreign keys need the other tables: use :func:`load_tables` on the directory.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scaleup_analysis as sa
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "regions.csv").write_text(
    ...     "rss_code,name,settlement_type\\n06,Montréal,metropolitan\\n", encoding="utf-8")
    >>> sa.load_table(d / "regions.csv")
      rss_code      name settlement_type
    0       06  Montréal    metropolitan
    """
    p = Path(path)
    name = _table_name(p, table)
    raw = _read_raw(p, name)
    return validate_table(raw, name, source=p)


def _find_table_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    found: dict[str, list[Path]] = {}
    unknown: list[str] = []
    for f in sorted(directory.iterdir()):
        if not f.is_file() or f.name.startswith(".") or f.suffix.lower() not in DATA_SUFFIXES:
            continue
        if f.stem in _SPEC_BY_NAME:
            found.setdefault(f.stem, []).append(f)
        else:
            unknown.append(f.name)
    ambiguous = {t: fs for t, fs in found.items() if len(fs) > 1}
    if ambiguous:
        lines = "; ".join(f"{t}: {', '.join(f.name for f in fs)}" for t, fs in ambiguous.items())
        raise ScaleupDataError(
            f"Directory {str(directory)!r} holds more than one file for the same table ({lines}). "
            "Keep exactly one file per table (move the others elsewhere)."
        )
    return {t: fs[0] for t, fs in found.items()}, unknown


def _with_parents(names: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(names))
    changed = True
    while changed:
        changed = False
        for child, _, parent, _ in _FOREIGN_KEYS:
            if child in wanted and parent not in wanted:
                wanted.append(parent)
                changed = True
    return wanted


def load_tables(
    directory: str | PathLike, *, tables: Iterable[str] | None = None, check_manifest: bool = True
) -> dict[str, pd.DataFrame]:
    """Load and validate every table of a data directory; all or nothing.

    Parameters
    ----------
    directory : str or path-like
        Folder holding one file per table named after it (``regions.csv``, ``sites.parquet``, ...).
        ``regions``, ``sites``, ``indicators`` and ``outcomes`` are required; ``encounters``,
        ``delivery``, ``components``, ``fidelity_ratings``, ``adaptations`` and ``assessments`` are
        optional. Other data files are ignored with a :class:`~scaleup_analysis.ScaleupWarning`.
    tables : iterable of str, optional
        Load only these tables (plus, for validation, the tables they refer to); by default every
        table present.
    check_manifest : bool, default True
        When the directory holds a ``MANIFEST``, first check that every file still has its recorded
        sha256 (:func:`scaleup_analysis.check_manifest`).

    Returns
    -------
    dict of str to pandas.DataFrame
        Table name -> validated, typed table (order of ``docs/data_dictionary.md``).

    Raises
    ------
    RawDataChangedError
        If a file no longer matches the MANIFEST.
    ScaleupDataError
        If a required table is missing, a file cannot be read, or any table breaks its schema or a
        cross-table rule (one message listing every problem, see :func:`validate_tables`). Nothing is
        returned in that case.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scaleup_analysis as sa
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sa.load_tables(d)
    Traceback (most recent call last):
    ...
    scaleup_analysis.errors.ScaleupDataError: Directory ... lacks the required table(s) sites, indicators, outcomes...
    """
    d = Path(directory)
    if not d.is_dir():
        raise ScaleupDataError(
            f"Data directory {str(d)!r} does not exist (or is not a directory). Create it with "
            "`scaleup simulate --out DIR`, or point to the folder holding regions.csv, sites.csv, ..."
        )
    if check_manifest and (d / "MANIFEST").exists():
        from .manifest import check_manifest as _check

        _check(d)
    files, unknown = _find_table_files(d)
    if tables is None:
        missing = [t for t in REQUIRED_TABLES if t not in files]
        if missing:
            raise ScaleupDataError(
                f"Directory {str(d)!r} lacks the required table(s) {', '.join(missing)}: add "
                f"{', '.join(t + '.csv' for t in missing)} (or .parquet/.xlsx). Found: "
                f"{', '.join(sorted(f.name for f in files.values())) or 'no table files'}."
            )
        wanted = [t for t in TABLES if t in files]
        requested = wanted
    else:
        requested = list(dict.fromkeys([tables] if isinstance(tables, str) else tables))
        bad = [t for t in requested if t not in _SPEC_BY_NAME]
        if bad:
            raise ScaleupDataError(
                f"load_tables: unknown table name(s) {', '.join(map(repr, bad))} in tables=; "
                f"use names from {', '.join(TABLES)}."
            )
        wanted = [t for t in TABLES if t in _with_parents(requested)]
        missing = [t for t in wanted if t not in files]
        if missing:
            raise ScaleupDataError(
                f"Directory {str(d)!r} lacks table(s) {', '.join(missing)} needed to load "
                f"{', '.join(requested)} (a table is checked against the tables it refers to)."
            )
    if unknown and tables is None:
        warnings.warn(
            f"Ignored file(s) in {str(d)!r} that are not named after a table: {', '.join(unknown)} "
            f"(table names: {', '.join(TABLES)}).",
            ScaleupWarning,
            stacklevel=2,
        )
    raw: dict[str, pd.DataFrame] = {}
    read_errors: list[str] = []
    for t in wanted:
        try:
            raw[t] = _read_raw(files[t], t)
        except ScaleupDataError as exc:
            read_errors.append(f"  - {exc}")
    if read_errors:
        raise ScaleupDataError(
            f"Could not read {len(read_errors)} file(s) in {str(d)!r}; nothing was loaded:\n"
            + "\n".join(read_errors)
        )
    validated = validate_tables(raw, source={t: files[t] for t in wanted})
    return {t: validated[t] for t in TABLES if t in validated and t in requested}
