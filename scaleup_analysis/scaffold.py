"""``scaleup init``: scaffold a new study folder that a team fills in.

:func:`init_study` writes into a new (or empty) folder:

* ``study.toml``, the study file with every setting commented out (see
  :func:`scaleup_analysis.study.study_file_template`);
* one header-only CSV template per table of ``docs/data_dictionary.md`` (``sites.csv``, ...);
* ``study.xlsx``, one workbook with a sheet per table (header row, column descriptions as header
  comments, drop-down lists for coded columns: RSS codes, site types, FRAME codes, ...) and a
  first sheet of instructions;
* ``README.md``, in French and English: what to fill in, in which format, and the next commands.

The team fills in *either* the CSV files *or* the workbook: a template left with its header row only
counts as "table not given" (see :func:`scaleup_analysis.load_tables`).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from ._checks import checked_inputs
from ._atomic import (FolderLock, atomic_write_bytes, atomic_write_text, check_writable, clear_leftovers,
                      publish_folder, staging_folder)
from .errors import ScaleupDataError
from .study import STUDY_FILE, study_file_template

__all__ = ["init_study", "WORKBOOK_NAME"]

#: File name of the workbook template.
WORKBOOK_NAME = "study.xlsx"

_README = """\
# Étude de mise à l'échelle — dossier de données / Scale-up study — data folder

*(English below.)*

## Français

Ce dossier a été créé par `scaleup init`. Il contient :

- `study.toml` : les paramètres de l'étude (nom, périodes de référence et de suivi, groupe de
  comparaison, indicateur principal, seuil de petites cellules…). Tous sont facultatifs : un paramètre
  laissé en commentaire (`#`) est déduit des données, et le rapport indique la valeur retenue et pourquoi.
- un modèle CSV par table (`sites.csv`, `outcomes.csv`, …), avec la ligne d'en-tête seulement ;
- `study.xlsx` : le même contenu sous forme de classeur, une feuille par table, avec des listes
  déroulantes pour les colonnes codées (codes RSS, types de sites, codes FRAME…).

Remplissez **soit** les fichiers CSV, **soit** le classeur, pas les deux pour une même table.
Un modèle laissé vide (en-tête seulement) compte comme « table non fournie ».

Tables obligatoires : {required}. Tables facultatives : {optional} (une analyse qui en a besoin
est alors sautée, avec la raison). Sans table `regions`, les 18 régions sociosanitaires du Québec sont
utilisées. Chaque colonne est décrite dans la feuille de la table (commentaire de l'en-tête) et dans le
dictionnaire de données (`docs/data_dictionary.md` du paquet scaleup_analysis).

Format des CSV : séparateur virgule ou point-virgule, virgule ou point décimal (détectés) ; encodage
UTF-8 (dans Excel : « Enregistrer sous > CSV UTF-8 ») ou, sinon, déclarez `encoding = "cp1252"` dans la
section `[data]` de `study.toml`. Les identifiants (codes RSS « 06 », codes de sites) sont du texte :
gardez les zéros de tête.

Ensuite :

```
scaleup validate DOSSIER                      # vérifie toutes les tables en une fois
scaleup report --data DOSSIER --out RAPPORTS  # produit les rapports (le dossier de données n'est jamais modifié)
```

## English

This folder was created by `scaleup init`. It holds:

- `study.toml`: the settings of the study (name, baseline and follow-up periods, comparison group,
  primary indicator, small-cell threshold…). All are optional: a setting left commented out (`#`) is
  derived from the data, and the report states the value used and why.
- one CSV template per table (`sites.csv`, `outcomes.csv`, …), with the header row only;
- `study.xlsx`: the same as one workbook, a sheet per table, with drop-down lists for coded columns
  (RSS codes, site types, FRAME codes…).

Fill in **either** the CSV files **or** the workbook, not both for the same table. A template left
empty (header only) counts as "table not given".

Required tables: {required}. Optional tables: {optional} (an analysis that needs one is then skipped,
with the reason). Without a `regions` table, Quebec's 18 health regions (RSS) are used. Each column is
described in its table's sheet (header comment) and in the data dictionary (`docs/data_dictionary.md`
of the scaleup_analysis package).

CSV format: comma or semicolon separator, decimal point or comma (detected); UTF-8 encoding (Excel:
"Save as > CSV UTF-8"), otherwise declare `encoding = "cp1252"` in the `[data]` section of
`study.toml`. Identifiers (RSS codes "06", site codes) are text: keep leading zeros.

Then:

