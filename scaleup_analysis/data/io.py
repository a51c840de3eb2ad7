"""Loading tables from files (CSV, Parquet, Excel) and writing them atomically.

A data directory (e.g. ``data/raw/``) holds the tables of one study (see ``docs/data_dictionary.md``):
one file per table named after it in any letter case (``sites.csv``, ``Outcomes.CSV``,
``delivery.parquet``), and/or one ``.xlsx`` workbook with a sheet per table. CSV files may be
separated by commas, semicolons or tabs and use a decimal comma (both detected), in UTF-8 or a
declared ``cp1252``/``latin-1`` encoding. :func:`load_tables` checks the directory's ``MANIFEST`` when
there is one, reads every table given (a header-only file or sheet is an empty template: the table
counts as not given; ``regions`` not given is the bundled table of Quebec's 18 regions) and validates
all tables together: either every table is returned, validated and typed, or one
:class:`~scaleup_analysis.errors.ScaleupDataError` lists every problem (missing required tables, files
not recognised or not readable, tables given twice, and every schema and cross-table problem) and
nothing is returned. The directory is never written.

Tables are written atomically (:func:`write_table_atomic`, through :mod:`scaleup_analysis._atomic`,
whose :func:`atomic_write_bytes` and :func:`atomic_write_text` are re-exported here): the content goes
to a temporary file in the same directory, which is then renamed over the target with
:func:`os.replace`. A crash or kill mid-write therefore never leaves a partial file under the target
name.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import errno
import io
import os
import re
import stat
import unicodedata
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from .._atomic import atomic_write, atomic_write_bytes, atomic_write_text
from .._checks import checked_inputs, short_repr
from .._display import Displayed
from ..errors import ScaleupDataError
from ..i18n import N_
from .schemas import (
    _FOREIGN_KEYS,
    _SEE_DICTIONARY,
    _SPEC_BY_NAME,
    REQUIRED_TABLES,
    TABLES,
    _check_tables,
    _finalize,
    _render,
    _render_tables,
    _Source,
    validate_table,
)

__all__ = [
    "load_table",
    "load_tables",
    "LoadedTables",
    "write_table_atomic",
    "atomic_write_bytes",
    "atomic_write_text",
    "DATA_SUFFIXES",
]

#: File suffixes recognised as table files, in order of preference.
DATA_SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".xlsx")

@checked_inputs(mixed_types=False, empty=True)
def write_table_atomic(data: pd.DataFrame, path: str | PathLike) -> Path:
    """Write a table to CSV or Parquet (chosen by the suffix) atomically.

    Parameters
    ----------
    data : pandas.DataFrame
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
    if not isinstance(data, pd.DataFrame):
        raise ScaleupDataError(f"write_table_atomic: data must be a pandas DataFrame, got {type(data).__name__}.")
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".csv":

        def write(tmp: Path) -> None:
            data.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")

    elif suffix == ".parquet":

        def write(tmp: Path) -> None:
            data.to_parquet(tmp, index=False)

    else:
        raise ScaleupDataError(
            f"write_table_atomic: cannot write {target.name!r}: the suffix must be .csv or .parquet "
            f"(got {suffix or 'none'!r})."
        )
    return atomic_write(target, write)


# ----------------------------------------------------------------------------------------------
# reading: options of CSV files
# ----------------------------------------------------------------------------------------------

#: CSV separators that are recognised, with their names in messages.
_SEPARATORS: dict[str, str] = {",": "comma", ";": "semicolon", "\t": "tab"}
#: codecs' name of each accepted encoding -> the name used here.
_ENCODINGS: dict[str, str] = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "cp1252": "cp1252", "iso8859-1": "latin-1"}
_STUDY_FILE = "the [data] section of study.toml"
_SPACES = (" ", "\u00a0", "\u202f")  # thousands separators of French numbers: space, NBSP, narrow NBSP
_FRENCH_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:,\d+)?$")
_PLAIN_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


@dataclass(frozen=True)
class _CsvOptions:
    separator: str  # "auto" or one of _SEPARATORS
    decimal: str  # "auto", "." or ","
    encoding: str  # "utf-8", "cp1252" or "latin-1"


def _csv_options(separator: str, decimal: str, encoding: str) -> _CsvOptions:
    sep = "\t" if separator == "tab" else separator
    if sep != "auto" and sep not in _SEPARATORS:
        raise ScaleupDataError(
            f"separator={separator!r} is not supported: use 'auto' (the default: detected from the header "
            "line), ',' (comma), ';' (semicolon) or '\\t' (tab)."
        )
    if decimal not in ("auto", ".", ","):
        raise ScaleupDataError(
            f"decimal={decimal!r} is not supported: use 'auto' (the default: ',' when the file is separated "
            "by ';' or tabs and its numbers are written like 12,5), '.' or ','."
        )
    if decimal == "," and sep == ",":
        raise ScaleupDataError(
            "decimal=',' needs a separator other than ',': a comma cannot both separate the columns and "
            "mark the decimals. Use separator=';' (or 'auto')."
        )
    try:
        codec = _ENCODINGS.get(codecs.lookup(encoding).name)
    except (LookupError, TypeError):
        codec = None
    if codec is None:
        raise ScaleupDataError(
            f"encoding={encoding!r} is not supported: use 'utf-8' (the default; a byte-order mark is "
            "accepted), 'cp1252' (Windows-1252, written by Excel on Windows) or 'latin-1' (ISO-8859-1)."
        )
    return _CsvOptions(sep, decimal, codec)


def _sep_label(sep: str) -> str:
    return f"{sep!r} ({_SEPARATORS[sep]})"


def _text_columns(table: str) -> list[str]:
    """Columns to read as text (identifiers and categories), so that "01" stays "01"."""
    return [c.name for c in _SPEC_BY_NAME[table].columns if c.kind in ("str", "category")]


def _numeric_columns(table: str, df: pd.DataFrame) -> list[str]:
    return [c.name for c in _SPEC_BY_NAME[table].columns if c.kind in ("int", "float") and c.name in df.columns]


@dataclass
class _Read:
    """One table as read from one file or workbook sheet, before validation."""

    table: str
    path: Path
    sheet: str | None  # the sheet of a workbook, None for a file of its own
    frame: pd.DataFrame
    source: _Source
    read_as: str = ""  # how a CSV file was read, when not the plain default (e.g. "decimal comma")
    fmt: dict | None = None  # the same, structured: separator, decimal, encoding (CSV files only)

    @property
    def name(self) -> str:
        """The file (or sheet of a workbook) in messages, without the directory."""
        return self.path.name if self.sheet is None else f"sheet {self.sheet!r} of {self.path.name}"

    @property
    def is_template(self) -> bool:
        return len(self.frame) == 0


# ----------------------------------------------------------------------------------------------
# reading: CSV
# ----------------------------------------------------------------------------------------------


