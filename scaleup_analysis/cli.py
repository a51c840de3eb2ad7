"""The ``scaleup`` command line: simulate a dataset, validate data, build the reports.

Run ``scaleup --help`` (or ``scaleup <command> --help``) for the commands and examples. Errors in the
data are printed to stderr without a traceback and give exit code 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ScaleupDataError

__all__ = ["main", "DEFAULT_SEED"]

from ._constants import DEFAULT_SEED  # noqa: E402  (re-exported: the seed of every command)

_DESCRIPTION = """\
scaleup: evaluate the scale-up of a health or social-service innovation across Quebec's 18 health
regions (RSS).

Your own study:
  1. scaleup init my_study                  a study folder: study.toml, CSV templates, a workbook
  2. (fill in the tables, as CSV files or in the workbook)
  3. scaleup validate my_study              check every table and the study file, in one pass
  4. scaleup report --data my_study --out my_reports
                                            run the five steps; the data folder is never written

The embedded example (a simulated province-wide scale-up):
  scaleup report --out reports              report on it directly
  scaleup simulate --out data/raw           or write it as a study folder first

The tables and their columns are described in docs/data_dictionary.md.
"""

_SIMULATE_HELP = """\
Simulate a province-wide scale-up (sites in all 18 RSS, pilot then scale-up waves) with known true
effects, and write it as a study folder into --out: every table as CSV (with a real evidence table,
Baskerville et al. 2012), a study.toml saying the data are simulated, and a MANIFEST (sha256 of
each file).

Raw data are never overwritten: the command refuses to write into a directory that already holds a
MANIFEST or data files. Use a new directory instead. The dataset is written into a hidden folder
beside --out and moved into place when complete (an interrupted run leaves no half dataset); a
second run on the same --out while one is running is refused.

examples:
  scaleup simulate                                   # default size into data/raw
  scaleup simulate --out data/raw_small --n-sites 36 --n-periods 8 --patients-per-site-period 5
  scaleup simulate --out data/raw_seed7 --seed 7     # another random replicate
"""

_VALIDATE_HELP = """\
Validate a data directory (every table file in it, the foreign keys between tables and, when present,
the MANIFEST) or a single table file (its schema only; the table name is the file name, e.g.
sites.csv). Prints one line per table (rows, columns) when everything is valid, otherwise every
problem found (table, column, file lines, how to fix), and exits with code 2.

examples:
  scaleup validate data/raw
  scaleup validate data/raw/sites.csv
"""

_REPORT_HELP = """\
Run the five step notebooks on a study folder (--data) and write the reports into --out: one HTML
report per step (and a summary without code), figures, key tables, index.html with the run summary
(each analysis ran, was not run and why, or failed) and provenance.json. Without --data the
embedded example study (simulated) is used. The data folder is only read; --out is replaced as a
whole at the end of the run and may not be inside --data.

Exit status: 0 when every analysis ran or stepped aside with a reason, 1 when one failed (the
report is then marked partial), 2 when the data or the study file are invalid (nothing written).

examples:
  scaleup report --out reports                       # the embedded example study
  scaleup report --data my_study --out my_reports    # a team's study folder
  scaleup report --data my_study --out r --steps 1,5 # only steps 1 and 5
  scaleup report --data my_study --out r --lang en   # the reports in English
"""

_FEEDBACK_HELP = """\
Write one printable feedback card per site (and per establishment, when the study has an
establishments table) into --out, with an index: the unit's indicators against all units (funnel
plot: better, worse or as expected), its own trend (runs rules), fidelity, reach and adaptations,
and what went well and what needs attention. No card shows a count below the study's small-cell
threshold or names another site. The data folder is only read; --out is replaced as a whole.

examples:
  scaleup feedback --out feedback                       # the embedded example study
  scaleup feedback --data my_study --out my_feedback --lang fr --periods 13,14,15,16
"""

_INIT_HELP = """\
Create a study folder to fill in: study.toml (every setting, commented out), one CSV template per
table (header row only), study.xlsx (one sheet per table, with drop-down lists for coded columns)
and a README in French and English. Fill in either the CSV files or the workbook.

