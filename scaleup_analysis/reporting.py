"""Reports: execute the five-step notebooks into ``reports/`` with provenance.

:func:`run_report` is the main job behind ``make report`` and ``scaleup report``:

1. build the embedded default dataset into the data directory if it holds no tables
   (:func:`scaleup_analysis.simulate_scaleup`, then a MANIFEST of sha256 hashes);
2. check the MANIFEST (raw data is immutable) and validate every table;
3. execute every ``notebooks/NN_*.ipynb`` with the parameters injected after the cell tagged
   ``parameters`` (the papermill convention);
4. write, each file atomically, one HTML report per notebook (with code, and a ``*_summary.html``
   without code cells for decision makers), the figures the notebooks saved under
   ``reports/figures/`` (PNG and SVG), and ``reports/index.html`` linking them, with provenance
   (package version, git commit, sha256 of every input file, seed, Python and library versions,
   run date) in ``reports/provenance.json``.

Re-running with the same data, seed and code rewrites byte-identical files, except
``provenance.json`` (run date, notebook timings) and the git commit shown in the HTML footers when the
repository changed. Stale hidden temp files of a killed run are removed at the start of the next one.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .data.io import DATA_SUFFIXES
from .data.io import atomic_write_bytes as _atomic_write_bytes
from .data.manifest import sha256_file
from .errors import ScaleupDataError

__all__ = ["run_report", "save_figure", "save_table", "provenance", "ReportResult"]

KEY_LIBRARIES = ("numpy", "pandas", "scipy", "statsmodels", "matplotlib", "pandera", "nbclient")


def save_figure(fig, name: str, figures_dir: str | os.PathLike | None) -> list[Path]:
    """Save a matplotlib figure as ``<name>.png`` and ``<name>.svg`` in ``figures_dir``.

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
            fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None}
                        if fmt == "svg" else {"Software": None})
        path = Path(figures_dir) / f"{name}.{fmt}"
        _atomic_write_bytes(path, buf.getvalue())
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
    from .privacy import check_no_identifiers, suppress_small_cells

    check_no_identifiers(table)
    if counts is not None:
        table = suppress_small_cells(table, counts=counts, values=values,
                                     threshold=threshold, by=by)
    if tables_dir is None:
        return None
    path = Path(tables_dir) / f"{name}.csv"
    _atomic_write_bytes(path, table.to_csv(lineterminator="\n").encode("utf-8"))
    return path


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


