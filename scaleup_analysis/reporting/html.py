"""HTML of the reports: the index page with the run summary, the decision brief of each step, styles.

Every text of these pages comes from the message catalogues (:mod:`scaleup_analysis.i18n`) in the
report's language, or from the run's own records (``sections.json``): nothing here states a finding.
"""

from __future__ import annotations

import html
import json
import re

from ..i18n import N_
from ..narrative import Text
from ..study import STEPS, Study

__all__ = ["CSS", "index_html", "brief_html", "partial_banner", "step_title"]

#: Style of the boxes the sections display (about the data, findings, not run, failed, status table).
CSS = """
.sa-box{border-left:4px solid #888;background:#f6f6f6;padding:.6em 1em;margin:.8em 0}
.sa-about{border-color:#3b6ea5;background:#eef3f9}
.sa-skipped{border-color:#b58900;background:#fdf6e3}
.sa-failed{border-color:#c0392b;background:#fbeaea}
.sa-findings{border-left:4px solid #2e7d32;background:#eef6ee;padding:.4em 1em;margin:.8em 0}
.sa-note,.sa-threshold{font-size:.9em;color:#444;margin:.2em 0}
.sa-partial{border:2px solid #c0392b;background:#fbeaea;padding:.8em 1em;margin:1em 0;font-weight:bold}
table.sa-status td,table.sa-status th{padding:.2em .6em;text-align:left;vertical-align:top}
.sa-ran-cell{color:#2e7d32}.sa-skipped-cell{color:#8a6d00}.sa-failed-cell{color:#c0392b}
"""

#: Style of the decision briefs: a readable page on screen, an A4 / Letter page on paper.
BRIEF_CSS = """
body{font-family:"Source Sans Pro","Helvetica Neue",Arial,sans-serif;color:#1d1d1d;max-width:50em;margin:2em auto;
 padding:0 1.2em;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.1em}.sa-study{color:#555;margin-top:0}
h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.15em;margin-top:1.4em}
.sa-question{font-size:1.05em;font-style:italic}
.sa-answer p{font-size:1.05em;margin:.4em 0}
.sa-keyfigs{display:flex;flex-wrap:wrap;gap:.8em;margin:.6em 0}
.sa-keyfig{border:1px solid #cfd8dc;border-radius:4px;padding:.5em .8em;min-width:11em;flex:1 1 11em;
 break-inside:avoid}
.sa-keyfig .v{font-size:1.25em;font-weight:600;display:block}.sa-keyfig .l{font-size:.85em;color:#444}
figure{margin:1em 0;break-inside:avoid}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.sa-sure li,.sa-notdone li{margin:.25em 0}
.sa-simulated{border-left:4px solid #b58900;background:#fdf6e3;padding:.4em .8em}
footer{margin-top:2em;font-size:.8em;color:#666;border-top:1px solid #ddd;padding-top:.5em}
@media print{@page{size:A4;margin:16mm 14mm}body{max-width:none;margin:0;font-size:10.5pt}
 a{color:inherit;text-decoration:none}.sa-keyfig{border-color:#999}h2{break-after:avoid}}
"""

#: The question each step answers, for the decision brief.
STEP_QUESTIONS = {
    1: N_("Is there solid evidence that the innovation works, and what effect should a new site expect?"),
    2: N_("Is the innovation ready to be scaled up, and do the people who rated it agree?"),
    3: N_("What can the rollout, as it was organised, tell us, and how could the next one be organised?"),
    4: N_("Are the core components delivered as intended, and did local adaptations help or harm?"),
    5: N_("Did the innovation keep its effect at scale, and did any region or group suffer from it?"),
}

#: Step titles (also the headings of the index).
STEP_TITLES = {
    1: N_("Evidence of effectiveness"),
    2: N_("Scale-up potential"),
    3: N_("Scale-up plan and rollout"),
    4: N_("Implementation: fidelity and adaptation"),
    5: N_("Monitoring of impacts"),
}
if set(STEP_TITLES) != set(STEPS):  # a step added to study.STEPS needs its title here
    raise ImportError(f"reporting.html: STEP_TITLES covers steps {sorted(STEP_TITLES)}, study.STEPS is {sorted(STEPS)}")


def step_title(tx: Text, step: int) -> str:
    """The title of a step in the report's language."""
    title = STEP_TITLES[step]
    return tx(title)


def _status(tx: Text, status: str) -> str:
    from ..narrative import status_word

    return status_word(tx, status)


def partial_banner(page: str, why: str, tx: Text | None = None) -> str:
    """Insert a 'this report is partial' banner at the top of an exported notebook page."""
    tx = tx or Text("en")
    text = tx("This report is partial: {why}. The sections after that point did not run; see index.html for "
              "the run summary.", why=why)
    banner = f'<div class="sa-partial">{html.escape(text)}</div>'
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, page, count=1)