examples:
  scaleup init my_study
"""


def _int_at_least(minimum: int):
    """An argparse ``type`` accepting whole numbers >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _steps(text: str) -> tuple[int, ...]:
    """An argparse ``type``: "1,2,5" -> (1, 2, 5)."""
    try:
        steps = tuple(sorted({int(x) for x in text.replace(" ", "").split(",") if x}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected step numbers separated by commas, e.g. 1,2,5; got {text!r}") from None
    if not steps or any(s not in range(1, 6) for s in steps):
        raise argparse.ArgumentTypeError(f"steps are numbers from 1 to 5, got {text!r}")
    return steps


def _periods(text: str) -> tuple[int, ...]:
    """An argparse ``type``: "13,14,15" -> (13, 14, 15)."""
    try:
        periods = tuple(sorted({int(x) for x in text.replace(" ", "").split(",") if x}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected periods separated by commas, e.g. 13,14,15,16; got {text!r}") from None
    if not periods or any(p < 1 for p in periods):
        raise argparse.ArgumentTypeError(f"periods are whole numbers from 1, got {text!r}")
    return periods
_nonneg_int = _int_at_least(0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``scaleup`` command (exposed for documentation tools)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="scaleup", description=_DESCRIPTION, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    sim = sub.add_parser(
        "simulate",
        help="write a simulated example dataset (CSV tables + MANIFEST)",
        description=_SIMULATE_HELP,
        formatter_class=fmt,
    )
    sim.add_argument(
        "--out", default="data/raw", metavar="DIR",
        help="new or empty directory to write the tables into (default: data/raw)",
    )
    sim.add_argument(
        "--seed", type=_nonneg_int, default=DEFAULT_SEED, metavar="N",
        help=f"random seed; the same seed gives the same data (default: {DEFAULT_SEED})",
    )
    sim.add_argument("--n-sites", type=_positive_int, metavar="N",
                     help="number of delivery sites, at least 36 (default: 120)")
    sim.add_argument("--n-periods", type=_positive_int, metavar="N",
                     help="number of quarterly periods, at least 8 (default: 16)")
    sim.add_argument("--patients-per-site-period", type=_positive_int, metavar="N",
                     help="new patients per site and period in encounters, at least 2 (default: 30)")
    sim.set_defaults(func=_cmd_simulate)

    val = sub.add_parser(
        "validate",
        help="check a data directory or one table file against the data dictionary",
        description=_VALIDATE_HELP,
        formatter_class=fmt,
    )
    val.add_argument("path", metavar="PATH", help="a data directory (e.g. data/raw) or one table file")
    val.add_argument("--lang", choices=("fr", "en"), default=None, metavar="fr|en",
                     help="language of the summary (default: the study's, from study.toml; French without one)")
    val.set_defaults(func=_cmd_validate)

    rep = sub.add_parser(
        "report",
        help="run the analysis notebooks and write the HTML reports",
        description=_REPORT_HELP,
        formatter_class=fmt,
    )
    rep.add_argument("--data", default=None, metavar="DIR",
                     help="the study folder (default: the embedded example study)")
    rep.add_argument("--seed", type=_nonneg_int, default=None, metavar="N",
                     help="random seed (default: [study] seed of study.toml, else "
                          f"{DEFAULT_SEED})")
    rep.add_argument("--out", default="reports", metavar="DIR",
                     help="output folder, replaced at the end of the run (default: reports)")
    rep.add_argument("--steps", type=_steps, default=None, metavar="LIST",
                     help="steps to run, e.g. 1,2,5 (default: [study] steps of study.toml, else all)")
    rep.add_argument("--lang", choices=("fr", "en"), default=None, metavar="fr|en",
                     help="language of the reports (default: [study] language of study.toml, else fr)")
    rep.add_argument("--processed", default=None, metavar="DIR",
                     help="folder of the summaries of the patient-level tables, reused while the raw file is "
                          "unchanged (default: OUT/processed; never inside --data)")
    rep.add_argument("--engine", choices=("duckdb", "pandas", "dask"), default="duckdb",
                     help="what summarises a patient-level file (default: duckdb; dask: on a cluster)")
    rep.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="Dask scheduler address for --engine dask, e.g. tcp://10.0.0.5:8786 (default: a "
                          "local cluster); needs pip install \"scaleup_analysis[distributed]\"")
    rep.add_argument("--quiet", action="store_true", help="no progress bar")
    rep.set_defaults(func=_cmd_report)

    fb = sub.add_parser(
        "feedback",
        help="write one printable feedback card per site and establishment (HTML)",
        description=_FEEDBACK_HELP,
        formatter_class=fmt,
    )
    fb.add_argument("--data", default=None, metavar="DIR",
                    help="the study folder (default: the embedded example study)")
    fb.add_argument("--out", default="feedback", metavar="DIR",
                    help="output folder, replaced at the end of the run (default: feedback)")
    fb.add_argument("--periods", type=_periods, default=None, metavar="LIST",
                    help="periods of the feedback window, e.g. 13,14,15,16 (default: [periods] followup)")
    fb.add_argument("--lang", choices=("fr", "en"), default=None, metavar="fr|en",
                    help="language of the cards (default: [study] language of study.toml, else fr)")
    fb.set_defaults(func=_cmd_feedback)

    ini = sub.add_parser(
        "init",
        help="create a study folder to fill in (study.toml, CSV templates, workbook, README)",
        description=_INIT_HELP,
        formatter_class=fmt,
    )
    ini.add_argument("directory", metavar="DIR", help="a new (or empty) folder")
    ini.set_defaults(func=_cmd_init)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _holds_raw_data(directory: Path) -> list[str]:
    from .data.io import DATA_SUFFIXES
    from .data.manifest import MANIFEST_NAME

    if not directory.exists():
        return []
    if not directory.is_dir():
        raise ScaleupDataError(f"--out {str(directory)!r} exists and is not a directory; choose a new directory.")
    return sorted(
        f.name
        for f in directory.iterdir()
        if f.is_file() and (f.name == MANIFEST_NAME or f.suffix.lower() in DATA_SUFFIXES)
    )


def _refuse_raw_data(out: Path) -> None:
    existing = _holds_raw_data(out)
    if existing:
        raise ScaleupDataError(
            f"Refusing to write into {str(out)!r}: it already holds raw data "
            f"({', '.join(existing[:5])}{', ...' if len(existing) > 5 else ''}). Raw data are never "
            "overwritten: choose a new directory with --out (e.g. --out data/raw_v2), or delete the old "
            "one yourself if you are sure it is no longer needed."
        )


def _copy_other_files(out: Path, staging: Path) -> None:
    """Copy the files of an existing ``out`` (no data: checked before) into ``staging``."""
    if not out.is_dir():
        return
    for p in out.iterdir():
        if p.is_dir():
            shutil.copytree(p, staging / p.name, symlinks=True)
        else:
            shutil.copy2(p, staging / p.name, follow_symlinks=False)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from ._atomic import FolderLock, atomic_write_text, check_writable, clear_leftovers, publish_folder, staging_folder
    from .data.io import write_table_atomic
    from .data.manifest import write_manifest
    from .data.schemas import validate_tables
    from .study import STUDY_FILE, default_study_file, default_study_tables

    out = Path(args.out)
    _refuse_raw_data(out)
    check_writable(out, "--out")  # before the (long) simulation, not after it
    kwargs = {
        k: v
        for k, v in (
            ("n_sites", args.n_sites),
            ("n_periods", args.n_periods),
            ("patients_per_site_period", args.patients_per_site_period),
        )
        if v is not None
    }
    # One run at a time on one folder (a second one is refused), and the folder is published whole:
    # the tables are written into a hidden staging folder beside it, then moved into place in one
    # rename, so a killed run leaves no half-written data folder (its staging folder is removed by
    # the next run).
    with FolderLock(out, "simulate run"):
        clear_leftovers(out)
        _refuse_raw_data(out)  # again under the lock: another run may have written it meanwhile
        tables = validate_tables(default_study_tables(args.seed, **kwargs))  # never publish data that would not load
        staging = staging_folder(out)
        try:
            for name, df in tables.items():
                write_table_atomic(df, staging / f"{name}.csv")
            atomic_write_text(staging / STUDY_FILE, default_study_file(args.seed))
            _copy_other_files(out, staging)  # the files already in --out (README, .gitkeep) stay, in the MANIFEST
            write_manifest(staging)
            publish_folder(staging, out, keep=lambda p: True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    width = max(len(n) for n in tables)
    print(f"Wrote {len(tables)} tables, {STUDY_FILE} and a MANIFEST to {out} (seed {args.seed}):")
    for name, df in tables.items():
        print(f"  {name + '.csv':<{width + 4}} {len(df):>9,d} rows")
    print(f"Next: scaleup validate {out}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .data.io import load_table
    from .narrative import Text
    from .study import STUDY_FILE, load_study

    path = Path(args.path)
    if path.is_dir():
        study = load_study(path, language=args.lang)  # the study file and every table, all problems in one message
        tx = Text(study.settings.language)
        tables = dict(study.tables)
        manifest = tx("MANIFEST verified") if (path / "MANIFEST").exists() else tx("no MANIFEST")
        given = (tx("{file} valid", file=STUDY_FILE) if (path / STUDY_FILE).exists()
                 else tx("no {file}", file=STUDY_FILE))
        cells = study.patient_level  # patient-level files: checked in chunks, never loaded whole
        print(tx.n("{path}: {n} table valid ({manifest}); {given}", "{path}: {n} tables valid ({manifest}); {given}",
                   len(tables) + len(cells), path=str(path), manifest=manifest, given=given))
        width = max(len(n) for n in [*tables, *cells])
        for name, df in tables.items():
            rows = tx.n("{n} row", "{n} rows", len(df))
            columns = tx.n("{n} column", "{n} columns", df.shape[1])
            print(f"  {name:<{width}}  {rows:>14}  {columns:>12}")
        for name, c in cells.items():
            rows = tx.n("{n} row", "{n} rows", c.rows)
            print(f"  {name:<{width}}  {rows:>14}  {tx('summarised from {file}', file=c.source)}")
        for line in study.statements():
            print(f"  - {line}")
        return 0
    if path.exists():
        tx = Text(args.lang or "fr")
        table = load_table(path)
        print(tx("{path}: table '{table}' valid (schema only; validate the folder to check foreign keys)",
                 path=str(path), table=path.stem))
        rows = tx.n("{n} row", "{n} rows", len(table))
        columns = tx.n("{n} column", "{n} columns", table.shape[1])
        print(f"  {path.stem}  {rows:>14}  {columns:>12}")
        return 0
    raise ScaleupDataError(f"{str(path)!r} does not exist: give a study folder or a table file.")


def _cmd_report(args: argparse.Namespace) -> int:
    from .reporting import run_report

    if args.scheduler is not None and args.engine != "dask":
        raise ScaleupDataError("--scheduler is the address of a Dask scheduler: it needs --engine dask.")
    result = run_report(data_dir=args.data, out_dir=args.out, seed=args.seed, steps=args.steps,
                        language=args.lang, progress=not args.quiet, processed_dir=args.processed,
                        engine=args.engine, scheduler=args.scheduler)
    print(result.summary())
    print(result.written_message(args.out))
    return 0 if result.ok else 1


def _cmd_feedback(args: argparse.Namespace) -> int:
    from .feedback import write_feedback

    result = write_feedback(args.data, args.out, periods=args.periods, language=args.lang)
    print(result.summary(language=result.language))
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from .scaffold import init_study

    written = init_study(args.directory)
    print(f"Created the study folder {args.directory} ({len(written)} files):")
    for p in written:
        print(f"  {p.name}")
    print(f"Fill in the tables (CSV files or the workbook), then: scaleup validate {args.directory}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scaleup`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit code: 0 on success, 1 when a report ran but one of its analyses failed (the report is
        marked partial), 2 when the data or arguments are invalid (the message is printed to stderr,
        without a traceback), 130 when interrupted.

    Examples
    --------
    >>> from scaleup_analysis.cli import main
    >>> main(["validate", "no/such/dir"])
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except ScaleupDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
