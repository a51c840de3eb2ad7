"""The main job: run the step notebooks on a study and write the reports, transactionally.

:func:`run_report` (behind ``scaleup report`` and ``make report``):

1. refuses an output folder inside (or equal to) the data folder, before any work;
2. loads the study (:func:`~scaleup_analysis.load_study`: the study file and every table are
   validated; one error lists every problem and nothing is written). A patient-level table given as
   a file (``encounters``) is checked and reduced in chunks to per-cell sufficient statistics, with a
   progress bar, unless the processed folder already holds them for the same raw file (then no
   patient row is read);
3. takes a lock on the output folder (two runs on one output cannot both claim success);
4. executes the step notebooks shipped inside the package (``scaleup_analysis/notebooks``) into a
   hidden staging folder next to the output, with the parameters injected after the cell tagged
   ``parameters`` (papermill convention). Each analysis section runs, steps aside with a reason, or
   fails with a one-line error without stopping the others; a notebook that stops is reported as
   failed and the next one runs;
5. writes one HTML report per step (with code, and a ``*_summary.html`` without code), the figures,
   the key tables, ``index.html`` with the run summary (every section ran / skipped / failed),
   ``sections.json``, ``run.log`` and ``provenance.json`` (package version, git commit, sha256 of
   every input file, seed, Python and library versions, run date), and the processed summaries
   (``processed/``, unless another processed folder was given);
6. replaces the previous report by the staging folder in one rename.

The user's data folder is only read. A run with a failed section or notebook still publishes its
report, marked partial in ``index.html`` and in the failed step's report, and returns
``ReportResult.ok = False`` (``scaleup report`` then exits with status 1).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .._checks import checked_inputs
from .._atomic import FolderLock, check_writable, clear_leftovers, publish_folder, staging_folder
from ..errors import ScaleupDataError
from ..study import STEPS, Study, load_study
from ..narrative import Text
from .html import CSS, brief_html, index_html, partial_banner, step_title
from .outputs import atomic_write_bytes, provenance

__all__ = ["run_report", "ReportResult", "notebook_paths"]

#: Provenance entries that change at every run; kept out of the HTML so re-runs are byte-identical.
VOLATILE_PROVENANCE = ("run_date", "notebook_seconds")


def notebook_paths() -> dict[int, Path]:
    """Step number -> the step notebook shipped inside the package."""
    root = resources.files("scaleup_analysis") / "notebooks"
    out = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        m = re.match(r"^(\d\d)_.*\.ipynb$", entry.name)
        if m and int(m.group(1)) in STEPS:
            out[int(m.group(1))] = Path(str(entry))
    return out


@dataclass(frozen=True)
class ReportResult:
    """What :func:`run_report` wrote, and how each section went.

    ``sections`` holds one record per section (step, key, title, status ``ran`` / ``skipped`` /
    ``failed``, reason, what would allow it, error); ``notebooks`` one per step (status ``ran``,
    ``failed`` or ``not run``). ``ok`` is False when any section or notebook failed.
    """

    out_dir: Path
    index: Path
    sections: tuple[dict, ...]
    notebooks: tuple[dict, ...]
    provenance: dict = field(repr=False)
    seconds: dict = field(default_factory=dict)
    language: str = "en"

    @property
    def ok(self) -> bool:
        return not any(s["status"] == "failed" for s in (*self.sections, *self.notebooks))

    def written_message(self, out_dir: str | os.PathLike) -> str:
        """``Reports written to OUT_DIR; open OUT_DIR/index.html`` in the report's language."""
        tx = Text(self.language)
        return tx("Reports written to {out}; open {index}", out=str(out_dir),
                  index=str(Path(out_dir) / "index.html"))

    def summary(self) -> str:
        """The run summary as plain text (what ``scaleup report`` prints)."""
        from ..narrative import status_word

        tx = Text(self.language)
        lines = []
        width = max(len(status_word(tx, k)) for k in ("ran", "skipped", "failed"))
        by_step: dict[int, list[dict]] = {}
        for s in self.sections:
            by_step.setdefault(s["step"], []).append(s)
        for nb in self.notebooks:
            step = nb["step"]
            head = tx("Step {step} - {title}: {status}", step=step, title=step_title(tx, step),
                      status=status_word(tx, nb["status"]))
            if nb.get("why"):
                head += f" ({nb['why']})"
            lines.append(head)
            for s in by_step.get(step, []):
                why = s["reason"] or s["error"]
                lines.append(f"  {status_word(tx, s['status']):<{width}} {s['title']}" + (f" -- {why}" if why else ""))
        counts = {k: sum(1 for s in self.sections if s["status"] == k) for k in ("ran", "skipped", "failed")}
        line = tx("{ran} sections ran, {skipped} not run, {failed} failed", ran=counts["ran"],
                  skipped=counts["skipped"], failed=counts["failed"])
        lines.append(line + ("" if self.ok else " -- " + tx("the report is PARTIAL")))
        return "\n".join(lines)


