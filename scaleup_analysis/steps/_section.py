"""Sections of a step report: run an analysis if the data allow it, else say why not.

A *section* is one analysis of a step notebook (e.g. "did any region get worse?"). Its function takes
a :class:`~scaleup_analysis.study.Study` and either returns a :class:`SectionOutput` (generated
findings, tables, figures, the result object) or raises :class:`NotApplicable` with the reason and
what data would allow it. :class:`StepReport` runs the sections of one step, saves their tables
(small cells suppressed) and figures, displays them in the notebook, and records each section's status
(``ran`` / ``skipped`` / ``failed``) for the run summary. A section that fails shows a one-line error
and the notebook goes on; the full traceback goes to the run log, never into the report.
"""

from __future__ import annotations

import html
import json
import logging
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ScaleupWarning
from ..i18n import N_, get_language, set_language
from ..narrative import THRESHOLDS, Text, status_word
from ..study import STEPS, Study

__all__ = [
    "NotApplicable",
    "SectionOutput",
    "TableOut",
    "FigureOut",
    "Section",
    "StepReport",
    "section",
    "SECTIONS",
]

log = logging.getLogger("scaleup_analysis.report")


class NotApplicable(Exception):
    """The data do not allow an analysis: ``reason`` says why, ``needs`` what would allow it."""

    def __init__(self, reason: str, needs: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.needs = needs


@dataclass
class TableOut:
    """A table a section shows and saves (``reports/tables/<name>.csv``).

    ``counts`` are columns of numbers of people (suppressed below the study's small-cell threshold,
    with ``values`` derived from them and complementary suppression within ``by``); the columns of
    :data:`~scaleup_analysis.privacy.PEOPLE_COUNT_COLUMNS` are suppressed even when not listed.
    """

    name: str
    data: pd.DataFrame
    caption: str = ""
    counts: Sequence[str] | None = None
    values: Sequence[str] | None = None
    by: Sequence[str] | None = None
    show: bool = True
    digits: int = 3

    def published(self, threshold: int) -> pd.DataFrame:
        """The table as the report shows and saves it: when it counts people, its small cells (fewer
        than ``threshold``) and their complements suppressed, with a ``suppressed`` column."""
        from ..privacy import suppress_small_cells

        counts = _people_counts(self)
        if not counts:
            return self.data
        return suppress_small_cells(self.data, counts, self.values, threshold=threshold, by=self.by)

    def hidden(self, threshold: int) -> np.ndarray:
        """Which rows of ``data`` the published table suppresses, one flag per row: the mask a figure
        drawing the same values passes to its plot method (``hide=``) so that it leaves them out too."""
        table = self.published(threshold)
        if "suppressed" not in table.columns:
            return np.zeros(len(self.data), dtype=bool)
        return table["suppressed"].fillna(True).to_numpy(dtype=bool)


@dataclass
class FigureOut:
    """A figure a section shows and saves (``reports/figures/<name>.png|svg``)."""

    name: str
    figure: Any
    caption: str = ""
    brief: bool = False


@dataclass
class SectionOutput:
    """What a section function returns.

    ``findings`` are the generated interpretive sentences; ``thresholds`` the keys of
    :data:`~scaleup_analysis.narrative.THRESHOLDS` they used (printed under them); ``result`` the
    statistical result object(s), for a methodologist who wants more. For the decision brief of the
    step: ``headline`` answers the section's question in one sentence, ``key_figures`` are
    (label, value) pairs formatted for people, ``certainty`` says how sure the answer is. A figure
    shown in the brief is marked ``FigureOut(..., brief=True)``.
    """

    findings: list[str]
    tables: list[TableOut] = field(default_factory=list)
    figures: list[FigureOut] = field(default_factory=list)
    result: Any = None
    thresholds: Sequence[str] = ()
    notes: list[str] = field(default_factory=list)
    headline: str = ""
    key_figures: list[tuple[str, str]] = field(default_factory=list)
    certainty: list[str] = field(default_factory=list)


#: (step, key) -> (title, function), filled by the :func:`section` decorator.
SECTIONS: dict[tuple[int, str], tuple[str, Callable[[Study], SectionOutput]]] = {}


def section(step: int, key: str, title: str):
    """Register a section function of ``step`` under ``key`` with its ``title``."""

    def register(fn: Callable[[Study], SectionOutput]):
        SECTIONS[(step, key)] = (title, fn)
        fn.section_key = (step, key)
        return fn

    return register


@dataclass
class Section:
    """The outcome of one section: status ``ran``, ``skipped`` or ``failed``, and its output."""

    step: int
    key: str
    title: str
    status: str
    output: SectionOutput | None = None
    reason: str = ""
    needs: str = ""
    error: str = ""
    lang: str = "en"

    @property
    def result(self) -> Any:
        return None if self.output is None else self.output.result

    def record(self) -> dict:
        """The section as a plain record (for ``sections.json`` and the run summary)."""
        out = self.output
        return {"step": self.step, "key": self.key, "title": self.title, "status": self.status,
                "reason": self.reason, "needs": self.needs, "error": self.error,
                "findings": [] if out is None else list(out.findings),
                "notes": [] if out is None else list(out.notes),
                "headline": "" if out is None else out.headline,
                "key_figures": [] if out is None else [list(k) for k in out.key_figures],
                "certainty": [] if out is None else list(out.certainty),
                "tables": [] if out is None else [t.name for t in out.tables],
                "figures": [] if out is None else [f.name for f in out.figures],
                "brief_figures": [] if out is None else [f.name for f in out.figures if f.brief]}

    def _box_html(self) -> str:
        """The status box of a section that did not run (empty when it ran)."""
        tx = Text(self.lang)
        if self.status == "skipped":
            needs = (f"<br><em>{html.escape(tx('What would allow it:'))}</em> {html.escape(self.needs)}"
                     if self.needs else "")
            head = tx("Not run — {title}.", title=self.title)
            return (f'<div class="sa-box sa-skipped"><strong>{html.escape(head)}</strong> '
                    f"{html.escape(_sentence(self.reason))}{needs}</div>")
        if self.status == "failed":
            head = tx("Failed — {title}.", title=self.title)
            tail = tx("The other sections of the report are not affected; the run log holds the details.")
            return (f'<div class="sa-box sa-failed"><strong>{html.escape(head)}</strong> '
                    f"{html.escape(self.error)} {html.escape(tail)}</div>")
        return ""

    def _findings_html(self) -> str:
        out = self.output
        if out is None or not out.findings:
            return ""
        paras = "".join(f"<p>{html.escape(s)}</p>" for s in out.findings)
        notes = "".join(f'<p class="sa-note">{html.escape(n)}</p>' for n in out.notes)
        tx = Text(self.lang)
        thr = "".join(f'<p class="sa-threshold">{html.escape(THRESHOLDS[k].describe(tx))}</p>'
                      for k in out.thresholds)
        return f'<div class="sa-findings">{paras}</div>{notes}{thr}'

    def _findings_text(self) -> str:
        out = self.output
        if out is None:
            return ""
        tx = Text(self.lang)
        return "\n".join([*out.findings, *out.notes, *(THRESHOLDS[k].describe(tx) for k in out.thresholds)])


def _people_counts(t: TableOut) -> list[str] | None:
    """The count columns of a table for small-cell suppression: those the section declared, and any
    column that counts people (:data:`~scaleup_analysis.privacy.PEOPLE_COUNT_COLUMNS`) it did not."""
    from ..privacy import PEOPLE_COUNT_COLUMNS

    declared = list(t.counts or [])
    found = [c for c in t.data.columns if isinstance(c, str) and c in PEOPLE_COUNT_COLUMNS and c not in declared]
    return (declared + found) or None


def _sentence(text: str) -> str:
    """A reason as a sentence: capital first letter."""
    return text[:1].upper() + text[1:] if text else text


def report_notes(caught, step: int, key: str, tx: Text | None = None) -> tuple[list[str], str]:
    """Notes for the report from the warnings a section raised, and the reason to withhold it.

    A model that did not converge gives no finding: the section is reported as not run (second
    value). A boundary (singular) fit becomes a plain-language note; other warnings of the package
    are kept, without their function prefix; warnings of other libraries go to the run log only.
    """
    from ..errors import ConvergenceWarning, RowsOmittedWarning

    tx = tx or Text("en")
    notes: list[str] = []
    seen: set[str] = set()
    for w in caught:
        msg = str(w.message).strip()
        if msg in seen:
            continue
        seen.add(msg)
        if not issubclass(w.category, ScaleupWarning):
            log.info("warning in section %s/%s: %s", step, key, msg)
            continue
        if issubclass(w.category, ConvergenceWarning) and "singular" not in msg and "boundary" not in msg:
            log.warning("section %s/%s withheld: %s", step, key, msg)
            return [], tx("the statistical model did not converge on these data (too few sites or periods "
                          "for what it estimates), so no estimate is reported.")
        if "singular" in msg or "boundary" in msg:
            note = tx("Note: a variance component of the model is estimated at zero (the data show no "
                      "variation at that level), which makes its intervals less reliable.")
        elif issubclass(w.category, RowsOmittedWarning):
            # which rows and why go to the run log; the report says that some were left out
            log.info("section %s/%s: %s", step, key, msg)
            note = tx("Note: some rows of the data were left out of this analysis (missing or unusable "
                      "values); the run log lists them.")
        else:
            log.warning("section %s/%s: %s", step, key, msg)
            note = tx("Note: the statistical library raised a warning for this analysis (quoted in the run "
                      "log); its result may need a closer look.")
        if note not in notes:
            notes.append(note)
    return notes, ""


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    if len(first) > 200:
        first = first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class StepReport:
    """Run the sections of one step on a study, display them, save their outputs and statuses.

    Parameters
    ----------
    study : Study
    step : int
        1 to 5.
    figures_dir, tables_dir : path, optional
        Where figures and key tables are saved (None: nothing is written, e.g. under nbval).
    status_dir : path, optional
        Where the status of each section is recorded for the run summary (``step_N.json``).
    display : bool
        Display each section in the notebook (IPython) as it runs.
    """

    def __init__(self, study: Study, step: int, *, figures_dir=None, tables_dir=None, status_dir=None,
                 display: bool = True) -> None:
        if step not in STEPS:
            raise ValueError(f"step must be one of {list(STEPS)}, got {step!r}")
        self.study = study
        self.step = step
        self.figures_dir = None if figures_dir is None else Path(figures_dir)
        self.tables_dir = None if tables_dir is None else Path(tables_dir)
        self.status_dir = None if status_dir is None else Path(status_dir)
        self.display = display
        self.tx = Text(study.settings.language)
        self.sections: list[Section] = []
        self._handler = None
        if self.status_dir is not None:
            # the report log (failed sections' tracebacks, withheld models) goes next to the statuses
            self._handler = logging.FileHandler(self.status_dir / f"step_{step}.log", encoding="utf-8")
            self._handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
            log.addHandler(self._handler)
            log.setLevel(logging.INFO)
        self._write_status()

    # -- running -----------------------------------------------------------------------------------
    def run(self, key: str) -> Section:
        """Run section ``key`` of this step: its output, or a box saying why it did not run."""
        title, fn = SECTIONS[(self.step, key)]
        title = self.tx(title)
        previous = get_language()
        set_language(self.tx.lang)  # the library's figure labels and summaries in the report's language
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fn(self.study)
                sec = Section(self.step, key, title, "ran", output=out, lang=self.tx.lang)
            except NotApplicable as exc:
                sec = Section(self.step, key, title, "skipped", reason=exc.reason, needs=exc.needs,
                              lang=self.tx.lang)
            except Exception as exc:  # a failure of one section never stops the report
                log.error("section %s/%s failed:\n%s", self.step, key, traceback.format_exc())
                sec = Section(self.step, key, title, "failed", error=_one_line(exc), lang=self.tx.lang)
            finally:
                set_language(previous)
        if sec.output is not None:
            out = sec.output
            out.findings = [_sentence(f) for f in out.findings]
            out.headline = _sentence(out.headline)
            notes, failed = report_notes(caught, self.step, key, self.tx)
            if failed:
                sec = Section(self.step, key, title, "skipped", reason=failed, lang=self.tx.lang,
                              needs=self.tx("more sites or periods, so that the model can be estimated."))
            else:
                sec.output.notes.extend(notes)
        if sec.output is not None:
            try:
                self._save(sec.output)
            except Exception as exc:
                log.error("saving section %s/%s failed:\n%s", self.step, key, traceback.format_exc())
                sec = Section(self.step, key, title, "failed", error=_one_line(exc), lang=self.tx.lang)
        self.sections.append(sec)
        self._write_status()
        if self.display:
            self._display(sec)
        self._close_figures(sec)
        return sec

    def _save(self, out: SectionOutput) -> None:
        from ..reporting import save_figure, save_table

        threshold = self.study.settings.small_cell_threshold
        for t in out.tables:
            save_table(t.data, t.name, self.tables_dir, counts=_people_counts(t), values=t.values,
                       threshold=threshold, by=t.by)
        for f in out.figures:
            save_figure(f.figure, f.name, self.figures_dir)

    @staticmethod
    def _close_figures(sec: Section) -> None:
        if sec.output is None:
            return
        import matplotlib.pyplot as plt

        for f in sec.output.figures:
            plt.close(f.figure)

    # -- display -----------------------------------------------------------------------------------
    def _display(self, sec: Section) -> None:
        from IPython.display import HTML, display

        if sec.status != "ran":
            display(_Html(sec._box_html(), f"{sec.status.upper()}: {sec.title}. {sec.reason or sec.error}"
                          + (f" {self.tx('What would allow it:')} {sec.needs}" if sec.needs else "")))
            return
        out = sec.output
        if out.findings:
            display(_Html(sec._findings_html(), sec._findings_text()))
        threshold = self.study.settings.small_cell_threshold
        for t in out.tables:
            if not t.show:
                continue
            table = t.published(threshold)
            if t.caption:
                display(HTML(f'<p class="sa-caption">{html.escape(t.caption)}</p>'))
            display(table.round(t.digits) if len(table) else table)
        for f in out.figures:
            display(f.figure)

    def intro(self) -> None:
        """Display what the report must say about the data and the derived settings."""
        from IPython.display import display

        st = self.study
        lines = [self.tx("Study: {name}.", name=st.name), *st.statements()]
        body = "".join(f"<li>{html.escape(s)}</li>" for s in lines)
        head = html.escape(self.tx("About the data"))
        display(_Html(f'<div class="sa-box sa-about"><strong>{head}</strong><ul>{body}</ul></div>',
                      "\n".join(lines)))

    def close(self) -> pd.DataFrame:
        """Record the statuses and display the summary of this step's sections."""
        self._write_status(final=True)
        if self._handler is not None:
            log.removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        table = self.summary()
        if self.display:
            from IPython.display import display

            tx = self.tx
            rows = "".join(
                f"<tr><td>{html.escape(s.title)}</td><td class='sa-{s.status}'>{html.escape(status_word(tx, s.status))}"
                f"</td><td>{html.escape(_sentence(s.reason) or s.error)}</td></tr>" for s in self.sections)
            head = "".join(f"<th>{html.escape(tx(h))}</th>" for h in (N_("Section"), N_("Status"), N_("Why")))
            display(_Html(f'<table class="sa-status"><tr>{head}</tr>{rows}</table>',
                          table.to_string(index=False)))
        return table

    def summary(self) -> pd.DataFrame:
        """One row per section run so far: title, status, reason or error."""
        return pd.DataFrame([{"section": s.title, "status": s.status, "why": s.reason or s.error}
                             for s in self.sections], columns=["section", "status", "why"])

    def _write_status(self, final: bool = False) -> None:
        if self.status_dir is None:
            return
        from ..data.io import atomic_write_text

        payload = {"step": self.step, "complete": final, "sections": [s.record() for s in self.sections]}
        atomic_write_text(self.status_dir / f"step_{self.step}.json", json.dumps(payload, indent=1))


class _Html:
    """Display object with an HTML form (reports) and a plain-text form (terminal, nbval)."""

    def __init__(self, html_text: str, plain: str) -> None:
        self._html = html_text
        self._plain = plain

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._plain

