"""HTML of the feedback cards: one printable page per site or establishment, and an index.

Each page is self-contained (inline CSS and SVG, no script, no external file) so that it can be
e-mailed or printed on one or two A4 pages. The small charts are drawn as SVG here rather than
with matplotlib: a card holds a dozen of them and a study writes hundreds of cards. Every text
comes from the message catalogue in the card's language or from the card's own numbers
(:mod:`scaleup_analysis.feedback.cards`); text from the data is HTML-escaped.
"""

from __future__ import annotations

import html
import math

import numpy as np

from .._style import BETTER, NEUTRAL, PALETTE, WORSE
from ..i18n import N_
from ..narrative import PERIOD_WORDS, Text
from .cards import MIN_OTHER_UNITS, Card, IndicatorLine

__all__ = ["card_html", "index_html", "CARD_CSS"]

CARD_CSS = """
body{font-family:"Source Sans Pro","Helvetica Neue",Arial,sans-serif;color:#1d1d1d;max-width:52em;margin:1.5em auto;
 padding:0 1.2em;line-height:1.4;font-size:15px}
h1{font-size:1.45em;margin:.1em 0}.fb-sub{color:#555;margin:0 0 .6em 0}
h2{font-size:1.1em;border-bottom:1px solid #ccc;padding-bottom:.1em;margin-top:1.2em}
.fb-sim{border-left:4px solid #b58900;background:#fdf6e3;padding:.3em .8em;font-size:.9em}
.fb-box{display:flex;gap:1.2em;flex-wrap:wrap}.fb-box>div{flex:1 1 20em}
.fb-good{border-left:4px solid #0072B2;background:#eef4fa;padding:.3em .8em}
.fb-bad{border-left:4px solid #D55E00;background:#fbefe7;padding:.3em .8em}
.fb-good li,.fb-bad li{margin:.15em 0}
table.fb-ind{border-collapse:collapse;width:100%;font-size:.92em}
table.fb-ind th{text-align:left;border-bottom:1px solid #999;padding:.25em .4em;font-weight:600}
table.fb-ind td{border-bottom:1px solid #e3e3e3;padding:.3em .4em;vertical-align:middle}
td.fb-v{font-weight:600;white-space:nowrap}.fb-better{color:#0072B2}.fb-worse{color:#D55E00}.fb-same{color:#444}
.fb-note{font-size:.82em;color:#555}
table.fb-ad{border-collapse:collapse;font-size:.88em}table.fb-ad td,table.fb-ad th{padding:.15em .5em;text-align:left}
footer{margin-top:1.5em;font-size:.78em;color:#666;border-top:1px solid #ddd;padding-top:.4em}
@media print{@page{size:A4;margin:12mm 12mm}body{max-width:none;margin:0;font-size:10pt}
 tr{break-inside:avoid}h2{break-after:avoid}a{color:inherit;text-decoration:none}}
"""

_READING = {"better": N_("Better than expected"), "worse": N_("Worse than expected"),
            "as_expected": N_("Within the expected range")}
_LEVEL_NAME = {"site_id": N_("site"), "establishment_id": N_("establishment")}
_LEVEL_PLURAL = {"site_id": N_("sites"), "establishment_id": N_("establishments")}
_FEEDBACK_TO = {"site_id": N_("Feedback to the site on {innovation}"),
                "establishment_id": N_("Feedback to the establishment on {innovation}")}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt(tx: Text, line: IndicatorLine, value: float | None) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if line.kind == "proportion" and line.unit_label.strip() == "%":
        return tx.pct(value / 100.0, 1)
    return tx.num(value, 1 if abs(value) >= 10 else 2)


