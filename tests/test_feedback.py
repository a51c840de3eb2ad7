"""Feedback cards (``scaleup feedback`` / ``sa.write_feedback``): one printable page per site and establishment.

Checked on the embedded default study (120 sites, 25 establishments) and on the hand-built small
study (6 sites, 3 establishments, tests/studies/small_study):

* every card says what its own numbers show: the reading of each indicator (better / worse / as
  expected) is the funnel signal of :func:`sa.indicator_funnel` read with the indicator's
  direction, and the planted deterioration of the small study (staff burnout at the Montérégie
  scale-up site) is on that site's card, under "what needs attention";
* privacy: no card shows a count between 1 and the small-cell threshold (a study edited to hold
  small cells), no value computed from one, and no other site's or establishment's identifier;
* data safety: the data folder is not written; an output inside it is refused; hostile identifiers
  (HTML, slashes) are escaped and give safe file names.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.cli import main
from scaleup_analysis.feedback.cards import build_cards

SMALL = Path(__file__).parent / "studies" / "small_study"


def _text(page: str) -> str:
    """The visible text of a page: no tags, no SVG, entities decoded."""
    page = re.sub(r"<svg.*?</svg>", " ", page, flags=re.S)
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_cards(tmp_path_factory):
    out = tmp_path_factory.mktemp("fb") / "feedback"
    res = sa.write_feedback(None, out, language="en")
    return res, out


@pytest.fixture(scope="module")
def small_cards(tmp_path_factory):
    data = tmp_path_factory.mktemp("data") / "small_study"
    shutil.copytree(SMALL, data)
    before = _digest(data)
    out = tmp_path_factory.mktemp("fb") / "feedback"
    res = sa.write_feedback(data, out, language="fr")
    return res, out, data, before


def test_one_card_per_site_and_establishment_and_an_index(default_cards, small_cards):
    res, out = default_cards
    assert (res.n_sites, res.n_establishments) == (120, 25)
    assert len(list((out / "sites").glob("*.html"))) == 120
    assert len(list((out / "establishments").glob("*.html"))) == 25
    index = (out / "index.html").read_text(encoding="utf-8")
    links = re.findall(r"href='([^']+)'", index)
    assert len(links) == 145 and all((out / link).is_file() for link in links)
    assert res.periods == (13, 14, 15, 16)   # the default study's follow-up periods
    res, out, _, _ = small_cards
    assert (res.n_sites, res.n_establishments) == (6, 3)
    page = (out / "sites" / "EST-GMF-Sherbrooke.html").read_text(encoding="utf-8")
    assert "<html lang='fr'>" in page and "Vos indicateurs comparés" in page


def test_each_reading_is_the_funnel_signal_read_with_the_indicator_direction():
    study = sa.load_study(SMALL)
    cards = build_cards(study)
    checked = 0
    for card in cards:
        for line in card.indicators:
            if line.value is None:
                continue
            f = sa.indicator_funnel(study.tables, indicator=line.code, by=card.level,
                                    periods=card.window).to_frame().set_index("unit")
            signal = f.at[card.unit, "signal"]
            assert line.signal == signal
            higher = study.indicator_direction(line.code) == "higher_is_better"
            expected = ("as_expected" if signal == "within"
                        else "better" if signal.startswith("above") == higher else "worse")
            assert line.reading == expected
            checked += 1
    assert checked >= 20


def test_the_planted_deterioration_is_on_the_site_card(small_cards):
    _, out, _, _ = small_cards
    text = _text((out / "sites" / "MON-Clin-Saint-Hyacinthe.html").read_text(encoding="utf-8"))
    attention = text.split("Ce qui demande de l'attention")[1].split("Vos indicateurs")[0]
    assert "Staff reporting burnout" in attention and "Moins bien que prévu" in attention
    # and the site where nothing stands out says so, rather than inventing a finding
    text = _text((out / "sites" / "EST-GMF-Sherbrooke.html").read_text(encoding="utf-8"))
    assert "Aucun indicateur ne se démarque défavorablement." in text


def test_the_data_folder_is_never_written(small_cards, tmp_path):
    _, _, data, before = small_cards
    assert _digest(data) == before
    assert main(["feedback", "--data", str(data), "--out", str(data / "fb")]) == 2
    assert _digest(data) == before


def test_no_card_names_another_site_or_establishment(default_cards):
    _, out = default_cards
    sites = sorted(p.stem for p in (out / "sites").glob("*.html"))
    est = sa.default_study().tables["establishments"]
    est_ids = set(est["establishment_id"])
    est_names = dict(zip(est["establishment_id"], est["name"]))
    for sid in sites:
        text = _text((out / "sites" / f"{sid}.html").read_text(encoding="utf-8"))
        named = set(re.findall(r"\bS\d{4}\b", text))
        assert named == {sid}, (sid, named - {sid})
        assert not (set(re.findall(r"\bE\d\d[A-E]?\b", text)) & est_ids)
    for path in (out / "establishments").glob("*.html"):
        text = _text(path.read_text(encoding="utf-8"))
        assert not re.findall(r"\bS\d{4}\b", text), path.name
        others = {n for e, n in est_names.items() if e != path.stem and n in text}
        # an establishment's name may contain another's as a prefix only if it is its own
        assert not {n for n in others if n != est_names[path.stem] and n not in est_names[path.stem]}, path.name


def _small_cell_study(tmp_path) -> Path:
    """The small study with small cells at BSL-CLSC-Matane: 3 staff reporting burnout in the window
    (periods 6-8, one per period), 2 patients with controlled HbA1c out of 40 in period 7, and a
    satisfaction mean over 3 patients in period 8."""
    data = tmp_path / "small_cells"
    shutil.copytree(SMALL, data)
    o = pd.read_csv(data / "outcomes.csv", dtype={"site_id": str})
    site = o["site_id"] == "BSL-CLSC-Matane"
    burn = site & (o["indicator_id"] == "BURNOUT") & o["period"].isin([6, 7, 8])
    o.loc[burn, "events"] = [1, 1, 1]
    o.loc[burn, "n"] = [15, 15, 15]
    ctrl = site & (o["indicator_id"] == "DIAB_CTRL") & (o["period"] == 7)
    o.loc[ctrl, ["events", "n"]] = [2, 40]
    sat = site & (o["indicator_id"] == "SATISF") & (o["period"] == 8)
    o.loc[sat, "n"] = 3
    o.to_csv(data / "outcomes.csv", index=False)
    return data


def test_no_card_shows_a_count_below_the_threshold(tmp_path):
    data = _small_cell_study(tmp_path)
    out = tmp_path / "fb"
    sa.write_feedback(data, out, language="en")
    k = sa.load_study(data).settings.small_cell_threshold
    for path in list((out / "sites").glob("*.html")) + list((out / "establishments").glob("*.html")):
        text = _text(path.read_text(encoding="utf-8"))
        for n in re.findall(r"n = ([\d,\s\u202f]+)", text):
            assert int(re.sub(r"\D", "", n)) >= k, (path.name, n)
    card = build_cards(sa.load_study(data))
    matane = next(c for c in card if c.unit == "BSL-CLSC-Matane")
    burn = next(line for line in matane.indicators if line.code == "BURNOUT")
    assert burn.value is None and burn.n is None and burn.why_missing == "small_cell"
    assert all(v is None for p, v in zip(burn.trend_periods, burn.trend_values) if p in (6, 7, 8))
    ctrl = next(line for line in matane.indicators if line.code == "DIAB_CTRL")
    assert ctrl.trend_values[ctrl.trend_periods.index(7)] is None   # 2 out of 40: not drawn
    assert ctrl.trend_values[ctrl.trend_periods.index(6)] is not None
    sat = next(line for line in matane.indicators if line.code == "SATISF")
    assert sat.trend_values[sat.trend_periods.index(8)] is None     # a mean of 3 people: not drawn
    page = _text((out / "sites" / "BSL-CLSC-Matane.html").read_text(encoding="utf-8"))
    assert "Not shown: fewer than 5 people behind a count" in page
    assert "6.7%" not in page   # 3 events out of 45 would read 6.7%


def test_hostile_identifiers_are_escaped_and_give_safe_file_names(tmp_path):
    data = tmp_path / "hostile"
    shutil.copytree(SMALL, data)
    bad = "<script>alert(1)</script>/../x"
    for name in ("sites", "outcomes", "delivery", "fidelity_ratings", "adaptations", "support", "deadoption",
                 "site_assessments", "establishments"):
        p = data / f"{name}.csv"
        t = pd.read_csv(p, dtype=str, keep_default_na=False)
        if "site_id" in t:
            t["site_id"] = t["site_id"].replace({"BSL-CLSC-Matane": bad})
            t.to_csv(p, index=False)
    out = tmp_path / "fb"
    sa.write_feedback(data, out, language="en")
    files = sorted(p.name for p in (out / "sites").iterdir())
    assert len(files) == 6 and all(re.fullmatch(r"[A-Za-z0-9_-]+\.html", f) for f in files)
    pages = "".join(p.read_text(encoding="utf-8") for p in out.rglob("*.html"))
    assert "<script>" not in pages and "&lt;script&gt;" in pages


def test_a_window_outside_the_data_is_refused(tmp_path):
    with pytest.raises(sa.ScaleupDataError, match=r"period\(s\) \[99\] are not in the data"):
        sa.write_feedback(SMALL, tmp_path / "fb", periods=[99])


def test_the_command_line(tmp_path, capsys):
    assert main(["feedback", "--data", str(SMALL), "--out", str(tmp_path / "fb"), "--lang", "en",
                 "--periods", "7,8"]) == 0
    out = capsys.readouterr().out
    assert "6 sites and 3 establishments, periods 7 to 8" in out
    assert np.all([(tmp_path / "fb" / "index.html").is_file()])


def test_a_sustained_change_is_the_last_run_beyond_the_runs_limit():
    """Known truth for the trend reading: the run of the last points off the median, its side, and the
    Anhøj limit it must exceed (runs_analysis's longest-run limit, round(log2(n)) + 3)."""
    from scaleup_analysis.feedback.cards import _last_run

    # 16 points: 8 low then 8 high; the median lies between them, so the last run is 8 above
    series = [1, 2, 1, 2, 1, 2, 1, 2, 5, 6, 5, 6, 5, 6, 5, 6]
    runs = sa.runs_analysis(series)
    assert _last_run(series, runs.centre) == (8, 1)
    assert runs.longest_run_max == 7            # round(log2(16)) + 3: 8 > 7, a sustained shift
    # points on the median are skipped, as the runs rules do
    assert _last_run([1, 5, 3, 3, 0], 3) == (1, -1)
    assert _last_run([4, 4, 3], 3) == (2, 1)
    assert _last_run([3, 3], 3) == (0, 0)
