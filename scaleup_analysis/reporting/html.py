"""HTML of the reports: the style of the section boxes, the index page with the run summary."""

from __future__ import annotations

import html
import json
import re

from ..study import STEPS, Study

__all__ = ["CSS", "index_html", "partial_banner"]

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
.sa-ran{color:#2e7d32}.sa-skipped-cell{color:#8a6d00}.sa-failed-cell{color:#c0392b}
"""


def partial_banner(page: str, why: str) -> str:
    """Insert a 'this report is partial' banner at the top of an exported notebook page."""
    banner = (f'<div class="sa-partial">This report is partial: {html.escape(why)}. The sections after '
              "that point did not run; see index.html for the run summary.</div>")
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner, page, count=1)


def _status_rows(nb_records: list[dict], sections: list[dict]) -> str:
    by_step: dict[int, list[dict]] = {}
    for s in sections:
        by_step.setdefault(s["step"], []).append(s)
    rows = []
    for nb in nb_records:
        step = nb["step"]
        why = html.escape(nb.get("why") or "")
        rows.append(f'<tr><th colspan="3">Step {step} — {html.escape(STEPS[step])}: {html.escape(nb["status"])}'
                    f'{" (" + why + ")" if why else ""}</th></tr>')
        for s in by_step.get(step, []):
            why = s["reason"] or s["error"]
            if s["status"] == "skipped" and s.get("needs"):
                why += f" What would allow it: {s['needs']}"
            rows.append(f'<tr><td>{html.escape(s["title"])}</td><td class="sa-{s["status"]}-cell">'
                        f'{html.escape(s["status"])}</td><td>{html.escape(why)}</td></tr>')
    return "\n".join(rows)


def index_html(study: Study, entries: list[tuple], nb_records: list[dict], sections: list[dict],
               figures: list[str], tables: list[str], prov: dict) -> str:
    """The index page: the study, the run summary, links to reports, figures, tables, provenance."""
    failed = [s for s in (*nb_records, *sections) if s["status"] == "failed"]
    counts = {k: sum(1 for s in sections if s["status"] == k) for k in ("ran", "skipped", "failed")}
    partial = ""
    if failed:
        partial = (f'<div class="sa-partial">This run is partial: {len(failed)} part'
                   f'{"s" if len(failed) > 1 else ""} failed (see the run summary).</div>')
    about = "".join(f"<li>{html.escape(s)}</li>" for s in study.statements())
    reports = "\n".join(
        f'<li>Step {step}: <a href="{html.escape(full)}">{html.escape(title)}</a> '
        f'(<a href="{html.escape(summ)}">summary without code</a>)</li>'
        for step, title, full, summ in entries
    )
    figs = "\n".join(f'<li><a href="figures/{html.escape(f)}">{html.escape(f)}</a></li>' for f in figures)
    tabs = "\n".join(f'<li><a href="tables/{html.escape(t)}">{html.escape(t)}</a></li>' for t in tables)
    prov_rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td><pre>{html.escape(json.dumps(v, indent=1, ensure_ascii=False))}"
        f"</pre></td></tr>" for k, v in prov.items()
    )
    name = html.escape(study.name)
    return f"""<!DOCTYPE html>
<html lang="{html.escape(study.settings.language)}"><head><meta charset="utf-8"><title>{name} — scale-up evaluation</title>
<style>body{{font-family:sans-serif;max-width:62em;margin:2em auto;padding:0 1em}}th{{text-align:left;vertical-align:top;padding-right:1em}}pre{{margin:0;white-space:pre-wrap}}{CSS}</style>
</head><body>
<h1>{name}</h1>
<p>Evaluation of the scale-up of {html.escape(study.settings.innovation)}, in five steps: evidence of
effectiveness, scale-up potential, rollout plan, implementation (fidelity and adaptation), monitoring of
impacts.</p>
{partial}
<div class="sa-box sa-about"><strong>About the data</strong><ul>{about}</ul></div>
<h2>Run summary</h2>
<p>{counts['ran']} sections ran, {counts['skipped']} were not run (the data do not allow them; the reason is
given), {counts['failed']} failed.</p>
<table class="sa-status">
{_status_rows(nb_records, sections)}
</table>
<h2>Reports</h2><ul>
{reports}
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