# ---------------------------------------------------------------------------------------------
# small SVG charts
# ---------------------------------------------------------------------------------------------
def _funnel_svg(tx: Text, line: IndicatorLine, unit: str, width: int = 210, height: int = 92) -> str:
    """The funnel of the indicator: the other units as grey dots, this unit's dot in colour."""
    fun = line.funnel
    if fun is None:
        return ""
    d = fun.to_frame()
    rho = d[fun.denominator].to_numpy(float)
    lo, hi = float(rho.min()), float(rho.max())
    # at least a factor 9 on the x-axis, so that the funnel's shape shows when all units are alike in size
    lo, hi = min(lo, hi / 3.0), max(hi, lo * 3.0)
    grid = np.geomspace(max(lo / 1.3, 1.0), hi * 1.1, 60)
    if fun.kind == "proportion":
        grid = np.unique(np.rint(grid))
    lim = fun.funnel_limits(grid)
    ys = np.concatenate([d["value"].to_numpy(float), lim["alert_low"], lim["alert_high"]])
    y0, y1 = float(np.nanmin(ys)), float(np.nanmax(ys))
    pad = 0.08 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad
    x0, x1 = math.log(grid[0]), math.log(grid[-1])
    ml, mr, mt, mb = 4, 4, 4, 4

    def px(x):
        return ml + (math.log(x) - x0) / (x1 - x0 or 1.0) * (width - ml - mr)

    def py(y):
        return mt + (y1 - y) / (y1 - y0) * (height - mt - mb)

    def path(xs, vals):
        pts = [f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, vals) if np.isfinite(v)]
        return " ".join(pts)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
             f' role="img" aria-label="{_e(tx("Funnel plot of all units; this unit in colour"))}">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa"/>']
    for key, colour, dash in (("alarm", PALETTE[3], ""), ("alert", PALETTE[1], ' stroke-dasharray="3,2"')):
        for side in ("low", "high"):
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1"{dash} '
                         f'points="{path(grid, lim[f"{key}_{side}"].to_numpy(float))}"/>')
    ty = py(fun.target * fun.multiplier)
    parts.append(f'<line x1="{ml}" x2="{width - mr}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{NEUTRAL}" stroke-width="1"/>')
    own = None
    for u, x, y in zip(d["unit"], rho, d["value"].to_numpy(float)):
        if str(u) == str(unit):
            own = (x, y)
            continue
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="1.8" fill="#b0b0b0"/>')
    if own is not None and line.value is not None:
        colour = {"better": BETTER, "worse": WORSE}.get(line.reading, "#222222")
        parts.append(f'<circle cx="{px(own[0]):.1f}" cy="{py(own[1]):.1f}" r="4.2" fill="{colour}" '
                     'stroke="white" stroke-width="1"/>')
    parts.append("</svg>")
    return "".join(parts)


