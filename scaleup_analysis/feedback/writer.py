"""Write the feedback cards of a study: ``scaleup feedback --data DIR --out OUT``."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .._checks import checked_inputs
from .._atomic import FolderLock, clear_leftovers, publish_folder, staging_folder
from .._display import Displayed
from ..narrative import Text
from ..reporting.outputs import provenance
from ..reporting.runner import check_out_dir, inputs_provenance
from ..study import load_study
from .cards import build_cards
from .html import card_html, index_html

__all__ = ["write_feedback", "FeedbackResult"]


@dataclass(frozen=True, repr=False)
class FeedbackResult(Displayed):
    """What :func:`write_feedback` wrote.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    index : pathlib.Path
        Its ``index.html``.
    n_sites, n_establishments : int
        Cards written per level.
    periods : tuple of int
        The feedback window.
    seconds : float
        Time taken to compute and write the cards.
    language : str
    """

    out_dir: Path
    index: Path
    n_sites: int
    n_establishments: int
    periods: tuple
    seconds: float
    language: str

    def _repr_fields(self) -> dict:
        return {"out_dir": str(self.out_dir), "n_sites": self.n_sites, "n_establishments": self.n_establishments,
                "periods": list(self.periods), "language": self.language}

    def _summary(self, tx) -> str:
        return tx("Feedback cards written to {out}: {sites} and {establishments}, periods {first} to {last}.",
                  out=str(self.out_dir), sites=tx.n("{n} site", "{n} sites", self.n_sites),
                  establishments=tx.n("{n} establishment", "{n} establishments", self.n_establishments),
                  first=self.periods[0], last=self.periods[-1])


def _file_name(unit: str, taken: set[str]) -> str:
    """A safe, stable file name for a unit identifier (any text from the data)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(unit)).strip("_")[:60] or "unit"
    if stem != str(unit) or stem.lower() in taken:
        stem = f"{stem}-{hashlib.sha256(str(unit).encode('utf-8')).hexdigest()[:8]}"
    taken.add(stem.lower())
    return stem + ".html"


@checked_inputs
def write_feedback(
    data_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "feedback",
    *,
    periods=None,
    seed: int | None = None,
    language: str | None = None,
) -> FeedbackResult:
    """Write one printable feedback card per site (and per establishment) and an index.

    Each card gives a site's team its indicators against all sites (a funnel plot and a
    generated reading: better, worse or as expected), its own trend with the runs rules, its
    fidelity and reach against the median site, its documented adaptations, and what went well
    and what needs attention -- computed from the study's tables for that unit only (see
    :mod:`scaleup_analysis.feedback.cards` for the rules, privacy included: no count below the
    study's small-cell threshold, no other site named).

    Parameters
    ----------
    data_dir : path, optional
        The study folder (only read); None = the embedded default study.
    out_dir : path
        Output folder (never inside ``data_dir``), replaced as a whole: ``index.html``,
        ``sites/*.html``, ``establishments/*.html``, ``provenance.json``.
    periods : sequence of int, optional
        The feedback window (default: ``[periods] followup`` of the study).
    seed : int, optional
        Overrides the study's seed (recorded in the provenance; the cards draw nothing at random).
    language : {"fr", "en"}, optional
        Language of the cards (default: the study's).

    Returns
    -------
    FeedbackResult
    """
    start = time.perf_counter()
    data = None if data_dir is None else Path(data_dir)
    out = Path(out_dir).resolve()
    check_out_dir(out, data)
    study = load_study(data, seed=seed, language=language)
    st = study.settings
    tx = Text(st.language)
    cards = build_cards(study, periods=periods)
    prov = provenance(inputs_provenance(study), st.seed, data_label=(
        "embedded default study" if data is None else data.name))
    footer = ("<footer>" + html.escape(tx(
        "Provenance: scaleup_analysis {version}, commit {commit}; input sha256 in provenance.json",
        version=prov["package_version"], commit=prov["git_commit"])) + "</footer>")
    with FolderLock(out, "feedback run"):
        clear_leftovers(out)
        staging = staging_folder(out)
        try:
            paths, taken = {}, {"sites": set(), "establishments": set()}
            for card in cards:
                folder = "sites" if card.level == "site_id" else "establishments"
                paths[(card.level, card.unit)] = f"{folder}/{_file_name(card.unit, taken[folder])}"
            for card in cards:
                page = card_html(card, tx=tx, study_name=st.name, innovation=tx(st.innovation),
                                 period_unit=st.period_unit, simulated=st.simulated,
                                 threshold=st.small_cell_threshold, footer=footer)
                target = staging / paths[(card.level, card.unit)]
                target.parent.mkdir(exist_ok=True)
                target.write_text(page, encoding="utf-8")
            (staging / "index.html").write_text(
                index_html(cards, paths, tx=tx, study_name=st.name, simulated=st.simulated, footer=footer),
                encoding="utf-8")
            (staging / "provenance.json").write_text(json.dumps(prov, indent=2, ensure_ascii=False), encoding="utf-8")
            publish_folder(staging, out, keep=lambda p: p.name.startswith(".") and p.is_file())
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    window = tuple(cards[0].window) if cards else ()
    return FeedbackResult(out_dir=out, index=out / "index.html",
                          n_sites=sum(c.level == "site_id" for c in cards),
                          n_establishments=sum(c.level == "establishment_id" for c in cards),
                          periods=window, seconds=time.perf_counter() - start, language=st.language)
