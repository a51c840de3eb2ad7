"""MANIFEST of a raw-data directory.

Reference: GNU coreutils ``sha256sum`` (its output format and ``sha256sum -c``) when available, and
:mod:`hashlib` on the raw bytes otherwise; the hashes in error messages are recomputed here.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest

import scaleup_analysis as sa
from scaleup_analysis.data.manifest import MANIFEST_NAME, sha256_file

SHA256SUM = shutil.which("sha256sum")


@pytest.fixture
def raw_dir(tmp_path):
    (tmp_path / "regions.csv").write_text("rss_code,name,settlement_type\n06,Montréal,metropolitan\n", encoding="utf-8")
    (tmp_path / "sites.parquet").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "b file.csv").write_text("a\n1\n", encoding="utf-8")  # a space in the name
    (tmp_path / ".hidden.tmp").write_text("ignored", encoding="utf-8")  # temp files are not data
    return tmp_path


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_manifest_format_is_sha256sum(raw_dir):
    path = sa.write_manifest(raw_dir)
    assert path == raw_dir / MANIFEST_NAME
    expected = "".join(
        f"{_sha(raw_dir / name)}  {name}\n" for name in sorted(["regions.csv", "sites.parquet", "b file.csv"])
    )
    assert path.read_text(encoding="utf-8") == expected


@pytest.mark.skipif(SHA256SUM is None, reason="GNU sha256sum not installed")
def test_manifest_agrees_with_gnu_sha256sum(raw_dir):
    sa.write_manifest(raw_dir)
    names = sorted(["regions.csv", "sites.parquet", "b file.csv"])
    out = subprocess.run([SHA256SUM, *names], cwd=raw_dir, capture_output=True, text=True, check=True).stdout
    assert (raw_dir / MANIFEST_NAME).read_text(encoding="utf-8") == out
    check = subprocess.run([SHA256SUM, "-c", MANIFEST_NAME], cwd=raw_dir, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_check_manifest_passes_and_returns_hashes(raw_dir):
    sa.write_manifest(raw_dir)
    hashes = sa.check_manifest(raw_dir)
    assert hashes == {n: _sha(raw_dir / n) for n in ["b file.csv", "regions.csv", "sites.parquet"]}
    assert sha256_file(raw_dir / "sites.parquet", chunk_size=7) == _sha(raw_dir / "sites.parquet")


def test_one_changed_byte_is_detected_with_both_hashes(raw_dir):
    sa.write_manifest(raw_dir)
    path = raw_dir / "sites.parquet"
    expected = _sha(path)
    data = bytearray(path.read_bytes())
    data[5000] ^= 0x01  # flip one bit of one byte
    path.write_bytes(bytes(data))
    with pytest.raises(sa.RawDataChangedError) as info:
        sa.check_manifest(raw_dir)
    msg = str(info.value)
    assert f"sites.parquet: changed (expected sha256 {expected}, actual {_sha(path)})" in msg
    assert "(1 file)" in msg
    assert "Raw data are immutable" in msg and "restore the original" in msg and "new directory" in msg
    assert isinstance(info.value, sa.ScaleupDataError)  # callers catching ScaleupDataError see it too


def test_missing_and_unexpected_files(raw_dir):
    sa.write_manifest(raw_dir)
    gone = _sha(raw_dir / "regions.csv")
    (raw_dir / "regions.csv").unlink()
    (raw_dir / "new.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(sa.RawDataChangedError) as info:
        sa.check_manifest(raw_dir)
    msg = str(info.value)
    assert f"regions.csv: missing (expected sha256 {gone})" in msg
    assert f"new.csv: unexpected file, not in the MANIFEST (actual sha256 {_sha(raw_dir / 'new.csv')})" in msg
    assert "(2 files)" in msg


def test_no_or_malformed_manifest(tmp_path):
    with pytest.raises(sa.ScaleupDataError, match="No MANIFEST in .*sa.write_manifest"):
        sa.check_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("abc  regions.csv\n", encoding="utf-8")
    with pytest.raises(sa.ScaleupDataError, match="1 malformed line\\(s\\) \\(line 1: 'abc  regions.csv'\\)"):
        sa.check_manifest(tmp_path)
    with pytest.raises(sa.ScaleupDataError, match="is not a directory"):
        sa.write_manifest(tmp_path / "nope")


def test_binary_mode_lines_are_understood(raw_dir):
    # `sha256sum -b` writes "<hash> *<name>"
    lines = [f"{_sha(raw_dir / n)} *{n}\n" for n in sorted(["regions.csv", "sites.parquet", "b file.csv"])]
    (raw_dir / MANIFEST_NAME).write_text("".join(lines), encoding="utf-8")
    assert len(sa.check_manifest(raw_dir)) == 3