def _inject_parameters(nb, params: dict) -> None:
    """Insert a cell assigning ``params`` right after the cell tagged ``parameters``."""
    import nbformat

    idx = next(
        (i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])),
        None,
    )
    if idx is None:
        raise ScaleupDataError("notebook has no cell tagged 'parameters' (papermill convention)")
    src = "# Parameters injected by scaleup_analysis.reporting.run_report\n" + "\n".join(
        f"{k} = {v!r}" for k, v in params.items()
    )
    cell = nbformat.v4.new_code_cell(src, metadata={"tags": ["injected-parameters"]})
    cell.id = "injected-parameters"  # fixed id (new cells get a random one): reproducible HTML
    nb.cells.insert(idx + 1, cell)


def _keep_language(nb, lang: str) -> None:
    """Keep the cells of the report's language: a cell tagged ``lang-xx`` is only for language xx."""
    def keep(cell) -> bool:
        tags = [t for t in cell.get("metadata", {}).get("tags", []) if t.startswith("lang-")]
        return not tags or f"lang-{lang}" in tags

    nb.cells = [c for c in nb.cells if keep(c)]


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_out_dir(out_dir: Path, data_dir: Path | None) -> None:
    if data_dir is not None and _inside(out_dir, data_dir.resolve()):
        raise ScaleupDataError(
            f"--out {str(out_dir)!r} is inside the data folder {str(data_dir)!r}: reports are never "
            "written into a data folder. Choose an output folder outside it, e.g. --out reports."
        )
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ScaleupDataError(f"--out {str(out_dir)!r} exists and is not a folder; choose a new folder.")
        visible = [p.name for p in out_dir.iterdir() if not p.name.startswith(".")]
        if visible and not (out_dir / "index.html").exists() and not (out_dir / "provenance.json").exists():
            raise ScaleupDataError(
                f"--out {str(out_dir)!r} holds files that are not a previous report "
                f"({', '.join(sorted(visible)[:5])}{', ...' if len(visible) > 5 else ''}); a run replaces "
                "its output folder as a whole, so choose a new or empty folder."
            )
    check_writable(out_dir, "--out")  # before any work, not after the notebooks ran


def inputs_provenance(study: Study) -> dict:
    if study.folder is not None:
        return dict(study.inputs)
    out = {}
    for name, table in study.tables.items():
        data = table.to_csv(index=False, lineterminator="\n").encode("utf-8")
        out[f"{name} (embedded default, as CSV)"] = hashlib.sha256(data).hexdigest()
    return out


def _title(nb, fallback: str) -> str:
    return next((c.source.splitlines()[0].lstrip("# ").strip() for c in nb.cells
                 if c.cell_type == "markdown" and c.source.strip()), fallback)


def _export(nb, title: str, exporter) -> str:
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body.replace("</head>", f"<style>{CSS}</style></head>", 1)