def provenance(data_dir: str | os.PathLike, seed: int | None, repo: str | os.PathLike = ".") -> dict:
    """Provenance of a run: package version, git commit, input hashes, seed, versions, date.

    Parameters
    ----------
    data_dir : path
        Folder of the input tables; the sha256 of every data file in it is recorded.
    seed : int or None
        The seed the notebooks were run with.
    repo : path
        Repository root (for the git commit).

    Returns
    -------
    dict
        JSON-serialisable provenance record.
    """
    data_dir = Path(data_dir)
    files = sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix in DATA_SUFFIXES) \
        if data_dir.is_dir() else []
    libs = {}
    for lib in ("scaleup_analysis", *KEY_LIBRARIES):
        try:
            libs[lib] = version(lib)
        except PackageNotFoundError:
            libs[lib] = "not installed"
    return {
        "package_version": libs.pop("scaleup_analysis"),
        "git_commit": _git_commit(Path(repo)),
        "seed": seed,
        "data_dir": data_dir.name,
        "inputs_sha256": {p.name: sha256_file(p) for p in files},
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "libraries": libs,
        "run_date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@dataclass(frozen=True)
class ReportResult:
    """What :func:`run_report` wrote."""

    out_dir: Path
    reports: tuple[Path, ...]
    figures: tuple[Path, ...]
    index: Path
    provenance: dict = field(repr=False)
    seconds: dict = field(default_factory=dict)


def _inject_parameters(nb, params: dict) -> None:
    """Insert a cell assigning ``params`` right after the cell tagged ``parameters``."""
    import nbformat

    idx = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if idx is None:
        raise ScaleupDataError(
            "notebook has no cell tagged 'parameters'; tag the cell that defines data_dir, seed "
            "and figures_dir with the 'parameters' tag (papermill convention)"
        )
    src = "# Parameters injected by scaleup_analysis.reporting.run_report\n" + "\n".join(
        f"{k} = {v!r}" for k, v in params.items()
    )
    cell = nbformat.v4.new_code_cell(src, metadata={"tags": ["injected-parameters"]})
    cell.id = "injected-parameters"  # fixed id (new cells get a random one): reproducible HTML
    nb.cells.insert(idx + 1, cell)


#: Provenance entries that change at every run; kept out of the HTML so re-runs are byte-identical.
_VOLATILE_PROVENANCE = ("run_date", "notebook_seconds")


def _remove_stale_temp_files(*dirs: Path) -> list[Path]:
    """Delete hidden ``.<name>.*.tmp`` files left by an atomic write that was killed mid-way."""
    removed = []
    for d in dirs:
        if not d.is_dir():
            continue
        for p in d.glob(".*.tmp"):
            if p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def _index_html(entries: list[tuple[str, str, str]], figures: list[str], tables: list[str],
                prov: dict) -> str:
    rows = "\n".join(
        f'<li><a href="{html.escape(full)}">{html.escape(title)}</a> '
        f'(<a href="{html.escape(summ)}">summary without code</a>)</li>'
        for title, full, summ in entries
    )
    figs = "\n".join(f'<li><a href="figures/{html.escape(f)}">{html.escape(f)}</a></li>' for f in figures)
    tabs = "\n".join(f'<li><a href="tables/{html.escape(t)}">{html.escape(t)}</a></li>' for t in tables)
    prov_rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td><pre>{html.escape(json.dumps(v, indent=1))}</pre></td></tr>"
        for k, v in prov.items()
        if k not in _VOLATILE_PROVENANCE  # run date and timings: in provenance.json only
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Scale-up evaluation reports</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}th{{text-align:left;vertical-align:top;padding-right:1em}}pre{{margin:0}}</style>
</head><body>
<h1>Scale-up evaluation reports</h1>
<p>Five steps of a scale-up: evidence of effectiveness, scale-up potential, rollout plan,
implementation (fidelity and adaptation), monitoring of impacts.</p>
<h2>Reports</h2><ul>
{rows}
</ul>
<h2>Figures</h2><ul>
{figs}
</ul>
<h2>Key tables (CSV)</h2><ul>
{tabs}
</ul>
<h2>Provenance</h2><table>
{prov_rows}
</table>
</body></html>
"""


def run_report(
    data_dir: str | os.PathLike = "data/raw",
    seed: int = 20261123,
    out_dir: str | os.PathLike = "reports",
    notebooks_dir: str | os.PathLike = "notebooks",
    *,
    progress: bool = True,
    timeout: int = 600,
) -> ReportResult:
    """Run the main job: build/validate the data, execute the notebooks, write the reports.

    Parameters
    ----------
    data_dir : path
        Folder of input tables. When it holds no data file, the embedded default dataset
        (``simulate_scaleup(seed=seed)``) is written there first, with its MANIFEST.
    seed : int
        Seed passed to the notebooks (and to the simulation when the data are built).
    out_dir : path
        Where the HTML reports, ``figures/``, ``index.html`` and ``provenance.json`` go.
    notebooks_dir : path
        Folder of the ``NN_*.ipynb`` notebooks.
    progress : bool
        Show a progress bar (on stderr) naming the notebook that runs.
    timeout : int
        Per-cell timeout in seconds.

    Returns
    -------
    ReportResult
    """
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from tqdm.auto import tqdm

    from .data.io import load_tables
    from .data.manifest import write_manifest

    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir).resolve()
    notebooks_dir = Path(notebooks_dir).resolve()
    notebooks = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ScaleupDataError(f"no notebooks named NN_*.ipynb in {notebooks_dir}")

    has_data = data_dir.is_dir() and any(
        p.suffix in DATA_SUFFIXES for p in data_dir.iterdir() if p.is_file()
    )
    if not has_data:
        from .data.io import write_table_atomic
        from .data.simulate import simulate_scaleup

        data_dir.mkdir(parents=True, exist_ok=True)
        sim = simulate_scaleup(seed=seed)
        for name, table in sim.tables.items():
            write_table_atomic(table, data_dir / f"{name}.csv")
        write_manifest(data_dir)
    load_tables(data_dir)  # checks the MANIFEST and validates; raises before anything is written

    figures_dir = out_dir / "figures"
    tables_dir = out_dir / "tables"
    # a run killed mid-write can leave hidden temp files (never a partial file under a real name)
    _remove_stale_temp_files(out_dir, figures_dir, tables_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    tables_dir.mkdir(parents=True, exist_ok=True)
    repo = notebooks_dir.parent
    prov = provenance(data_dir, seed, repo)
    # paths relative to the notebooks folder (the kernel's working directory): no absolute path of
    # this machine ends up in the reports
    params = {"data_dir": os.path.relpath(data_dir, notebooks_dir), "seed": int(seed),
              "figures_dir": os.path.relpath(figures_dir, notebooks_dir),
              "tables_dir": os.path.relpath(tables_dir, notebooks_dir)}

    full_exporter = HTMLExporter()
    summary_exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                                    exclude_output_prompt=True)
    written, entries, seconds = [], [], {}
    bar = tqdm(notebooks, desc="notebooks", unit="nb", disable=not progress, file=sys.stderr)
    for nb_path in bar:
        bar.set_postfix_str(nb_path.stem)
        nb = nbformat.read(nb_path, as_version=4)
        _inject_parameters(nb, params)
        start = _dt.datetime.now()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(notebooks_dir)}}).execute()
        seconds[nb_path.stem] = round((_dt.datetime.now() - start).total_seconds(), 1)
        nb.metadata["scaleup_provenance"] = prov
        title = next((c.source.splitlines()[0].lstrip("# ").strip() for c in nb.cells
                      if c.cell_type == "markdown" and c.source.strip()), nb_path.stem)
        full_html, _ = full_exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        summ_html, _ = summary_exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
        foot = (f"<footer><hr><small>Provenance: scaleup_analysis {prov['package_version']}, commit "
                f"{prov['git_commit']}, seed {seed}; run date and input sha256 in "
                f"provenance.json</small></footer></body>")
        full_name, summ_name = f"{nb_path.stem}.html", f"{nb_path.stem}_summary.html"
        _atomic_write_bytes(out_dir / full_name, full_html.replace("</body>", foot, 1).encode())
        _atomic_write_bytes(out_dir / summ_name, summ_html.replace("</body>", foot, 1).encode())
        written += [out_dir / full_name, out_dir / summ_name]
        entries.append((title, full_name, summ_name))

    figures = sorted(p.name for p in figures_dir.iterdir() if p.suffix in (".png", ".svg"))
    tables = sorted(p.name for p in tables_dir.iterdir() if p.suffix == ".csv")
    prov["notebook_seconds"] = seconds
    _atomic_write_bytes(out_dir / "provenance.json", json.dumps(prov, indent=2).encode())
    index = out_dir / "index.html"
    _atomic_write_bytes(index, _index_html(entries, figures, tables, prov).encode())
    return ReportResult(out_dir=out_dir, reports=tuple(written),
                        figures=tuple(figures_dir / f for f in figures), index=index,
                        provenance=prov, seconds=seconds)