def _status_rows(tx: Text, nb_records: list[dict], sections: list[dict]) -> str:
    by_step: dict[int, list[dict]] = {}
    for s in sections:
        by_step.setdefault(s["step"], []).append(s)
    rows = []
    for nb in nb_records:
        step = nb["step"]
        why = html.escape(nb.get("why") or "")
        head = tx("Step {step} — {title}: {status}", step=step, title=step_title(tx, step),
                  status=_status(tx, nb["status"]))
        rows.append(f'<tr><th colspan="3">{html.escape(head)}{" (" + why + ")" if why else ""}</th></tr>')
        for s in by_step.get(step, []):
            why = s["reason"] or s["error"]
            why = why[:1].upper() + why[1:]
            if s["status"] == "skipped" and s.get("needs"):
                why += " " + tx("What would allow it:") + " " + s["needs"]
            rows.append(f'<tr><td>{html.escape(s["title"])}</td><td class="sa-{s["status"]}-cell">'
                        f'{html.escape(_status(tx, s["status"]))}</td><td>{html.escape(why)}</td></tr>')
    return "\n".join(rows)


def _by_stem(files: list[str]) -> dict[str, list[str]]:
    """``{"01_forest": ["01_forest.png", "01_forest.svg"]}`` in the order of ``files``."""
    out: dict[str, list[str]] = {}
    for f in files:
        out.setdefault(f.rsplit(".", 1)[0], []).append(f)
    return out


def _figure_item(stem: str, files: list[str]) -> str:
    """One figure of the index: its name, then a link per format (PNG · SVG)."""
    links = " · ".join(f'<a href="figures/{html.escape(f)}">{html.escape(f.rsplit(".", 1)[-1].upper())}</a>'
                       for f in files)
    return f"<li>{html.escape(stem)} — {links}</li>"


def index_html(study: Study, entries: list[tuple], nb_records: list[dict], sections: list[dict],
               figures: list[str], tables: list[str], prov: dict) -> str:
    """The index page: the study, the run summary, links to reports, figures, tables, provenance."""
    tx = Text(study.settings.language)
    failed = [s for s in (*nb_records, *sections) if s["status"] == "failed"]
    counts = {k: sum(1 for s in sections if s["status"] == k) for k in ("ran", "skipped", "failed")}
    partial = ""
    if failed:
        partial = '<div class="sa-partial">' + html.escape(tx.n(
            "This run is partial: {n} part failed (see the run summary).",
            "This run is partial: {n} parts failed (see the run summary).", len(failed))) + "</div>"
    about = "".join(f"<li>{html.escape(s)}</li>" for s in study.statements())
    reports = "\n".join(
        "<li>" + html.escape(title) + " — "
        f'<a href="{html.escape(brief)}">{html.escape(tx("decision brief"))}</a> · '
        f'<a href="{html.escape(report)}">{html.escape(tx("full report"))}</a> · '
        f'<a href="{html.escape(full)}">{html.escape(tx("notebook with code"))}</a></li>'
        for step, title, full, report, brief in entries
    )
    figs = "\n".join(_figure_item(stem, formats) for stem, formats in _by_stem(figures).items())
    tabs = "\n".join(f'<li><a href="tables/{html.escape(t)}">{html.escape(t)}</a></li>' for t in tables)
    prov_rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td><pre>{html.escape(json.dumps(v, indent=1, ensure_ascii=False))}"
        f"</pre></td></tr>" for k, v in prov.items()
    )
    name = html.escape(study.name)
    intro = html.escape(tx("Evaluation of the scale-up of {innovation}, in five steps: evidence of effectiveness, "
                           "scale-up potential, rollout plan, implementation (fidelity and adaptation), monitoring of "
                           "impacts.", innovation=study.settings.innovation))
    summary = html.escape(tx("{ran} sections ran, {skipped} were not run (the data do not allow them; the reason is "
                             "given), {failed} failed.", ran=counts["ran"], skipped=counts["skipped"],
                             failed=counts["failed"]))
    h = {k: html.escape(tx(k)) for k in (N_("About the data"), N_("Run summary"), N_("Reports"), N_("Figures"),
                                         N_("Key tables (CSV)"), N_("Provenance"), N_("scale-up evaluation"))}
    return f"""<!DOCTYPE html>
<html lang="{html.escape(study.settings.language)}"><head><meta charset="utf-8"><title>{name} — {h["scale-up evaluation"]}</title>
<style>body{{font-family:sans-serif;max-width:62em;margin:2em auto;padding:0 1em}}th{{text-align:left;vertical-align:top;padding-right:1em}}pre{{margin:0;white-space:pre-wrap}}{CSS}</style>
</head><body>
<h1>{name}</h1>
<p>{intro}</p>
{partial}
<div class="sa-box sa-about"><strong>{h["About the data"]}</strong><ul>{about}</ul></div>
<h2>{h["Run summary"]}</h2>
<p>{summary}</p>
<table class="sa-status">
{_status_rows(tx, nb_records, sections)}
</table>
<h2>{h["Reports"]}</h2><ul>
{reports}
</ul>
<h2>{h["Figures"]}</h2><ul>
{figs}
</ul>
<h2>{h["Key tables (CSV)"]}</h2><ul>
{tabs}
</ul>
<h2>{h["Provenance"]}</h2><table>
{prov_rows}
</table>
</body></html>
"""