@checked_inputs
def run_report(
    data_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "reports",
    *,
    seed: int | None = None,
    steps: tuple[int, ...] | None = None,
    language: str | None = None,
    progress: bool = True,
    timeout: int = 900,
    processed_dir: str | os.PathLike | None = None,
    engine: str = "duckdb",
    scheduler: str | None = None,
) -> ReportResult:
    """Run the step notebooks on a study and write the reports (the main job).

    Parameters
    ----------
    data_dir : path, optional
        The study folder (tables and optional ``study.toml``); it is only read. None = the
        embedded default study (simulated, see :func:`~scaleup_analysis.default_study`).
    out_dir : path
        Output folder, replaced as a whole at the end of the run (never inside ``data_dir``).
    seed : int, optional
        Overrides the study's seed.
    steps : tuple of int, optional
        Steps to run (default: ``[study] steps`` of the study file, else all five).
    language : {"fr", "en"}, optional
        Language of the reports (default: ``[study] language`` of the study file, else French).
    progress : bool
        Show a progress bar on stderr naming the step that runs.
    timeout : int
        Per-cell timeout in seconds.
    processed_dir : path, optional
        Where the per-cell summaries of the patient-level tables are kept and reused (e.g.
        ``data/processed``; never inside ``data_dir``). Default: ``processed/`` inside ``out_dir``,
        carried over from the previous report in that folder when the raw data did not change.
    engine : {"duckdb", "pandas", "dask"}
        Engine that summarises a patient-level file (:mod:`scaleup_analysis.data.patient_level`).
    scheduler : str, optional
        Dask scheduler address for ``engine="dask"`` (None: a local cluster of two workers).

    Returns
    -------
    ReportResult

    Raises
    ------
    ScaleupDataError
        Before anything is written: the output folder is inside the data folder or holds other
        files or cannot be written, another run holds the lock, or the study file or a table is
        invalid.
    """
    from tqdm.auto import tqdm

    data = None if data_dir is None else Path(data_dir)
    out = Path(out_dir).resolve()
    check_out_dir(out, data)
    explicit = None if processed_dir is None else Path(processed_dir).resolve()
    if explicit is not None and data is not None and _inside(explicit, data.resolve()):
        raise ScaleupDataError(
            f"--processed {str(processed_dir)!r} is inside the data folder {str(data)!r}: nothing is ever written "
            "into a data folder. Choose a folder outside it, e.g. data/processed or the report's folder."
        )
    reuse = [explicit] if explicit is not None else [out / "processed"]
    # validates everything (the patient-level rows in chunks, unless summaries are reused); raises before any write
    study = load_study(data, seed=seed, language=language, reuse_from=[p for p in reuse if p.is_dir()],
                       engine=engine, scheduler=scheduler, progress=progress)
    lang = study.settings.language
    tx = Text(lang)
    seed = study.settings.seed
    wanted = tuple(study.settings.steps if steps is None else steps)
    notebooks = notebook_paths()

    with FolderLock(out, "report run"):
        clear_leftovers(out)
        staging = staging_folder(out)
        try:
            for sub in ("figures", "tables", "status"):
                (staging / sub).mkdir()
            processed = explicit if explicit is not None else staging / "processed"
            _store_processed(study, processed)
            params = {
                "data_dir": None if data is None else os.path.relpath(data.resolve(), staging),
                "seed": int(seed), "language": lang,
                "figures_dir": "figures", "tables_dir": "tables", "status_dir": "status",
                "processed_dir": os.path.relpath(processed, staging) if study.patient_level else None,
            }
            prov = provenance(inputs_provenance(study), seed, data_label=(
                "embedded default study" if data is None else data.name))
            if study.patient_level:
                prov["processed"] = {t: {"key": c.key, "rows": c.rows, "cells": int(len(c.cells)),
                                         "reused": c.reused, "engine": c.engine}
                                     for t, c in study.patient_level.items()}
            footer = ("<footer><hr><small>" + html.escape(tx(
                "Provenance: scaleup_analysis {version}, commit {commit}, seed {seed}; run date and input sha256 "
                "in provenance.json", version=prov["package_version"], commit=prov["git_commit"], seed=seed))
                + "</small></footer>")
            entries, nb_records, seconds, notebook_errors = [], [], {}, []
            run_steps = [s for s in sorted(notebooks) if s in wanted]
            bar = tqdm(run_steps, desc="steps", unit="step", disable=not progress, file=sys.stderr)
            for step in sorted(notebooks):
                if step not in wanted:
                    nb_records.append({"step": step, "status": "not run",
                                       "why": tx("excluded by [study] steps") if steps is None
                                       else tx("not requested")})
            for step in bar:
                bar.set_postfix_str(notebooks[step].stem)
                record, entry, secs, error = _run_notebook(notebooks[step], step, params, lang, staging,
                                                           timeout, footer, tx)
                nb_records.append(record)
                entries.append(entry)
                seconds[notebooks[step].stem] = secs
                notebook_errors.extend(error)
            nb_records.sort(key=lambda r: r["step"])
            sections = _write_outputs(staging, study, run_steps, entries, nb_records, notebook_errors, prov,
                                      seconds, tx)
            result_index = out / "index.html"
            # keep the old folder's dotfiles (such as .gitkeep)
            publish_folder(staging, out, keep=lambda p: p.name.startswith(".") and p.is_file())
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return ReportResult(out_dir=out, index=result_index, sections=tuple(sections),
                        notebooks=tuple(nb_records), provenance=prov, seconds=seconds, language=lang)