def _encoding_error(raw: bytes, path: Path, encoding: str) -> ScaleupDataError:
    try:
        raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        offset = exc.start
    else:  # pragma: no cover - pandas and Python agree on what decodes
        offset = 0
    line = raw.count(b"\n", 0, offset) + 1
    bad = raw[offset : offset + 1]
    where = f"byte {bad!r} at byte offset {offset} (file line {line}) cannot be decoded"
    if encoding == "utf-8":
        return ScaleupDataError(
            f"File {str(path)!r} is not valid UTF-8: {where}. It was probably saved as "
            "Windows-1252/Latin-1 (e.g. 'Montréal' written by an old Excel). Either declare its encoding: "
            f'encoding = "cp1252" in {_STUDY_FILE} (or encoding="cp1252" when loading), or re-encode it '
            "as UTF-8, e.g. in Excel 'Save as > CSV UTF-8', or "
            "`iconv -f WINDOWS-1252 -t UTF-8 old.csv > new.csv`, then load the new file."
        )
    return ScaleupDataError(
        f"File {str(path)!r} is not valid {encoding}: {where}. Declare the encoding it was saved in: "
        f'encoding = "utf-8" or "latin-1" in {_STUDY_FILE}, or re-save it as CSV UTF-8.'
    )


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _header_line(raw: bytes, encoding: str) -> str:
    """The first non-blank line of the file (pandas skips blank lines before the header too)."""
    start = 0
    line = b""
    while start < len(raw):
        end = raw.find(b"\n", start)
        end = len(raw) if end < 0 else end
        line = raw[start:end]
        if line.strip():
            break
        start = end + 1
    return line.decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r")


def _header_fields(header: str, sep: str) -> list[str]:
    try:
        return [f.strip() for f in next(csv.reader([header], delimiter=sep), [])]
    except csv.Error:
        return [header]


def _choose_separator(path: Path, table: str, header: str, requested: str) -> str:
    """The separator of the file: the one that splits the header into the most column names of the
    table (the header holds them, which makes detection reliable), or the one requested, unless the
    header says it is wrong."""
    known = {c.name for c in _SPEC_BY_NAME[table].columns}
    fields = {sep: _header_fields(header, sep) for sep in _SEPARATORS}
    score = {sep: (sum(f in known for f in fields[sep]), len(fields[sep])) for sep in _SEPARATORS}
    best = max(_SEPARATORS, key=lambda sep: score[sep])  # ties go to the first: ',', then ';', then tab
    if requested == "auto":
        return best
    if score[best][0] > score[requested][0]:
        raise ScaleupDataError(
            f"File {str(path)!r} is not separated by {_sep_label(requested)}, the separator that was set: "
            f"its header line splits into {len(fields[requested])} column(s) at {requested!r} but into "
            f"{len(fields[best])} at {best!r}, {score[best][0]} of them column names of table '{table}'. "
            f'The file is separated by {_sep_label(best)}: set separator = "{best}" in {_STUDY_FILE} (or '
            f"leave the separator setting out: it is detected), or pass separator={best!r}."
        )
    return requested


def _parse_csv(raw: bytes, path: Path, table: str, sep: str, decimal: str, encoding: str) -> pd.DataFrame:
    fix = (
        f"Check that every line has as many {_SEPARATORS[sep]}s as the header (text containing a "
        f"{_SEPARATORS[sep]} must be quoted) and that the separator is {_sep_label(sep)}."
    )
    try:
        with warnings.catch_warnings():
            # index_col=False: never turn surplus leading fields into an index silently
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # a column mixing numbers and text: validation names its bad rows, pandas' warning adds nothing
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(
                io.BytesIO(raw),
                sep=sep,
                decimal=decimal,
                encoding=encoding,
                dtype={c: str for c in _text_columns(table)},
                float_precision="round_trip",
                index_col=False,
            )
    except UnicodeDecodeError:
        raise _encoding_error(raw, path, encoding) from None
    except pd.errors.EmptyDataError:  # e.g. only separators or line ends: no column names
        raise ScaleupDataError(
            f"File {str(path)!r} has no column names: a table file needs a header line with the column "
            f"names of table '{table}' (see docs/data_dictionary.md)."
        ) from None
    except pd.errors.ParserError as exc:
        raise ScaleupDataError(f"File {str(path)!r} is not a well-formed CSV file: {exc}. {fix}") from None
    except pd.errors.ParserWarning:
        text = raw.decode(encoding, errors="replace")
        try:  # newline="": the csv module must see the line ends itself (stray \r inside fields)
            rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=sep)]
        except csv.Error as exc:
            raise ScaleupDataError(f"File {str(path)!r} is not a well-formed CSV file: {exc}. {fix}") from None
        rows = [r for r in rows if r]
        width = len(rows[0])
        long = [i + 1 for i, r in enumerate(rows) if len(r) > width]
        shown = ", ".join(str(n) for n in long[:5]) + (", ..." if len(long) > 5 else "")
        raise ScaleupDataError(
            f"File {str(path)!r} is not a well-formed CSV file: {len(long)} line(s) have more fields "
            f"than the {width} of the header (file line {shown}). {fix}"
        ) from None


def _no_repeated_names(names: list, where: str, header: str) -> None:
    """A header that names a column twice is an error (pandas would rename the second one 'x.1')."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names, start=1):
        if isinstance(name, str) and name.strip():
            seen.setdefault(name.strip(), []).append(i)
    repeated = {n: cols for n, cols in seen.items() if len(cols) > 1}
    if repeated:
        listed = "; ".join(
            f"{short_repr(n)} in columns {', '.join(map(str, cols))}" for n, cols in list(repeated.items())[:5]
        )
        raise ScaleupDataError(
            f"{where} names a column more than once in {header}: {listed}. Give every column a distinct "
            "name: delete the repeated column, or rename it after what it holds (see docs/data_dictionary.md)."
        )


def _french_numbers(df: pd.DataFrame, table: str) -> bool:
    """Whether a numeric column holds numbers written the French way (``12,5`` or ``1 234``)."""
    for col in _numeric_columns(table, df):
        if df[col].dtype != object:
            continue
        values = df[col].dropna().astype(str).str.strip()
        french = values.str.match(_FRENCH_NUMBER) & values.str.contains("[, \u00a0\u202f]")
        if french.any():
            return True
    return False


def _french_sample(raw: bytes, table: str, sep: str, encoding: str) -> bool:
    """Whether the first rows of the file write numbers the French way."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            head = pd.read_csv(io.BytesIO(raw), sep=sep, encoding=encoding, dtype=str, nrows=200, index_col=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):  # the full reading reports it
        return False
    return _french_numbers(head, table)


