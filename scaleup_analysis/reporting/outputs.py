"""What a report writes: figures (PNG + SVG), key tables (CSV, privacy-checked) and provenance.

Every file is written atomically (temporary file, then rename). Figures and tables are
byte-identical when a run is repeated with the same data, seed and code.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from .._atomic import atomic_write_bytes

__all__ = ["save_figure", "save_table", "provenance", "neutralise_formulas", "atomic_write_bytes"]

KEY_LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "pandera", "nbclient")


def save_figure(fig, name: str, figures_dir: str | os.PathLike | None) -> list[Path]:
    """Save a matplotlib figure as ``<name>.png`` (300 dpi) and ``<name>.svg`` in ``figures_dir``.

    Does nothing (returns ``[]``) when ``figures_dir`` is None, so notebooks run under
    ``pytest --nbval`` write no files. Each file is written atomically; SVG files carry no
    date, so re-running gives byte-identical figures.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    name : str
        File stem, e.g. ``"01_forest"``.
    figures_dir : path or None

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import scaleup_analysis.reporting as rep
    >>> fig, ax = plt.subplots()
    >>> rep.save_figure(fig, "demo", None)
    []
    """
    if figures_dir is None:
        return []
    import io

    import matplotlib as mpl

    out = []
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        # svg.hashsalt: SVG element ids (clip paths) are hashes salted with a random uuid unless a
        # salt is set; salting with the figure name keeps re-runs byte-identical
        with mpl.rc_context({"svg.hashsalt": f"scaleup_analysis:{name}"}):
            fig.savefig(buf, format=fmt, dpi=300, bbox_inches="tight", metadata={"Date": None}
                        if fmt == "svg" else {"Software": None})
        path = Path(figures_dir) / f"{name}.{fmt}"
        atomic_write_bytes(path, buf.getvalue())
        out.append(path)
    return out


def save_table(
    table,
    name: str,
    tables_dir: str | os.PathLike | None,
    *,
    counts: str | list[str] | None = None,
    values: str | list[str] | None = None,
    threshold: int = 5,
    by: str | list[str] | None = None,
) -> Path | None:
    """Save a key result table as ``<name>.csv`` in ``tables_dir`` (atomically), privacy-checked.

    The table is always checked for patient identifiers
    (:func:`scaleup_analysis.check_no_identifiers`, also when ``tables_dir`` is None, so notebooks
    run under ``pytest --nbval`` fail on the same tables). When ``counts`` columns are given, cells
    based on fewer than ``threshold`` individuals are suppressed first
    (:func:`scaleup_analysis.suppress_small_cells`, with complementary suppression).
    Does nothing more (returns None) when ``tables_dir`` is None.

    Parameters
    ----------
    table : pandas.DataFrame
    name : str
        File stem, e.g. ``"01_pooled_effects"``.
    tables_dir : path or None
    counts : str or list of str, optional
        Columns holding numbers of individuals (``n``, ``events``, ``reached``, ``eligible``...).
    values : str or list of str, optional
        Columns derived from the counts (rates, means), blanked with them.
    threshold : int, default 5
        Minimum publishable count.
    by : str or list of str, optional
        Margin dimensions for complementary suppression (see :func:`~scaleup_analysis.suppress_small_cells`).

    Returns
    -------
    pathlib.Path or None

    Raises
    ------
    ScaleupDataError
        If the table holds a patient identifier column, or a ``counts`` column is invalid.

    Examples
    --------
    >>> import pandas as pd
    >>> import scaleup_analysis.reporting as rep
    >>> rep.save_table(pd.DataFrame({"a": [1]}), "demo", None) is None
    True
    """
    from ..privacy import check_no_identifiers, suppress_small_cells

    check_no_identifiers(table)
    if counts is not None:
        table = suppress_small_cells(table, counts=counts, values=values,
                                     threshold=threshold, by=by)
    if tables_dir is None:
        return None
    path = Path(tables_dir) / f"{name}.csv"
    table = neutralise_formulas(table)
    # a plain row number (RangeIndex) is not data: leave it out of the file
    index = not (isinstance(table.index, pd.RangeIndex) and table.index.name is None)
    atomic_write_bytes(path, table.to_csv(index=index, lineterminator="\n").encode("utf-8"))
    return path


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe (OWASP rule).

    Site, innovation or indicator names come from the data; a name such as ``=HYPERLINK(...)``,
    ``+cmd`` or ``@SUM(...)`` written verbatim into a CSV file is executed by Excel or LibreOffice
    when the file is opened. Numbers are left alone (a negative number is not text).

    Examples
    --------
    >>> import pandas as pd
    >>> from scaleup_analysis.reporting.outputs import neutralise_formulas
    >>> neutralise_formulas(pd.DataFrame({"site": ["=1+1", "Laval"], "x": [-1.5, 2.0]}))
      site    x
    0  '=1+1 -1.5
    1  Laval  2.0
    """
    out = table.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or isinstance(s.dtype, pd.StringDtype) or isinstance(s.dtype, pd.CategoricalDtype):
            values = s.astype(object)
            risky = values.map(lambda v: isinstance(v, str) and v.startswith(_FORMULA_START))
            if risky.any():
                out[col] = values.where(~risky, "'" + values.astype(str))
    names = [("'" + c) if isinstance(c, str) and c.startswith(_FORMULA_START) else c for c in out.columns]
    out.columns = names
    return out


def _git_commit(repo: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        )
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _package_commit() -> str:
    """The git commit of the source tree the package runs from ("not a git checkout" when installed)."""
    root = Path(__file__).resolve().parents[2]
    if not ((root / ".git").exists() and (root / "pyproject.toml").is_file()):
        return "not a git checkout"
    return _git_commit(root)


def provenance(inputs: dict, seed: int | None, *, data_label: str) -> dict:
    """Provenance of a run: package version, git commit, input hashes, seed, versions, date.

    Parameters
    ----------
    inputs : dict
        Input name -> sha256 (the files of a study folder, or the tables of the embedded default).
    seed : int or None
        The seed the notebooks were run with.
    data_label : str
        The data folder's name (never its absolute path), or what the data are.

    Returns
    -------
    dict
        JSON-serialisable provenance record; ``run_date`` is the only entry that changes between
        two runs of the same code on the same data.
    """
    libs = {}
    for lib in ("scaleup_analysis", *KEY_LIBRARIES):
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = "not installed"
    return {
        "package_version": libs.pop("scaleup_analysis"),
        "git_commit": _package_commit(),
        "seed": seed,
        "data": data_label,
        "inputs_sha256": dict(sorted(inputs.items())),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "libraries": libs,
        "run_date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
