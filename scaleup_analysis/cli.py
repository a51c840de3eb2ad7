"""The ``scaleup`` command line: simulate a dataset, validate data, build the reports.

Run ``scaleup --help`` (or ``scaleup <command> --help``) for the commands and examples. Errors in the
data are printed to stderr without a traceback and give exit code 2.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import ScaleupDataError

__all__ = ["main", "DEFAULT_SEED"]

#: Seed used by ``scaleup simulate`` and ``scaleup report`` when ``--seed`` is not given
#: (the same as ``make report`` and ``simulate_scaleup``).
DEFAULT_SEED = 20261123

_DESCRIPTION = """\
scaleup: evaluate the scale-up of a health or social-service innovation across Quebec's 18 health
regions (RSS).

A typical session:
  1. scaleup simulate --out data/raw        build the example dataset (or put your own tables there)
  2. scaleup validate data/raw              check every table and the links between them
  3. scaleup report --data data/raw         run the analysis notebooks into reports/

The tables and their columns are described in docs/data_dictionary.md.
"""

_SIMULATE_HELP = """\
Simulate a province-wide scale-up (sites in all 18 RSS, pilot then scale-up waves) with known true
effects, and write every table as CSV into --out together with a MANIFEST (sha256 of each file).

Raw data are never overwritten: the command refuses to write into a directory that already holds a
MANIFEST or data files. Use a new directory instead.

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
Run the analysis notebooks on a data directory and write HTML reports, figures and provenance
(package version, git commit, data sha256, seed) into --out. When --data holds no data file, the
simulated example dataset is written there first.

examples:
  scaleup report                                     # data/raw -> reports/
  scaleup report --data data/raw_seed7 --seed 7 --out reports_seed7
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
    val.set_defaults(func=_cmd_validate)

    rep = sub.add_parser(
        "report",
        help="run the analysis notebooks and write the HTML reports",
        description=_REPORT_HELP,
        formatter_class=fmt,
    )
    rep.add_argument("--data", default="data/raw", metavar="DIR",
                     help="data directory (default: data/raw)")
    rep.add_argument("--seed", type=_nonneg_int, default=DEFAULT_SEED, metavar="N",
                     help=f"random seed passed to the notebooks (default: {DEFAULT_SEED})")
    rep.add_argument("--out", default="reports", metavar="DIR",
                     help="where reports, figures and provenance go (default: reports)")
    rep.set_defaults(func=_cmd_report)
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


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .data.io import _umask, write_table_atomic
    from .data.manifest import write_manifest
    from .data.schemas import validate_tables
    from .data.simulate import simulate_scaleup

    out = Path(args.out)
    existing = _holds_raw_data(out)
    if existing:
        raise ScaleupDataError(
            f"Refusing to write into {str(out)!r}: it already holds raw data "
            f"({', '.join(existing[:5])}{', ...' if len(existing) > 5 else ''}). Raw data are never "
            "overwritten: choose a new directory with --out (e.g. --out data/raw_v2), or delete the old "
            "one yourself if you are sure it is no longer needed."
        )
    kwargs = {
        k: v
        for k, v in (
            ("n_sites", args.n_sites),
            ("n_periods", args.n_periods),
            ("patients_per_site_period", args.patients_per_site_period),
        )
        if v is not None
    }
    sim = simulate_scaleup(seed=args.seed, **kwargs)
    tables = validate_tables(sim.tables)  # never publish a dataset that would not load
    # Write into a hidden sibling directory first, then move it into place: an interrupted run
    # leaves no half-written data directory under the target name.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the data directory is not
        for name, df in tables.items():
            write_table_atomic(df, staging / f"{name}.csv")
        write_manifest(staging)
        if out.exists():
            if any(out.iterdir()):  # only unrelated non-data files: move the tables in one by one
                for f in sorted(staging.iterdir()):
                    f.replace(out / f.name)
                staging.rmdir()
            else:
                staging.replace(out)
        else:
            staging.replace(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    width = max(len(n) for n in tables)
    print(f"Wrote {len(tables)} tables and a MANIFEST to {out} (seed {args.seed}):")
    for name, df in tables.items():
        print(f"  {name + '.csv':<{width + 4}} {len(df):>9,d} rows")
    print(f"Next: scaleup validate {out}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from .data.io import load_table, load_tables

    path = Path(args.path)
    if path.is_dir():
        tables = load_tables(path)
        manifest = " (MANIFEST verified)" if (path / "MANIFEST").exists() else " (no MANIFEST)"
        print(f"{path}: {len(tables)} tables valid{manifest}")
    elif path.exists():
        tables = {path.stem: load_table(path)}
        print(f"{path}: table '{path.stem}' valid (schema only; validate the directory to check foreign keys)")
    else:
        raise ScaleupDataError(f"{str(path)!r} does not exist: give a data directory or a table file.")
    width = max(len(n) for n in tables)
    for name, df in tables.items():
        print(f"  {name:<{width}}  {len(df):>9,d} rows  {df.shape[1]:>3d} columns")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        from .reporting import run_report
    except ModuleNotFoundError as exc:  # pragma: no cover - only in a partial source tree
        if exc.name != "scaleup_analysis.reporting":
            raise
        print("error: the reporting module is not available in this installation.", file=sys.stderr)
        return 1
    result = run_report(data_dir=args.data, seed=args.seed, out_dir=args.out)
    index = getattr(result, "index", None)
    print(f"Reports written to {getattr(result, 'out_dir', args.out)}" + (f"; open {index}" if index else ""))
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
        Exit code: 0 on success, 2 when the data or arguments are invalid (the message is printed to
        stderr, without a traceback), 130 when interrupted.

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