def _store_processed(study: Study, folder: Path) -> None:
    """The per-cell summaries of the study's patient-level files into the processed folder (those
    reused are written again: the folder of the new report holds what it used)."""
    from ..data.patient_level import store_cells

    for cells in study.patient_level.values():
        store_cells(folder, cells, study.folder / cells.source)


def _run_notebook(nb_path: Path, step: int, params: dict, lang: str, staging: Path, timeout: int,
                  footer: str, tx: Text) -> tuple[dict, tuple, float, list[str]]:
    """Execute one step notebook and write its two HTML pages into ``staging``.

    Returns the notebook's record (ran / failed and why), its entry of the index (step, title, page
    names), its run time in seconds and the error text for the run log (empty when it ran).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    _keep_language(nb, lang)
    _inject_parameters(nb, params)
    start = _dt.datetime.now()
    record, errors = {"step": step, "status": "ran", "why": ""}, []
    try:
        # the kernel's own start-up log (e.g. its TCP-transport notice) is not the user's concern
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       extra_arguments=["--IPKernelApp.log_level=ERROR"],
                       resources={"metadata": {"path": str(staging)}}).execute()
    except (CellExecutionError, DeadKernelError, TimeoutError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        record = {"step": step, "status": "failed", "why": tx("the notebook stopped: {error}", error=first[:200])}
        errors.append(f"== notebook {nb_path.name} stopped\n{exc}\n")
    seconds = round((_dt.datetime.now() - start).total_seconds(), 1)
    title = _title(nb, nb_path.stem)
    nb.metadata.pop("scaleup_provenance", None)
    full_name, report_name = f"{nb_path.stem}.html", f"{nb_path.stem}_report.html"
    exporters = {full_name: HTMLExporter(),
                 report_name: HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)}
    for name, exporter in exporters.items():
        page = _export(nb, title, exporter).replace("</body>", footer + "</body>", 1)
        if record["status"] == "failed":
            page = partial_banner(page, record["why"], tx)
        atomic_write_bytes(staging / name, page.encode("utf-8"))
    return record, (step, title, full_name, report_name, f"{nb_path.stem}_summary.html"), seconds, errors


def _write_outputs(staging: Path, study: Study, run_steps: list[int], entries: list[tuple], nb_records: list[dict],
                   notebook_errors: list[str], prov: dict, seconds: dict, tx: Text) -> list[dict]:
    """After the notebooks: the run log, the decision briefs, sections.json, provenance.json and the
    index, all in ``staging``; returns the sections' records."""
    sections = []
    for step in run_steps:
        path = staging / "status" / f"step_{step}.json"
        if path.exists():
            sections.extend(json.loads(path.read_text(encoding="utf-8"))["sections"])
    logs = [staging / "status" / f"step_{step}.log" for step in run_steps]
    text = "".join(f"== step {p.stem[5:]}\n" + p.read_text(encoding="utf-8")
                   for p in logs if p.exists() and p.stat().st_size)
    atomic_write_bytes(staging / "run.log", (text + "".join(notebook_errors)).encode("utf-8"))
    shutil.rmtree(staging / "status")
    figures = sorted(p.name for p in (staging / "figures").iterdir() if p.suffix in (".png", ".svg"))
    by_step = {r["step"]: r for r in nb_records}
    seed = study.settings.seed
    stamp = html.escape(tx("scaleup_analysis {version}, commit {commit}, seed {seed}",
                           version=prov["package_version"], commit=prov["git_commit"], seed=seed))
    for step, _title_, _full, report_name, brief_name in entries:
        page = brief_html(study, step, [s for s in sections if s["step"] == step], by_step[step],
                          set(figures), report_name, stamp)
        atomic_write_bytes(staging / brief_name, page.encode("utf-8"))
    tables = sorted(p.name for p in (staging / "tables").iterdir() if p.suffix == ".csv")
    prov["notebook_seconds"] = seconds
    atomic_write_bytes(staging / "sections.json",
                       json.dumps({"notebooks": nb_records, "sections": sections}, indent=1).encode())
    atomic_write_bytes(staging / "provenance.json", json.dumps(prov, indent=2).encode())
    stable_prov = {k: v for k, v in prov.items() if k not in VOLATILE_PROVENANCE}
    atomic_write_bytes(staging / "index.html", index_html(
        study, entries, nb_records, sections, figures, tables, stable_prov).encode("utf-8"))
    return sections