```
scaleup validate FOLDER                     # checks every table in one pass
scaleup report --data FOLDER --out REPORTS  # writes the reports (the data folder is never modified)
```
"""

_INSTRUCTIONS = (
    ("Lisez-moi / Read me", ""),
    ("", ""),
    ("Une feuille par table. Remplissez la ligne 2 et les suivantes ; ne changez pas la ligne 1 (noms de colonnes).",
     "One sheet per table. Fill in row 2 onwards; do not change row 1 (column names)."),
    ("Une feuille laissée vide (en-tête seulement) compte comme « table non fournie ».",
     "A sheet left empty (header only) counts as \"table not given\"."),
    ("Remplissez soit ce classeur, soit les fichiers CSV du dossier, pas les deux pour une même table.",
     "Fill in either this workbook or the CSV files of the folder, not both for the same table."),
    ("Survolez un nom de colonne pour sa description ; les colonnes codées ont une liste déroulante.",
     "Hover over a column name for its description; coded columns have a drop-down list."),
    ("Les identifiants (codes RSS « 06 », codes de sites) sont du texte : gardez les zéros de tête.",
     "Identifiers (RSS codes \"06\", site codes) are text: keep leading zeros."),
)


def _tables():
    from .data.schemas import TABLES, table_spec

    return [table_spec(t) for t in TABLES]


def _required_flags() -> tuple[list[str], list[str]]:
    from .data.schemas import REQUIRED_TABLES, TABLES

    required = [t for t in TABLES if t in REQUIRED_TABLES]
    return required, [t for t in TABLES if t not in REQUIRED_TABLES]


def _choices(table: str, column: str, kind: str, categories: tuple) -> list[str]:
    """The drop-down values of a column (empty when free)."""
    if categories:
        return list(categories)
    if column == "rss_code":
        from .data.datasets import load_dataset

        return list(load_dataset("quebec_regions")["rss_code"])
    if kind == "bool":
        return ["TRUE", "FALSE"]
    if table == "adaptations":
        from .adaptation import frame_scheme

        scheme = frame_scheme()
        codes = scheme.loc[scheme["field"] == column, "code"].tolist()
        if codes and not scheme.loc[scheme["field"] == column, "multiple"].any():
            return codes
    return []


def _workbook_bytes() -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    info = wb.active
    info.title = "Lisez-moi"
    for r, (fr, en) in enumerate(_INSTRUCTIONS, start=1):
        info.cell(row=r, column=1, value=fr)
        info.cell(row=r, column=2, value=en)
    info["A1"].font = Font(bold=True, size=14)
    info.column_dimensions["A"].width = 90
    info.column_dimensions["B"].width = 90
    lists = wb.create_sheet("Listes")  # values of the drop-down lists (referenced, no length limit)
    list_col = 0
    for spec in _tables():
        ws = wb.create_sheet(spec.name)
        for j, col in enumerate(spec.columns, start=1):
            cell = ws.cell(row=1, column=j, value=col.name)
            cell.font = Font(bold=True)
            desc = getattr(col, "description", "") or ""
            if desc:
                cell.comment = Comment(desc, "scaleup init")
            letter = get_column_letter(j)
            ws.column_dimensions[letter].width = max(12, len(col.name) + 4)
            if col.kind in ("str", "category"):
                for row in range(2, 1002):  # text cells: Excel keeps "06" as typed
                    ws.cell(row=row, column=j).number_format = "@"
            values = _choices(spec.name, col.name, col.kind, col.categories)
            if values:
                list_col += 1
                lcol = get_column_letter(list_col)
                lists.cell(row=1, column=list_col, value=f"{spec.name}.{col.name}")
                for i, v in enumerate(values, start=2):
                    lists.cell(row=i, column=list_col, value=v)
                dv = DataValidation(type="list", allow_blank=True, showErrorMessage=True,
                                    formula1=f"=Listes!${lcol}$2:${lcol}${len(values) + 1}",
                                    errorTitle=col.name, error=f"{col.name}: choose a value from the list")
                ws.add_data_validation(dv)
                dv.add(f"{letter}2:{letter}1048576")
        ws.freeze_panes = "A2"
    lists.sheet_state = "hidden"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@checked_inputs
def init_study(directory: str | os.PathLike) -> list[Path]:
    """Scaffold a study folder: ``study.toml``, CSV templates, ``study.xlsx`` and ``README.md``.

    Parameters
    ----------
    directory : path
        A new folder, or an existing empty one. Nothing is ever overwritten.

    Returns
    -------
    list of pathlib.Path
        The files written.

    Raises
    ------
    ScaleupDataError
        If ``directory`` exists and is not an empty folder.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from scaleup_analysis.scaffold import init_study
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "my_study"
    >>> sorted(p.name for p in init_study(d))[:4]
    ['README.md', 'adaptations.csv', 'assessments.csv', 'components.csv']
    """
    target = Path(directory)
    if target.exists():
        if not target.is_dir():
            raise ScaleupDataError(f"{str(target)!r} exists and is not a folder; choose a new folder name.")
        if any(target.iterdir()):
            raise ScaleupDataError(
                f"{str(target)!r} is not empty: `scaleup init` never overwrites files. Choose a new folder "
                "name (it will be created), or empty this one yourself."
            )
    check_writable(target, "the study folder")
    with FolderLock(target, "scaleup init"):
        clear_leftovers(target)
        staging = staging_folder(target)
        try:
            required, optional = _required_flags()
            atomic_write_text(staging / STUDY_FILE, study_file_template())
            atomic_write_text(staging / "README.md", _README.format(
                required=", ".join(f"`{t}`" for t in required), optional=", ".join(f"`{t}`" for t in optional)))
            for spec in _tables():
                atomic_write_text(staging / f"{spec.name}.csv", ",".join(c.name for c in spec.columns) + "\n")
            atomic_write_bytes(staging / WORKBOOK_NAME, _workbook_bytes())
            written = sorted(p.name for p in staging.iterdir())
            if target.exists() and any(target.iterdir()):  # filled meanwhile by someone else
                raise ScaleupDataError(f"{str(target)!r} is no longer empty; `scaleup init` never overwrites files.")
            publish_folder(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return [target / name for name in written]