def _read_french_numbers(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Numeric columns that pandas left as text because of thousands separators (``1 234,5``): read
    each value as a number; a value that is not a number stays as it is (validation reports it)."""

    def number(v):
        if not isinstance(v, str):
            return v
        t = v.strip()
        for space in _SPACES:
            t = t.replace(space, "")
        t = t.replace(",", ".")
        return float(t) if _PLAIN_NUMBER.match(t) else v

    cols = [c for c in _numeric_columns(table, df) if df[c].dtype == object]
    if not cols:
        return df
    out = df.copy()
    for c in cols:
        out[c] = pd.Series([number(v) for v in df[c].to_numpy()], index=df.index, dtype=object)
    return out


def _one_field_lines(df: pd.DataFrame, header: str, sep: str) -> str | None:
    """Another separator, when the lines came out as one field that contains it (the header, or every
    data line under a header of several columns)."""
    one_column = df.shape[1] == 1
    if not one_column and not (len(df) and df.iloc[:, 1:].isna().all(axis=None)):
        return None
    first = df.iloc[:, 0].dropna().astype(str)
    for other in _SEPARATORS:
        if other == sep:
            continue
        if (one_column and other in header) or (len(first) and first.str.contains(other, regex=False).all()):
            return other
    return None


def _drop_blank_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Rows with no value at all are ignored; returns the rows kept, as positions of the rows read."""
    keep = df.notna().any(axis=1).to_numpy()
    if keep.all():
        return df, None
    return df[keep].reset_index(drop=True), np.flatnonzero(keep)


def _record_lines(path: Path, encoding: str, sep: str, n_rows: int) -> list[int] | None:
    """File line on which each data row starts (blank lines skipped as pandas does; fields quoted over
    several lines counted); None when the csv module does not see the same rows as pandas."""
    try:
        text = path.read_bytes().decode(encoding, errors="replace").lstrip("\ufeff")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        starts = []
        previous = 0
        for record in reader:
            if record and not (len(record) == 1 and not record[0].strip()):
                starts.append(previous + 1)
            previous = reader.line_num
    except (OSError, csv.Error):
        return None
    return starts[1:] if len(starts) == n_rows + 1 else None  # starts[0] is the header


def _csv_row_numbers(path: Path, encoding: str, sep: str, n_rows: int, kept: np.ndarray | None):
    """Row position -> file line, computed from the file only when an error quotes a row."""
    lines: list = []

    def number(pos: int) -> int:
        if not lines:
            lines.append(_record_lines(path, encoding, sep, n_rows))
        row = pos if kept is None else int(kept[pos])
        return row + 2 if lines[0] is None else lines[0][row]

    return number


def _detect_format(raw: bytes, path: Path, table: str, options: _CsvOptions) -> tuple[str, str, str, str]:
    """Encoding, header line, separator and decimal mark of a CSV file from its bytes (or its first ones)."""
    if not raw.removeprefix(b"\xef\xbb\xbf").strip():
        raise ScaleupDataError(
            f"File {str(path)!r} is empty: a table file needs a header line with the column names "
            f"of table '{table}' (see docs/data_dictionary.md)."
        )
    encoding = options.encoding
    if encoding != "utf-8" and not raw.isascii() and _is_utf8(raw):
        # accented letters as valid UTF-8 sequences: the file is UTF-8 whatever was declared (read as
        # Windows-1252 it would turn 'Montréal' into 'MontrÃ©al' without any error)
        encoding = "utf-8"
    header = _header_line(raw, encoding)
    sep = _choose_separator(path, table, header, options.separator)
    _no_repeated_names(_header_fields(header, sep), f"File {str(path)!r}", "its header line")
    decimal = options.decimal
    if decimal == "auto":  # a look at the first rows spares a second reading of most French files
        decimal = "," if sep != "," and _french_sample(raw, table, sep, encoding) else "."
    return encoding, header, sep, decimal


def _read_csv(path: Path, table: str, options: _CsvOptions) -> _Read:
    raw = path.read_bytes()
    encoding, header, sep, decimal = _detect_format(raw, path, table, options)
    df = _parse_csv(raw, path, table, sep, decimal, encoding)
    french = sep != "," and decimal == "." and _french_numbers(df, table)
    if french and options.decimal == "auto":  # French numbers only further down the file
        decimal = ","
        df = _parse_csv(raw, path, table, sep, decimal, encoding)
    if decimal == ",":
        df = _read_french_numbers(df, table)
    other = _one_field_lines(df, header, sep)
    if other is not None and df.shape[1] > 1:
        raise ScaleupDataError(
            f"File {str(path)!r} mixes separators: its header line is separated by {_sep_label(sep)} but "
            f"every data line by {_sep_label(other)}, so each line reads as one field. Use one separator "
            "throughout, e.g. write the header line again with the separator of the data lines, or export "
            "the table again from the spreadsheet."
        )
    if other is not None:
        how = "that was set" if options.separator != "auto" else "detected from the header"
        raise ScaleupDataError(
            f"File {str(path)!r} reads as one column per line with the separator {_sep_label(sep)} {how}, "
            f"yet its lines contain {_sep_label(other)}: the file is probably separated by {other!r}. "
            f'Set separator = "{other}" in {_STUDY_FILE}, or pass separator={other!r}, and check that '
            "the header line holds the column names of the table."
        )
    n_rows = len(df)
    df, kept = _drop_blank_rows(df)
    hint = ""
    if french and decimal == ".":
        hint = (
            "numbers written like '12,5' use a decimal comma, but decimal '.' was set: set "
            f'decimal = "," in {_STUDY_FILE} (or leave it out: it is detected).'
        )
    read_as = []
    if sep != ",":
        read_as.append(f"separator {_sep_label(sep)}")
    if decimal == ",":
        read_as.append("decimal comma")
    if encoding != options.encoding:
        read_as.append(f"encoding UTF-8 (not the {options.encoding} that was set: the file is valid UTF-8)")
    elif encoding != "utf-8":
        read_as.append(f"encoding {encoding}")
    source = _Source(str(path), "csv", _csv_row_numbers(path, encoding, sep, n_rows, kept), hint)
    fmt = {"separator": sep, "decimal": decimal, "encoding": encoding, "encoding_set": options.encoding}
    return _Read(table, path, None, df, source, ", ".join(read_as), fmt)


def csv_format(path: Path, table: str, *, separator: str = "auto", decimal: str = "auto", encoding: str = "utf-8",
               sample_bytes: int = 1 << 20) -> dict:
    """How a CSV file too large to read at once is written, from its first ``sample_bytes``: the same
    detection of encoding, separator and decimal mark as :func:`_read_csv` (``separator``, ``decimal``,
    ``encoding``, ``encoding_set``), from the settings of the study file. Used for patient-level tables
    read in chunks."""
    options = _csv_options(separator, decimal, encoding)
    with open(path, "rb") as fh:
        raw = fh.read(sample_bytes)
        more = bool(fh.read(1))
    if more:  # whole lines only (a character cut in two would read as an encoding error)
        raw = raw[: raw.rfind(b"\n") + 1] or raw
    encoding, _, sep, decimal = _detect_format(raw, path, table, options)
    return {"separator": sep, "decimal": decimal, "encoding": encoding, "encoding_set": options.encoding}


def csv_chunks(path: Path, table: str, fmt: dict, chunk_rows: int):
    """The rows of a CSV file in chunks of ``chunk_rows``, read as :func:`_read_csv` reads the whole file
    (identifiers as text, decimal comma, blank rows left out); yields ``(frame, lines)`` where ``lines``
    holds the file line of each row, assuming one line per record (header = line 1)."""
    sep, decimal, encoding = fmt["separator"], fmt["decimal"], fmt["encoding"]
    reader = pd.read_csv(path, sep=sep, decimal=decimal, encoding=encoding,
                         dtype={c: str for c in _text_columns(table)}, float_precision="round_trip",
                         index_col=False, chunksize=chunk_rows, skip_blank_lines=False)
    line = 2
    with reader:
        for chunk in reader:
            if decimal == ",":
                chunk = _read_french_numbers(chunk, table)
            lines = np.arange(line, line + len(chunk))
            line += len(chunk)
            chunk, kept = _drop_blank_rows(chunk)
            yield chunk, (lines if kept is None else lines[kept])


# ----------------------------------------------------------------------------------------------
# reading: Excel and Parquet
# ----------------------------------------------------------------------------------------------


def _header_row_score(values: Iterable, expected: set[str]) -> int:
    return sum(1 for v in values if isinstance(v, str) and v.strip() in expected)


def _table_of_sheet(name: str) -> str | None:
    key = str(name).strip().casefold()
    return key if key in _SPEC_BY_NAME else None


def _open_workbook(path: Path) -> pd.ExcelFile:
    try:
        return pd.ExcelFile(path, engine="openpyxl")
    except Exception as exc:  # corrupt or non-xlsx file: openpyxl raises many different types
        raise _excel_error(path, exc) from None


def _excel_error(path: Path, exc: Exception) -> ScaleupDataError:
    return ScaleupDataError(
        f"Cannot read {str(path)!r} as an Excel .xlsx workbook ({type(exc).__name__}: {exc}). "
        "Re-save it from Excel as .xlsx, or export it as CSV UTF-8."
    )


def _read_sheet(xls: pd.ExcelFile, path: Path, sheet: str, table: str) -> _Read:
    label = f"sheet {sheet!r} of {str(path)!r}"
    try:
        peek = pd.read_excel(xls, sheet_name=sheet, header=None, nrows=10, dtype=object)
        expected = {c.name for c in _SPEC_BY_NAME[table].columns}
        if len(peek):
            _no_repeated_names(peek.iloc[0].tolist(), f"Sheet {sheet!r} of {str(path)!r}", "sheet row 1")
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
    except Exception as exc:
        raise _excel_error(path, exc) from None
    # columns without a header and without data are formatting left over in the sheet
    unnamed = [c for c in df.columns if str(c).startswith("Unnamed:")]
    df = df.drop(columns=[c for c in unnamed if df[c].isna().all()])
    unnamed = [str(c) for c in df.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        raise ScaleupDataError(
            f"Sheet {sheet!r} of {str(path)!r} has {len(unnamed)} empty header cell(s) in sheet row 1 "
            f"(columns {', '.join(str(df.columns.get_loc(c) + 1) for c in unnamed[:5])}): merged cells "
            "or a multi-row header? Put exactly one column name in each cell of row 1 and delete the "
            "other header rows and empty columns."
        )
    df, kept = _drop_blank_rows(df)

    def number(pos: int) -> int:  # sheet row 1 is the header; pandas keeps blank rows between data
        return (pos if kept is None else int(kept[pos])) + 2

    return _Read(table, path, sheet, df, _Source(label, "excel", number))


def _read_excel(path: Path, table: str, options: _CsvOptions) -> _Read:
    with _open_workbook(path) as xls:
        sheets = [s for s in xls.sheet_names if _table_of_sheet(s) == table]
        return _read_sheet(xls, path, sheets[0] if sheets else xls.sheet_names[0], table)


def _read_parquet(path: Path, table: str, options: _CsvOptions) -> _Read:
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise ScaleupDataError(
            f"Cannot read {str(path)!r} as a Parquet file ({type(exc).__name__}: {exc}). "
            "Rewrite it with sa.write_table_atomic(df, path) or export it as CSV."
        ) from None
    return _Read(table, path, None, df, _Source(str(path), "frame"))


_READERS = {".csv": _read_csv, ".parquet": _read_parquet, ".xlsx": _read_excel}


def _table_name(path: Path, table: str | None) -> str:
    name = table if table is not None else path.stem.casefold()
    if name not in _SPEC_BY_NAME:
        how = (
            f"pass table=... (one of {', '.join(TABLES)})"
            if table is None
            else f"use one of {', '.join(TABLES)}"
        )
        shown = path.stem if table is None else table
        close = _suggest(path.name) if table is None else None
        mean = f" (did you mean {close}{path.suffix.strip()}?)" if close else ""
        raise ScaleupDataError(
            f"Cannot tell which table {str(path)!r} holds: {short_repr(shown)} is not a table name{mean}. Rename "
            f"the file after its table (e.g. sites.csv) or {how}."
        )
    return name


def _not_a_file(path: Path) -> str | None:
    """Why ``path`` is not a regular file that can be read (None when it is one or does not exist)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if not os.path.islink(path):
            return None  # does not exist
        try:
            target = os.readlink(path)
        except OSError:  # pragma: no cover - it was a link a moment ago
            target = "?"
        if exc.errno == errno.ELOOP:
            return f"a symbolic link that leads back to itself (a loop through {short_repr(target)})"
        return f"a symbolic link to {short_repr(target)}, which does not exist"
    link = f"a symbolic link to {short_repr(os.readlink(path))}, which is " if os.path.islink(path) else ""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        what = "a folder, not a file"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device (e.g. /dev/zero), not a file holding a table"
    elif stat.S_ISFIFO(mode):
        what = "a named pipe, not a file"
    else:
        what = "not a regular file (a socket or other special file)"
    return link + what


def _read_file(path: Path, table: str, options: _CsvOptions) -> _Read:
    why = _not_a_file(path)
    if why is not None:
        raise ScaleupDataError(
            f"Cannot read {str(path)!r}: it is {why}. Give the path of the table file itself "
            "(e.g. data/raw/sites.csv), a regular file holding the table."
        )
    if not path.is_file():
        raise ScaleupDataError(f"File {str(path)!r} does not exist (or is not a file); check the path.")
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        why = _unrecognised(path.name)
        raise ScaleupDataError(
            f"Cannot read {str(path)!r}: unsupported file type {suffix or '(none)'!r}. Table files must be "
            ".csv, .parquet or .xlsx" + (f"; this file is {why}." if why and why.startswith(("an ", "a ")) else
                                         f"; {why}." if why else ".")
        )
    try:
        return reader(path, table, options)
    except OSError as exc:  # e.g. no permission to read it
        raise ScaleupDataError(
            f"Cannot read {str(path)!r}: {exc.strerror or exc}. Check that the file can be opened (its "
            "permissions, or whether another program holds it), or copy it to a readable place."
        ) from None


@checked_inputs
def load_table(
    path: str | PathLike,
    table: str | None = None,
    *,
    separator: str = "auto",
    decimal: str = "auto",
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read one table file and validate it against its schema.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.parquet`` or ``.xlsx`` file. Of a workbook, the sheet named after the table
        (letter case and surrounding blanks ignored) is read, else the first sheet; its row 1 holds
        the column names.
    table : str, optional
        Table name (see ``docs/data_dictionary.md``); by default the file name without suffix, in any
        letter case, so ``data/raw/Sites.CSV`` is table ``sites``.
    separator : {"auto", ",", ";", "\\t"}, default "auto"
        Separator of a CSV file. ``"auto"`` takes the one that splits the header line into the
        column names of the table.
    decimal : {"auto", ".", ","}, default "auto"
        Decimal mark of a CSV file. ``"auto"`` takes ``","`` when the file is separated by ``;`` or tabs
        and its numeric columns hold numbers like ``12,5`` or ``1 234``, else ``"."``. With ``","``,
        blanks, no-break and narrow no-break spaces group thousands (``1 234,5``). Text columns are
        never changed.
    encoding : {"utf-8", "cp1252", "latin-1"}, default "utf-8"
        Encoding of a CSV file (aliases such as ``"windows-1252"`` or ``"iso-8859-1"`` are accepted).
        A UTF-8 byte-order mark is accepted. A file with accented letters that is valid UTF-8 is read as
        UTF-8 whatever encoding is given (read as Windows-1252 it would silently become mojibake).

    Returns
    -------
    pandas.DataFrame
        The validated, typed table (see :func:`scaleup_analysis.validate_table`). Identifier and text
        columns are read as strings, so ``"01"`` stays ``"01"``. Blank rows are ignored.

    Raises
    ------
    ScaleupDataError
        If the file is missing, cannot be decoded with ``encoding`` (the message gives the byte offset
        and how to declare the encoding), is not separated by the separator set, is malformed, has a
        multi-row Excel header, holds only its header row (an empty template), or the table breaks its
        schema (the message gives file lines or sheet rows). Foreign keys need the other tables: use
        :func:`load_tables` on the directory.

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

    A French-locale Excel export (``;`` and decimal comma, Windows-1252):

    >>> _ = (d / "evidence.csv").write_bytes(
    ...     "study;yi;vi;setting\\nGagné 2019;0,42;0,04;essai\\n".encode("cp1252"))
    >>> sa.load_table(d / "evidence.csv", encoding="cp1252")
            study    yi    vi setting
    0  Gagné 2019  0.42  0.04   essai
    """
    p = Path(path)
    options = _csv_options(separator, decimal, encoding)
    name = _table_name(p, table)
    read = _read_file(p, name, options)
    if read.is_template:
        raise ScaleupDataError(
            f"{_capital(_label(read))} holds only its header row (an empty template): table '{name}' has "
            "no data. Fill in its rows, one per record (see docs/data_dictionary.md)."
        )
    return validate_table(read.frame, name, source=read.source)


def _label(read: _Read) -> str:
    return f"file {str(read.path)!r}" if read.sheet is None else read.source.label


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# ----------------------------------------------------------------------------------------------
# reading a data directory
# ----------------------------------------------------------------------------------------------

#: Suffixes of files that look like data: such a file that is not recognised stops the loading.
_DATA_LIKE = (".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".xlsm", ".xls", ".ods")
_NOT_DATA = ("study.toml", "manifest")  # besides hidden files, README*, LISEZMOI* and *.md


@dataclass(frozen=True, repr=False)
class LoadedTables(Displayed):
    """The tables of a data directory and where each came from (returned by :func:`load_tables`).

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        Table name -> validated, typed table, in data-flow order (see ``docs/data_dictionary.md``).
    files : dict of str to pathlib.Path or str
        Table name -> the file it was read from (a :class:`pathlib.Path`; for a workbook sheet, the
        workbook), or the string ``"bundled"`` when the table was not given and the package's default
        was used (see ``defaults``).
    sheets : dict of str to str
        Table name -> sheet name, for the tables read from a sheet of an ``.xlsx`` workbook.
    defaults : tuple of str
        Tables that were not given and were taken from the package (``regions``: Quebec's 18 health
        regions).
    notes : tuple of str
        Plain-language statements about the loading, for a report: defaults used, CSV files read with
        another separator, a decimal comma or another encoding.
    ignored : dict of str to str
        Files (or workbook sheets) in the directory that were not used -> why (empty templates, sheets
        not named after a table, files that are not data, tables not requested).
    formats : dict of str to dict
        Table name -> how its CSV file was read: ``separator``, ``decimal``, ``encoding`` (the one
        used) and ``encoding_set`` (the one asked for); only for tables read from CSV files.
    deferred : dict of str to pathlib.Path
        Patient-level tables named in ``defer=`` that were found as a file of their own: table name ->
        the file, not read (:mod:`scaleup_analysis.data.patient_level` validates and summarises it in
        chunks).
    """

    tables: dict[str, pd.DataFrame]
    files: dict[str, Path | str]
    sheets: dict[str, str]
    defaults: tuple[str, ...]
    notes: tuple[str, ...]
    ignored: dict[str, str]
    formats: dict[str, dict] = field(default_factory=dict)
    deferred: dict[str, Path] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per table: ``table``, ``source`` (file path or ``"bundled"``), ``sheet``, ``rows``,
        ``columns``."""
        return pd.DataFrame(
            [
                {
                    "table": t,
                    "source": str(self.files[t]),
                    "sheet": self.sheets.get(t),
                    "rows": len(df),
                    "columns": df.shape[1],
                }
                for t, df in self.tables.items()
            ],
            columns=["table", "source", "sheet", "rows", "columns"],
        )

    def _repr_fields(self) -> dict:
        return {"n_tables": len(self.tables), "tables": list(self.tables), "defaults": list(self.defaults),
                "n_ignored": len(self.ignored)}

    def _summary(self, tx) -> str:
        """The tables with their source and size, then how the files were read and the files not used."""
        width = max((len(t) for t in self.tables), default=0)
        lines = []
        for t, df in self.tables.items():
            if t in self.sheets:
                src = tx("sheet {sheet} of {file}", sheet=repr(self.sheets[t]), file=str(self.files[t]))
            elif self.files[t] == "bundled":
                src = tx("bundled (the package's table)")
            else:
                src = str(self.files[t])
            lines.append(f"{t:<{width}}  {tx.n('{n} row', '{n} rows', len(df)):>14}  "
                         f"{tx.n('{n} column', '{n} columns', df.shape[1]):>12}  {src}")
        lines += [tx("Note: {note}", note=n) for n in reading_notes(self, tx)]
        lines += [tx("Not used: {name} ({why})", name=name, why=_ignored_reason(why, tx))
                  for name, why in self.ignored.items()]
        return "\n".join(lines)


def reading_notes(loaded: LoadedTables, tx) -> list[str]:
    """What a report says about how the tables were read, in ``tx``'s language: tables taken from the
    package's defaults, CSV files read with another separator, a decimal comma or another encoding."""
    notes = []
    if "regions" in loaded.defaults:
        notes.append(tx("Regions: not given; the bundled table of Quebec's 18 health regions is used."))
    seps = {",": tx("comma"), ";": tx("semicolon"), "\t": tx("tab")}
    groups: dict[str, list[str]] = {}
    for table, fmt in loaded.formats.items():
        parts = []
        if fmt["separator"] != ",":
            parts.append(tx("separator: {sep}", sep=seps.get(fmt["separator"], fmt["separator"])))
        if fmt["decimal"] == ",":
            parts.append(tx("decimal comma"))
        if fmt["encoding"] != fmt["encoding_set"]:
            parts.append(tx("encoding UTF-8 (the file is valid UTF-8, although {enc} was set)",
                            enc=fmt["encoding_set"]))
        elif fmt["encoding"] != "utf-8":
            parts.append(tx("encoding {enc}", enc=fmt["encoding"]))
        if parts:
            groups.setdefault(", ".join(parts), []).append(Path(loaded.files[table]).name)
    for how, files in groups.items():
        notes.append(tx("CSV files read with {how}: {files}.", how=how, files=", ".join(sorted(files))))
    return notes


#: Why a file or sheet was not used (``LoadedTables.ignored``), as the summary says it.
_FIXED_REASONS = {"not a data file": N_("not a data file"), "not named after a table": N_("not named after a table")}


def _ignored_reason(why: str, tx) -> str:
    if why in _FIXED_REASONS:
        return tx(_FIXED_REASONS[why])
    if m := re.fullmatch(r"table '(.+)' was not requested", why):
        return tx("table '{table}' was not requested", table=m.group(1))
    if m := re.fullmatch(r"an empty template \(header row only\): table '(.+)' counts as not given", why):
        return tx("an empty template (header row only): table '{table}' counts as not given", table=m.group(1))
    return why


def _is_not_data(name: str) -> bool:
    low = name.casefold()
    return (
        name.startswith((".", "~$"))  # hidden files, temporary files, Excel's lock files
        or low in _NOT_DATA
        or low.startswith(("readme", "lisezmoi"))
        or low.endswith(".md")
    )


def _suggest(name: str) -> str | None:
    """The table a file name probably means (``site.csv``, ``Outcome.csv``, ``sites (1).csv``,
    ``régions.csv``, ``composantes.csv``), or None."""
    stem = Path(name.strip()).stem
    key = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode().casefold().strip()
    key = re.sub(r"[\s_-]*(\(\d+\)|-?\s*cop(y|ie)( \d+)?)$", "", key)  # "sites (1)", "sites - Copie"
    key = re.sub(r"[\s-]+", "_", key.strip())
    if key in _SPEC_BY_NAME:
        return key
    prefixed = [t for t in TABLES if key.startswith(t) or (len(key) >= 5 and t.startswith(key))]
    if prefixed:
        return max(prefixed, key=len)
    close = difflib.get_close_matches(key, TABLES, n=1, cutoff=0.75)
    return close[0] if close else None


def _unrecognised(name: str) -> str | None:
    """Why a file that looks like data is not read and how to fix it; None for other files."""
    bare = name.strip()
    suffix = Path(bare).suffix.lower()
    table = _suggest(bare)
    if suffix not in _DATA_LIKE or (suffix == ".txt" and table is None):
        return None
    if bare != name:
        blank = f"its name {'ends' if name.endswith(tuple(_SPACES)) else 'starts'} with a blank"
        return f"{blank}: did you mean {table}{suffix}? Rename the file" if table else f"{blank}: remove it"
    if suffix in (".xls", ".ods", ".xlsm"):
        kind = {
            ".xls": "an Excel 97-2003 workbook (.xls)",
            ".ods": "an OpenDocument spreadsheet (.ods)",
            ".xlsm": "a macro-enabled workbook (.xlsm)",
        }[suffix]
        named = f"{table}.xlsx or {table}.csv" if table else "an .xlsx workbook or CSV files named after their tables"
        return (
            f"{kind}, which is not read: open it and save it as an Excel Workbook (.xlsx) or as CSV UTF-8 "
            f"({named})"
        )
    if suffix in (".txt", ".tsv"):
        return (
            "text tables are read from files ending in .csv (separated by commas, semicolons or tabs): "
            f"rename it {table + '.csv' if table else 'after its table, e.g. sites.csv'}"
        )
    if table:
        return f"not a table name; did you mean {table}{suffix}? Rename the file"
    return (
        f"not named after a table: rename it after the table it holds (one of {', '.join(TABLES)}), or move "
        "it out of the folder"
    )


@dataclass
class _Scan:
    """What a directory holds: the sources of each table, and the files not used."""

    sources: dict[str, list[tuple[Path, str | None]]] = field(default_factory=dict)  # table -> (file, sheet)
    unrecognised: dict[str, str] = field(default_factory=dict)  # file name -> why and how to fix
    unreadable: list[str] = field(default_factory=list)  # messages
    ignored: dict[str, str] = field(default_factory=dict)  # file or sheet -> why


def _scan(directory: Path, wanted: set[str] | None) -> _Scan:
    scan = _Scan()
    for f in sorted(directory.iterdir(), key=lambda p: p.name):
        name = f.name
        if _is_not_data(name):
            continue
        suffix = f.suffix.lower()
        table = f.stem.casefold()
        if not f.is_file():
            looks_like_data = (suffix in DATA_SUFFIXES and table in _SPEC_BY_NAME) or _unrecognised(name) is not None
            why = _not_a_file(f) if looks_like_data else None
            if why is not None:
                scan.unrecognised[name] = f"{why}; the table must be a regular file: replace it with the file itself"
            continue
        if suffix in DATA_SUFFIXES and table in _SPEC_BY_NAME:
            scan.sources.setdefault(table, []).append((f, None))
        elif suffix == ".xlsx":
            _scan_workbook(f, scan)
        elif (why := _unrecognised(name)) is not None:
            scan.unrecognised[name] = why
        else:
            scan.ignored[name] = "not a data file"
    if wanted is not None:
        for table in [t for t in scan.sources if t not in wanted]:
            for path, sheet in scan.sources.pop(table):
                where = path.name if sheet is None else f"sheet {sheet!r} of {path.name}"
                scan.ignored[where] = f"table '{table}' was not requested"
    return scan


def _scan_workbook(path: Path, scan: _Scan) -> None:
    try:
        with _open_workbook(path) as xls:
            sheets = list(xls.sheet_names)
    except ScaleupDataError as exc:
        scan.unreadable.append(str(exc))
        return
    tables = {s: _table_of_sheet(s) for s in sheets}
    if not any(tables.values()):
        table = _suggest(path.name)
        scan.unrecognised[path.name] = (
            f"a workbook without a sheet named after a table (its sheets: {', '.join(map(repr, sheets))}): "
            "name each sheet after the table it holds, e.g. 'sites'"
            + (f"; or, if it holds only table {table}, rename it {table}.xlsx" if table else "")
        )
        return
    for sheet, table in tables.items():
        if table is None:
            scan.ignored[f"sheet {sheet!r} of {path.name}"] = "not named after a table"
        else:
            scan.sources.setdefault(table, []).append((path, sheet))


def _read_sources(scan: _Scan, options: _CsvOptions) -> tuple[dict[str, list[_Read]], dict[str, list[str]]]:
    """Read every source found: table -> what was read, table -> why a source could not be read."""
    reads: dict[str, list[_Read]] = {}
    failed: dict[str, list[str]] = {}
    workbooks: dict[Path, list[tuple[str, str]]] = {}
    for table, places in scan.sources.items():
        for path, sheet in places:
            if sheet is not None:
                workbooks.setdefault(path, []).append((table, sheet))
                continue
            try:
                reads.setdefault(table, []).append(_read_file(path, table, options))
            except ScaleupDataError as exc:
                failed.setdefault(table, []).append(str(exc))
    for path, sheets in workbooks.items():
        try:
            xls = _open_workbook(path)
        except ScaleupDataError as exc:  # pragma: no cover - it opened during the scan
            for table, _ in sheets:
                failed.setdefault(table, []).append(str(exc))
            continue
        with xls:
            for table, sheet in sheets:
                try:
                    reads.setdefault(table, []).append(_read_sheet(xls, path, sheet, table))
                except ScaleupDataError as exc:
                    failed.setdefault(table, []).append(str(exc))
    return reads, failed


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


def _default_table(table: str) -> pd.DataFrame:
    if table == "regions":
        from .datasets import load_dataset

        regions = load_dataset("quebec_regions")
        regions.attrs = {}
        return regions
    raise KeyError(table)  # pragma: no cover - every spec with a default is handled above


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _requested_tables(tables) -> list[str] | None:
    """The table names asked for (None: every table), checked."""
    if tables is None:
        return None
    requested = list(dict.fromkeys([tables] if isinstance(tables, str) else tables))
    bad = [t for t in requested if t not in _SPEC_BY_NAME]
    if bad:
        raise ScaleupDataError(
            f"load_tables: unknown table name(s) {', '.join(map(repr, bad))} in tables=; "
            f"use names from {', '.join(TABLES)}."
        )
    return requested


def _with_defaults(found: _Sorted, failed, wanted) -> tuple[dict[str, pd.DataFrame], list[str], list[str]]:
    """The tables read, plus the bundled default of each optional table not given; the tables taken
    from defaults and the notes saying so (and how CSV files were read)."""
    frames = {t: r.frame for t, r in found.given.items()}
    defaults, notes = [], []
    for table in TABLES if wanted is None else [t for t in TABLES if t in wanted]:
        spec = _SPEC_BY_NAME[table]
        if spec.default and table not in frames and table not in failed and table not in found.twice:
            frames[table] = _default_table(table)
            defaults.append(table)
            notes.append(f"{table}: not given, {spec.default} was used.")
    for read_as, names in _group((r.read_as, r.name) for r in found.given.values() if r.read_as).items():
        notes.append(f"{', '.join(names)}: read with {read_as}.")
    return frames, defaults, notes


def _raise_if_not_loadable(d: Path, missing, requested, found: _Sorted, unrecognised, unreadable, results) -> None:
    """One ScaleupDataError listing every problem (missing, unrecognised, doubled or unreadable
    files, invalid tables), or nothing."""
    invalid = [r for r in results.values() if r.problems]
    n_invalid = sum(len(r.problems) for r in invalid)
    # each kind of problem: (number of problems, heading, lines)
    blocks = [
        (len(missing), *_missing_lines(d, missing, requested, found.templates)),
        (len(unrecognised), f"{_plural(len(unrecognised), 'file')} in {str(d)!r} not recognised",
         [f"  - {name!r}: {why}." for name, why in unrecognised.items()]),
        (len(found.twice), f"{_plural(len(found.twice), 'table')} given more than once", list(found.twice.values())),
        (len(unreadable), f"{_plural(len(unreadable), 'file')} could not be read", [f"  - {m}" for m in unreadable]),
    ]
    blocks = [b for b in blocks if b[0]]
    if blocks:
        if invalid:
            blocks.append((
                n_invalid,
                f"Invalid data: {_plural(n_invalid, 'problem')} in {_plural(len(invalid), 'table')}",
                _render_tables(list(results.values())),
            ))
        if len(blocks) == 1:
            lines = [f"{blocks[0][1]}; nothing was loaded:", *blocks[0][2]]
        else:
            n = sum(b[0] for b in blocks)
            lines = [f"Cannot load the data in {str(d)!r}: {_plural(n, 'problem')}, listed below; nothing was loaded."]
            for _, heading, block in blocks:
                lines += [f"{heading}:", *block]
        lines.append(f"{_SEE_DICTIONARY} `scaleup init DIR` writes a study folder with empty templates of every table.")
        raise ScaleupDataError("\n".join(lines))
    if invalid:
        intro = (
            f"Invalid data: {_plural(n_invalid, 'problem')} in {_plural(len(invalid), 'table')}; "
            "nothing was validated."
        )
        raise ScaleupDataError(_render(list(results.values()), intro))


@checked_inputs
def load_tables(
    directory: str | PathLike,
    *,
    tables: Iterable[str] | None = None,
    check_manifest: bool = True,
    separator: str = "auto",
    decimal: str = "auto",
    encoding: str = "utf-8",
    return_info: bool = False,
    defer: Iterable[str] = (),
) -> dict[str, pd.DataFrame] | LoadedTables:
    """Load and validate every table of a data directory; all or nothing.

    Parameters
    ----------
    directory : str or path-like
        Folder holding the tables of one study: one file per table named after it in any letter case
        (``sites.csv``, ``Outcomes.CSV``, ``delivery.parquet``, ``components.xlsx``), and/or one
        ``.xlsx`` workbook (any other name) whose sheets are named after the tables; other sheets
        (instructions, lists) are ignored. A file or sheet holding only its header row is an empty
        template: that table counts as not given. ``sites``, ``indicators`` and ``outcomes`` are
        required; when ``regions`` is not given, the bundled table of Quebec's 18 health regions is
        used; the other tables are optional (``docs/data_dictionary.md``). ``study.toml``, ``MANIFEST``,
        ``README*``, ``LISEZMOI*``, ``*.md`` and hidden files are left alone.
    tables : iterable of str, optional
        Load only these tables (plus, for validation, the tables they refer to); by default every
        table given.
    check_manifest : bool, default True
        When the directory holds a ``MANIFEST``, first check that every file still has its recorded
        sha256 (:func:`scaleup_analysis.check_manifest`).
    separator, decimal, encoding : str
        How CSV files are written (see :func:`load_table`): separator and decimal mark are detected
        by default; the encoding is UTF-8 unless ``"cp1252"`` or ``"latin-1"`` is given.
    return_info : bool, default False
        Return a :class:`LoadedTables` (the tables, the file each came from, the defaults used, notes
        and the files not used) instead of the dict of tables.
    defer : iterable of str, default ()
        Patient-level tables (``encounters``) not to read when each is one ``.csv`` or ``.parquet``
        file of its own: they are listed in ``LoadedTables.deferred`` (with ``return_info=True``)
        instead, for :func:`scaleup_analysis.data.patient_level.patient_level_cells` to validate
        and summarise in chunks. A table given in a workbook sheet, or by several sources, is read
        as usual.

    Returns
    -------
    dict of str to pandas.DataFrame, or LoadedTables
        Table name -> validated, typed table (order of ``docs/data_dictionary.md``).

    Raises
    ------
    RawDataChangedError
        If a file no longer matches the MANIFEST.
    ScaleupDataError
        One message listing every problem found: each required table not given (with the empty
        templates found for it), each data file not recognised (``.xls``/``.ods``, ``.txt``/``.tsv``,
        names close to a table name: what to rename or re-save), each table given by two non-empty
        sources, each file that cannot be read, and every schema and cross-table problem of the
        tables that could be read (see :func:`validate_tables`). Nothing is returned in that case.

    Notes
    -----
    The directory is only read, never written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import scaleup_analysis as sa
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sa.load_tables(d)
    Traceback (most recent call last):
    ...
    scaleup_analysis.errors.ScaleupDataError: Directory ... lacks the required table(s) sites, indicators, outcomes; nothing was loaded:
      - sites: add sites.csv (or .xlsx or .parquet, or a sheet 'sites' in a workbook).
    ...
    >>> sim = sa.simulate_scaleup(seed=1, n_sites=36, n_periods=8, patients_per_site_period=2)
    >>> for name in ("sites", "indicators", "outcomes"):
    ...     _ = sa.write_table_atomic(sim.tables[name], d / f"{name}.csv")
    >>> info = sa.load_tables(d, return_info=True)
    >>> list(info.tables), info.defaults
    (['regions', 'sites', 'indicators', 'outcomes'], ('regions',))
    >>> info.notes
    ("regions: not given, the bundled table of Quebec's 18 health regions was used.",)
    """
    d = Path(directory)
    if not d.is_dir():
        raise ScaleupDataError(
            f"Data directory {str(d)!r} does not exist (or is not a directory). Create it with "
            "`scaleup init DIR` (empty templates) or `scaleup simulate --out DIR`, or point to the folder "
            "holding sites.csv, outcomes.csv, ..."
        )
    options = _csv_options(separator, decimal, encoding)
    defer = tuple(defer)
    if defer and not return_info:
        raise ScaleupDataError("load_tables: defer= needs return_info=True (the deferred files are listed in "
                               "LoadedTables.deferred).")
    requested = _requested_tables(tables)
    if check_manifest and (d / "MANIFEST").exists():
        from .manifest import check_manifest as _check

        _check(d)

    wanted = None if requested is None else set(_with_parents(requested))
    scan = _scan(d, wanted)
    deferred: dict[str, Path] = {}
    for t in defer:
        places = scan.sources.get(t, [])
        if len(places) == 1 and places[0][1] is None and places[0][0].suffix.lower() in (".csv", ".parquet"):
            deferred[t] = scan.sources.pop(t)[0][0]
    reads, failed = _read_sources(scan, options)
    found = _sort_sources(reads, failed)
    frames, defaults, notes = _with_defaults(found, failed, wanted)
    needed = REQUIRED_TABLES if wanted is None else [t for t in TABLES if t in wanted]
    missing = [t for t in needed if t not in frames and t not in failed and t not in found.twice]
    unrecognised = scan.unrecognised if requested is None else {}
    unreadable = scan.unreadable + [m for t in TABLES for m in failed.get(t, [])]
    sources = {t: r.source for t, r in found.given.items()}
    sources.update({t: _Source(f"{_SPEC_BY_NAME[t].default}, bundled", "frame") for t in defaults})
    results = _check_tables(frames, sources, frozenset([*missing, *failed, *found.twice]))
    _raise_if_not_loadable(d, missing, requested, found, unrecognised, unreadable, results)

    keep = [t for t in TABLES if t in results and (requested is None or t in requested)]
    validated = {t: _finalize(results[t]) for t in keep}
    if not return_info:
        return validated
    given = found.given
    return LoadedTables(
        tables=validated,
        files={t: "bundled" if t in defaults else given[t].path for t in keep},
        sheets={t: given[t].sheet for t in keep if t in given and given[t].sheet is not None},
        defaults=tuple(t for t in defaults if t in keep),
        notes=tuple(notes),
        ignored={**scan.ignored, **found.templates_ignored},
        formats={t: dict(given[t].fmt) for t in keep if t in given and given[t].fmt},
        deferred=deferred,
    )


@dataclass
class _Sorted:
    given: dict[str, _Read]  # table -> its one non-empty source
    templates: dict[str, list[_Read]]  # table -> its empty templates
    templates_ignored: dict[str, str]  # template name -> why it was not used
    twice: dict[str, str]  # table given by two non-empty sources -> message line


def _sort_sources(reads: dict[str, list[_Read]], failed: dict[str, list[str]]) -> _Sorted:
    """Per table, exactly one non-empty source is used; empty templates count as not given."""
    out = _Sorted({}, {}, {}, {})
    for table, found in reads.items():
        filled = [r for r in found if not r.is_template]
        for r in found:
            if r.is_template:
                out.templates.setdefault(table, []).append(r)
                out.templates_ignored[r.name] = (
                    f"an empty template (header row only): table '{table}' counts as not given"
                )
        if len(filled) > 1:
            listed = "; ".join(f"{r.name}: {_plural(len(r.frame), 'row')}" for r in filled)
            out.twice[table] = (
                f"  - {table}: given by more than one file or sheet for the same table ({listed}). Keep "
                "exactly one: move the others out of the folder, or delete their rows (an empty template, "
                "header row only, may stay)."
            )
        elif filled and table not in failed:
            out.given[table] = filled[0]
    return out


def _missing_lines(d: Path, missing: list[str], requested, templates: dict[str, list[_Read]]) -> tuple[str, list[str]]:
    """Heading and one line per missing table (with the empty templates found for it)."""
    if requested is None:
        heading = f"Directory {str(d)!r} lacks the required table(s) {', '.join(missing)}"
    else:
        heading = (
            f"Directory {str(d)!r} lacks table(s) {', '.join(missing)} needed to load {', '.join(requested)} "
            "(a table is checked against the tables it refers to)"
        )
    lines = []
    for t in missing:
        empty = [r.name for r in templates.get(t, [])]
        held = (
            f"; {' and '.join(empty)} hold{'s' if len(empty) == 1 else ''} only the header row (an empty "
            "template): fill in the rows"
            if empty
            else ""
        )
        lines.append(f"  - {t}: add {t}.csv (or .xlsx or .parquet, or a sheet '{t}' in a workbook){held}.")
    return heading, lines


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out