#: Largest numbers of headlines, key figures and figures a brief shows.
MAX_HEADLINES, MAX_KEY_FIGURES, MAX_FIGURES = 3, 5, 2


def brief_html(study: Study, step: int, sections: list[dict], notebook: dict, figures: set[str],
               report_name: str, footer: str) -> str:
    """The decision brief of one step: question, answer, key figures, figures, certainty, gaps.

    Built from the records the step's sections left in ``sections.json`` (never from notebook
    output): every sentence is one the run generated, every number is formatted for people.
    """
    tx = Text(study.settings.language)
    ran = [s for s in sections if s["status"] == "ran"]
    headlines = [s["headline"] for s in ran if s.get("headline")][:MAX_HEADLINES]
    if not headlines:
        headlines = [s["findings"][0] for s in ran if s.get("findings")][:1]
    keyfigs = [kf for s in ran for kf in s.get("key_figures", [])][:MAX_KEY_FIGURES]
    shown = [f for s in ran for f in s.get("brief_figures", []) if f"{f}.png" in figures][:MAX_FIGURES]
    sure = [c for s in ran for c in s.get("certainty", [])]
    gaps = [s for s in sections if s["status"] in ("skipped", "failed")]
    e = html.escape
    title = step_title(tx, step)
    parts = [f'<h1>{e(title)}</h1><p class="sa-study">{e(study.name)}</p>']
    if study.settings.simulated:
        parts.append(f'<p class="sa-simulated">{e(tx("These data are simulated: the brief illustrates the methods and says nothing about a real programme."))}</p>')
    if notebook.get("status") == "failed":
        parts.append('<div class="sa-partial">' + e(tx("This brief is partial: the step stopped before its end "
                                                       "({why}).", why=notebook.get("why", ""))) + "</div>")
    question = STEP_QUESTIONS[step]
    parts.append(f'<h2>{e(tx("The question"))}</h2><p class="sa-question">{e(tx(question))}</p>')
    parts.append(f'<h2>{e(tx("The answer"))}</h2><div class="sa-answer">')
    if headlines:
        parts.extend(f"<p>{e(h)}</p>" for h in headlines)
    else:
        parts.append(f"<p>{e(tx('The data of this study do not allow an answer to this question (see below).'))}</p>")
    parts.append("</div>")
    if keyfigs:
        cards = "".join(f'<div class="sa-keyfig"><span class="v">{e(v)}</span><span class="l">{e(k)}</span></div>'
                        for k, v in keyfigs)
        parts.append(f'<h2>{e(tx("Key figures"))}</h2><div class="sa-keyfigs">{cards}</div>')
    for f in shown:
        sec = next(s for s in ran if f in s.get("brief_figures", []))
        parts.append(f'<figure><img src="figures/{e(f)}.png" alt="{e(sec["title"])}">'
                     f'<figcaption>{e(sec["title"])}</figcaption></figure>')
    if sure:
        parts.append(f'<h2>{e(tx("How sure are we?"))}</h2><ul class="sa-sure">'
                     + "".join(f"<li>{e(c)}</li>" for c in sure) + "</ul>")
    if gaps:
        items = []
        for s in gaps:
            why = s["reason"] if s["status"] == "skipped" else tx("the analysis failed; see the run log.")
            items.append(f"<li><strong>{e(s['title'])}</strong> — {e(why[:1].upper() + why[1:])}</li>")
        parts.append(f'<h2>{e(tx("What was not analysed, and why"))}</h2><ul class="sa-notdone">'
                     + "".join(items) + "</ul>")
    parts.append(f'<p><a href="{e(report_name)}">{e(tx("Full report of this step, with every result"))}</a></p>')
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="{e(study.settings.language)}"><head><meta charset="utf-8"><title>{e(title)} — {e(study.name)}</title>
<style>{BRIEF_CSS}</style></head><body>
{body}
<footer>{footer}</footer>
</body></html>
"""
