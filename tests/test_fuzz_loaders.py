"""Fuzzing the loaders: malformed files never raise anything but ScaleupDataError.

hypothesis generates table files (random bytes; valid CSVs damaged by truncation, wrong delimiters,
byte-order marks, stray quotes, huge or odd numbers, a missing header, duplicated header names, NUL
bytes, mixed line ends), in the CSV formats of Quebec teams too (``;`` or tab separators, decimal
comma, Windows-1252), and feeds them to ``sa.load_table`` and ``sa.load_tables`` with any separator,
decimal and encoding setting. The contract: either a validated table comes back, or a
``ScaleupDataError`` (never a KeyError, UnicodeError, ParserError, OverflowError, ...). And a valid
table written in any accepted format (separator x decimal mark x encoding) loads back equal to the
original. ``max_examples`` is modest so the file runs in well under a minute;
set ``HYPOTHESIS_FUZZ_EXAMPLES`` to fuzz longer locally.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scaleup_analysis as sa

N = int(os.environ.get("HYPOTHESIS_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@lru_cache(maxsize=1)
def valid_csvs() -> dict[str, bytes]:
    """Small valid tables (bytes of their CSV files) to damage."""
    tables = sa.simulate_scaleup(seed=9, n_sites=36, n_periods=8, patients_per_site_period=4).tables
    tmp = Path(tempfile.mkdtemp(prefix="fuzz_valid_"))
    out = {}
    for name, t in tables.items():
        if name in ("encounters", "fidelity_ratings"):
            t = t.head(200)  # keep the files small (foreign keys still hold: they refer to sites)
        p = sa.write_table_atomic(t, tmp / f"{name}.csv")
        out[name] = p.read_bytes()
    shutil.rmtree(tmp, ignore_errors=True)
    return out


TABLES = ("regions", "sites", "indicators", "outcomes", "delivery", "components", "adaptations", "assessments")

ODD_FIELDS = [b"", b" ", b'"', b'""', b"'", b"1e308", b"-1e309", b"1e999999", b"99999999999999999999999999",
              b"NaN", b"inf", b"-0", b"0x1F", b"1,5", b"\xc3\xa9", b"\xe9", b"\x00", b"\t", b";", b"=1+1",
              b"\xef\xbb\xbf", b"NULL", b"None", b"<NA>", b"\r", b"\n", b'"a\nb"', b"2.5", b"-1", b"True"]


@st.composite
def damaged_csv(draw):
    table = draw(st.sampled_from(TABLES))
    data = valid_csvs()[table]
    lines = data.split(b"\n")
    ops = draw(st.lists(st.sampled_from([
        "truncate", "delimiter", "bom", "quote", "odd_field", "drop_header", "dup_header",
        "crlf", "nul", "drop_line_part", "extra_field", "blank_lines", "swap_header", "latin1",
    ]), min_size=1, max_size=4))
    for op in ops:
        if op == "truncate":
            cut = draw(st.integers(0, max(0, len(b"\n".join(lines)) - 1)))
            lines = b"\n".join(lines)[:cut].split(b"\n")
        elif op == "delimiter":
            sep = draw(st.sampled_from([b";", b"\t", b"|", b" "]))
            lines = [ln.replace(b",", sep) for ln in lines]
        elif op == "bom" and lines:
            lines[0] = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])) + lines[0]
        elif op == "quote" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + b'"' + lines[i][j:]
        elif op == "odd_field" and len(lines) > 1:
            i = draw(st.integers(1, len(lines) - 1))
            fields = lines[i].split(b",")
            j = draw(st.integers(0, len(fields) - 1))
            fields[j] = draw(st.sampled_from(ODD_FIELDS))
            lines[i] = b",".join(fields)
        elif op == "drop_header":
            lines = lines[1:]
        elif op == "dup_header" and lines:
            fields = lines[0].split(b",")
            if len(fields) > 1:
                j = draw(st.integers(1, len(fields) - 1))
                fields[j] = fields[0]
                lines[0] = b",".join(fields)
        elif op == "crlf":
            lines = [ln + b"\r" for ln in lines]
        elif op == "nul" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = lines[i] + b"\x00"
        elif op == "drop_line_part" and len(lines) > 1:
            i = draw(st.integers(1, len(lines) - 1))
            lines[i] = lines[i].rsplit(b",", 1)[0]
        elif op == "extra_field" and len(lines) > 1:
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = lines[i] + b",extra"
        elif op == "blank_lines":
            i = draw(st.integers(0, len(lines)))
            lines = lines[:i] + [b"", b",,,"] + lines[i:]
        elif op == "swap_header" and lines:
            fields = lines[0].split(b",")
            lines[0] = b",".join(reversed(fields))
        elif op == "latin1":
            lines = [ln.replace(b"\xc3\xa9", b"\xe9") for ln in lines]  # é in UTF-8 -> Latin-1
    return table, b"\n".join(lines)


def _load_one(table: str, content: bytes, suffix: str = ".csv", **options):
    d = Path(tempfile.mkdtemp(prefix="fuzz_"))
    try:
        p = d / f"{table}{suffix}"
        p.write_bytes(content)
        try:
            out = sa.load_table(p, **options)
        except sa.ScaleupDataError as exc:
            assert str(exc), "an error without a message"
            return None
        assert isinstance(out, pd.DataFrame)
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


@FUZZ
@given(st.sampled_from(TABLES), st.binary(max_size=400), st.sampled_from([".csv", ".parquet", ".xlsx"]))
def test_random_bytes(table, content, suffix):
    _load_one(table, content, suffix)


@FUZZ
@given(st.sampled_from(TABLES), st.text(alphabet=st.sampled_from(list(',;"\n\r\t ab01.-e\'') + ["é", "\x00", "\ufeff"]),
                                        max_size=300))
def test_random_csv_like_text(table, text):
    _load_one(table, text.encode("utf-8"))


@FUZZ
@given(damaged_csv())
def test_damaged_csv_load_table(case):
    table, content = case
    _load_one(table, content)


# (separator, decimal) settings a user can give; "," with "," is refused before any file is read
OPTIONS = st.fixed_dictionaries({
    "separator": st.sampled_from(["auto", ",", ";", "\t"]),
    "decimal": st.sampled_from(["auto", ".", ","]),
    "encoding": st.sampled_from(["utf-8", "cp1252", "latin-1"]),
}).filter(lambda o: not (o["separator"] == "," and o["decimal"] == ","))


def _french(content: bytes, sep: bytes = b";") -> bytes:
    """A valid comma-separated file rewritten the French way: sep between fields, decimal comma."""
    out = []
    for line in content.split(b"\n"):
        fields = [f.replace(b".", b",") if f.replace(b".", b"").replace(b"-", b"").isdigit() else f
                  for f in line.split(b",")]
        out.append(sep.join(fields))
    return b"\n".join(out)


@FUZZ
@given(damaged_csv(), st.sampled_from([b";", b"\t"]), OPTIONS)
def test_damaged_french_csv_with_any_setting(case, sep, options):
    table, content = case
    _load_one(table, _french(content, sep), **options)


@FUZZ
@given(st.sampled_from(TABLES), st.binary(max_size=400), OPTIONS)
def test_random_bytes_with_any_setting(table, content, options):
    _load_one(table, content, **options)


@lru_cache(maxsize=1)
def typed_tables() -> dict[str, pd.DataFrame]:
    tables = sa.simulate_scaleup(seed=9, n_sites=36, n_periods=8, patients_per_site_period=4).tables
    return {name: t.head(60) for name, t in tables.items() if name in TABLES}


@settings(max_examples=max(20, N // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(TABLES),
    st.sampled_from([",", ";", "\t"]),
    st.sampled_from([".", ","]),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "latin-1"]),
    st.booleans(),
)
def test_valid_table_in_any_accepted_format_loads_back_equal(table, sep, decimal, encoding, declare):
    """Round trip (exact): pandas writes the table with sep/decimal/encoding; the loader detects the
    separator and the decimal mark, or is told them (declare=True)."""
    if sep == "," and decimal == ",":
        decimal = "."  # not a format: the comma cannot mark both
    df = typed_tables()[table]
    if encoding == "latin-1":  # Latin-1 has no en dash (region names): the original is what it can hold
        text = [c for c in df.columns if df[c].dtype == object]
        df = df.assign(**{c: df[c].str.replace("\u2013", "-") for c in text})
    d = Path(tempfile.mkdtemp(prefix="fuzzfmt_"))
    try:
        p = d / f"{table}.csv"
        df.to_csv(p, sep=sep, decimal=decimal, encoding=encoding, index=False)
        options = {"encoding": "utf-8" if encoding == "utf-8-sig" else encoding}
        if declare:
            options.update(separator=sep, decimal=decimal)
        out = sa.load_table(p, **options)
        pd.testing.assert_frame_equal(out, df, check_exact=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@settings(max_examples=max(10, N // 3), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_csv())
def test_damaged_csv_in_a_directory(case):
    table, content = case
    d = Path(tempfile.mkdtemp(prefix="fuzzdir_"))
    try:
        for name, data in valid_csvs().items():
            (d / f"{name}.csv").write_bytes(content if name == table else data)
        try:
            out = sa.load_tables(d)
        except sa.ScaleupDataError as exc:
            assert str(exc)
        else:
            assert set(out) >= {"regions", "sites", "indicators", "outcomes"}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_valid_files_load():
    # the undamaged files used as seeds load fine (so rejections above come from the damage)
    d = Path(tempfile.mkdtemp(prefix="fuzzok_"))
    try:
        for name, data in valid_csvs().items():
            (d / f"{name}.csv").write_bytes(data)
        out = sa.load_tables(d)
        assert set(out) == set(valid_csvs())
    finally:
        shutil.rmtree(d, ignore_errors=True)