def _trend_svg(tx: Text, line: IndicatorLine, width: int = 150, height: int = 40) -> str:
    """The unit's own series: points drawn where no small cell is behind them, and the median."""
    vals = [v for v in line.trend_values if v is not None]
    if len(vals) < 2 or line.trend_centre is None:
        return ""
    y0, y1 = min(vals + [line.trend_centre]), max(vals + [line.trend_centre])
    pad = 0.1 * (y1 - y0 or 1.0)
    y0, y1 = y0 - pad, y1 + pad
    n = len(line.trend_values)

    def px(i):
        return 3 + i / max(n - 1, 1) * (width - 6)

    def py(y):
        return 3 + (y1 - y) / (y1 - y0) * (height - 6)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
             f' role="img" aria-label="{_e(tx("Run chart of this unit over the periods, with its median"))}">']
    cy = py(line.trend_centre)
    parts.append(f'<line x1="2" x2="{width - 2}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{NEUTRAL}" stroke-width="0.8" '
                 'stroke-dasharray="2,2"/>')
    seg = []
    for i, v in enumerate(line.trend_values):
        if v is None:
            if len(seg) > 1:
                parts.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.2" points="{" ".join(seg)}"/>')
            seg = []
            continue
        seg.append(f"{px(i):.1f},{py(v):.1f}")
        parts.append(f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="1.6" fill="{PALETTE[0]}"/>')
    if len(seg) > 1:
        parts.append(f'<polyline fill="none" stroke="{PALETTE[0]}" stroke-width="1.2" points="{" ".join(seg)}"/>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# the sentences
# ---------------------------------------------------------------------------------------------
def _reading_text(tx: Text, line: IndicatorLine, k: int) -> str:
    if line.value is None:
        if line.why_missing == "small_cell":
            return tx("Not shown: fewer than {k} people behind a count", k=tx.int(k))
        return tx("No data in these periods")
    if line.funnel is None:
        return tx("Too few units to compare")
    if line.reading == "as_expected":
        return tx(_READING["as_expected"])
    level = tx.pct(line.funnel.level, 0) if line.signal.endswith("alert") else tx.pct(line.funnel.alarm_level, 1)
    return tx("{reading} (beyond the {level} limits)", reading=tx(_READING[line.reading]), level=level)


def _trend_text(tx: Text, line: IndicatorLine, periods: str) -> str:
    if not line.trend_periods:
        return ""
    if line.trend_shift is not None:
        return tx("Its last {n} values are all {side} its median: a sustained change for the {word}.",
                  n=tx.int(line.trend_run),
                  side=tx("above") if (line.trend_shift == "better") == line.higher_is_better else tx("below"),
                  word=tx("better") if line.trend_shift == "better" else tx("worse"))
    if line.trend_signal:
        return tx("Non-random variation over the {periods} (runs rules), not in the most recent ones.",
                  periods=periods)
    return tx("No sustained change over the {periods} (runs rules).", periods=periods)


def _message_items(tx: Text, card: Card, records: list, k: int, periods: str) -> list[str]:
    out = []
    for kind, line in records:
        if kind == "funnel":
            out.append(tx("{indicator}: {value} — {reading}", indicator=_e(line.label),
                          value=_fmt(tx, line, line.value), reading=_reading_text(tx, line, k)))
        elif kind == "trend":
            out.append(tx("{indicator}: {trend}", indicator=_e(line.label), trend=_trend_text(tx, line, periods)))
        elif kind == "fidelity":
            out.append(tx("Fidelity to the core components: {value} (high: 80 % or more; low: 50 % or less)",
                          value=tx.pct(card.fidelity, 0)))
        elif kind == "adaptation":
            k = int((card.adaptations["fidelity_relation"].astype(str) == "fidelity-inconsistent").sum())
            out.append(tx.n("{n} adaptation altered a core component (fidelity-inconsistent)",
                            "{n} adaptations altered core components (fidelity-inconsistent)", k))
    return out


# ---------------------------------------------------------------------------------------------
# pages
# ---------------------------------------------------------------------------------------------
def card_html(card: Card, *, tx: Text, study_name: str, innovation: str, period_unit: str, simulated: bool,
              threshold: int, footer: str) -> str:
    """The page of one card."""
    span = f"{card.window[0]}–{card.window[-1]}" if len(card.window) > 1 else str(card.window[0])
    one_period_words = tuple(tx(w) for w in PERIOD_WORDS.get(period_unit, PERIOD_WORDS["period"]))
    level = tx(_LEVEL_NAME[card.level])
    head = [f"<h1>{_e(card.title)}</h1>"]
    levels = tx(_LEVEL_PLURAL[card.level])
    sub = [tx(_FEEDBACK_TO[card.level], innovation=_e(innovation))]
    if card.level == "site_id":
        where = [_e(card.region)] + ([_e(card.establishment)] if card.establishment else [])
        sub.append(" · ".join(where))
    else:
        sub.append(_e(card.region) + " · " + tx.n("{n} site", "{n} sites", card.n_sites))
    sub.append(tx("{periods} {span}", periods=one_period_words[1], span=span))
    head.append(f'<p class="fb-sub">{" — ".join(sub)}<br>{_e(study_name)}</p>')
    if simulated:
        head.append('<p class="fb-sim">' + tx("Simulated data: this card illustrates the method and says nothing "
                                              "about a real site.") + "</p>")
    good = _message_items(tx, card, card.improved, threshold, one_period_words[1])
    bad = _message_items(tx, card, card.attention, threshold, one_period_words[1])
    box = ['<div class="fb-box">',
           '<div class="fb-good"><strong>' + tx("What went well") + "</strong><ul>"
           + ("".join(f"<li>{s}</li>" for s in good) or f"<li>{tx('No indicator stands out for the better.')}</li>")
           + "</ul></div>",
           '<div class="fb-bad"><strong>' + tx("What needs attention") + "</strong><ul>"
           + ("".join(f"<li>{s}</li>" for s in bad) or f"<li>{tx('No indicator stands out for the worse.')}</li>")
           + "</ul></div></div>"]
    rows = []
    for line in card.indicators:
        cls = {"better": "fb-better", "worse": "fb-worse"}.get(line.reading, "fb-same")
        comp = "".join(f"<br><span class='fb-note'>{_e(label)}{tx.colon()} {_fmt(tx, line, v)}</span>"
                       for label, v in line.comparisons)
        unit = "" if line.unit_label.strip() in ("", "%") else " · " + tx("unit: {unit}", unit=_e(line.unit_label))
        n = "" if line.n is None else f"<br><span class='fb-note'>{tx('n = {n}', n=tx.int(line.n))}</span>"
        rows.append(
            f"<tr><td>{_e(line.label)}<br><span class='fb-note'>"
            f"{tx('higher is better') if line.higher_is_better else tx('lower is better')}{unit}</span></td>"
            f"<td class='fb-v'>{_fmt(tx, line, line.value)}{n}</td>"
            f"<td>{_fmt(tx, line, line.target)}{comp}</td>"
            f"<td class='{cls}'>{_reading_text(tx, line, threshold)}</td>"
            f"<td>{_funnel_svg(tx, line, card.unit)}</td>"
            f"<td>{_trend_svg(tx, line)}<br><span class='fb-note'>{_trend_text(tx, line, one_period_words[1])}</span></td></tr>")
    table = ["<h2>" + tx("Your indicators compared with all {levels}", levels=levels) + "</h2>",
             "<table class='fb-ind'><tr>"
             + "".join(f"<th>{h}</th>" for h in (tx("Indicator"), tx("You"), tx("All {levels}", levels=levels), tx("Position"), tx("Funnel plot"),
                 tx("Your trend")))
             + "</tr>" + "".join(rows) + "</table>",
             "<p class='fb-note'>" + tx(
                 "Funnel plot: each dot is a {level} (the others are not named); your {level} is the large dot, "
                 "blue when better, orange when worse than expected. The lines are the 95 % (dashed) and 99.8 % "
                 "limits around the value of all {levels}, widened for the usual variation between them "
                 "(Spiegelhalter 2005). About 1 {level} in 20 lies beyond the 95 % limits by chance alone: "
                 "such a position is a prompt to look, not a verdict; beyond 99.8 % it is rarely chance. Trend: "
                 "your value in each {unit}, with its median (dotted); a point based on fewer than {k} people is not "
                 "drawn.", level=level, levels=levels, unit=one_period_words[0],
                 k=tx.int(threshold)) + "</p>"]
    impl = ["<h2>" + tx("Implementation") + "</h2><ul>"]
    if card.fidelity is not None:
        impl.append("<li>" + tx("Fidelity to the core components: {value} (median of the {levels}: {median})",
                                value=tx.pct(card.fidelity, 0), levels=levels,
                                median=tx.pct(card.fidelity_median, 0) if card.fidelity_median is not None else "–")
                    + "</li>")
    else:
        impl.append("<li>" + tx("Fidelity: no rated sessions in these periods.") + "</li>")
    if card.reach is not None:
        impl.append("<li>" + tx("Reach (people reached / eligible): {value} (median: {median})",
                                value=tx.pct(card.reach, 0),
                                median=tx.pct(card.reach_median, 0) if card.reach_median is not None else "–") + "</li>")
    elif card.reach_suppressed:
        impl.append("<li>" + tx("Reach: not shown (fewer than {k} people behind a count).", k=tx.int(threshold))
                    + "</li>")
    impl.append("</ul>")
    ad = card.adaptations
    impl.append("<h2>" + tx("Your documented adaptations") + "</h2>")
    if len(ad):
        from ..adaptation.frame import frame_scheme

        labels = {(r.field, r.code): r.label for r in frame_scheme("FRAME").itertuples(index=False)}

        def lab(field, code):
            if code is None or (isinstance(code, float) and not np.isfinite(code)):
                return "–"
            return _e(tx(labels[(field, str(code))])) if (field, str(code)) in labels else _e(code)

        impl.append("<table class='fb-ad'><tr>" + "".join(f"<th>{h}</th>" for h in (
            one_period_words[0].capitalize(), tx("What was modified"), tx("Nature"), tx("Relation to fidelity"),
            tx("Goal"))) + "</tr>")
        for r in ad.itertuples(index=False):
            impl.append(f"<tr><td>{_e(r.period)}</td><td>{lab('what_modified', r.what_modified)}</td>"
                        f"<td>{lab('nature', getattr(r, 'nature', None))}</td>"
                        f"<td>{lab('fidelity_relation', r.fidelity_relation)}</td>"
                        f"<td>{lab('goal', getattr(r, 'goal', None))}</td></tr>")
        impl.append("</table>")
    else:
        impl.append("<p>" + tx("No adaptation documented.") + "</p>")
    notes = ["<p class='fb-note'>" + tx(
        "Privacy: no count of fewer than {k} people is shown; other {levels} are never named; the value of "
        "your region or establishment is shown only when it pools at least {m} other sites.", k=tx.int(threshold),
        levels=levels, m=tx.int(MIN_OTHER_UNITS)) + "</p>"]
    title = f"{_e(card.title)} — {tx('Feedback card')}"
    return (f"<!DOCTYPE html><html lang='{tx.lang}'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{CARD_CSS}</style></head><body>" + "".join(head + box + table + impl + notes) + footer
            + "</body></html>")


def index_html(cards: list[Card], paths: dict, *, tx: Text, study_name: str, simulated: bool, footer: str) -> str:
    """The index of the cards (for the team that sends them; each card names only its own unit)."""
    parts = [f"<h1>{tx('Feedback cards')}</h1><p class='fb-sub'>{_e(study_name)}</p>"]
    if simulated:
        parts.append('<p class="fb-sim">' + tx("Simulated data: these cards illustrate the method and say nothing "
                                              "about real sites.") + "</p>")
    for level, heading in (("site_id", tx("Sites")), ("establishment_id", tx("Establishments"))):
        these = [c for c in cards if c.level == level]
        if not these:
            continue
        parts.append(f"<h2>{heading} ({tx.int(len(these))})</h2><ul>")
        for c in these:
            flags = []
            k_good, k_bad = len(c.improved), len(c.attention)
            if k_good:
                flags.append(tx.n("{n} point went well", "{n} points went well", k_good))
            if k_bad:
                flags.append(tx.n("{n} point needs attention", "{n} points need attention", k_bad))
            parts.append(f"<li><a href='{_e(paths[(c.level, c.unit)])}'>{_e(c.title)}</a>"
                         + (f" <span class='fb-note'>— {_e(c.region)}; {'; '.join(flags)}</span>" if flags
                            else f" <span class='fb-note'>— {_e(c.region)}</span>") + "</li>")
        parts.append("</ul>")
    return (f"<!DOCTYPE html><html lang='{tx.lang}'><head><meta charset='utf-8'><title>{tx('Feedback cards')}</title>"
            f"<style>{CARD_CSS}</style></head><body>" + "".join(parts) + footer + "</body></html>")
