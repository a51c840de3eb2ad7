"""The figures of a report leave out what its saved tables suppress (small-cell rule).

Truth used:

* the tables the report saves (``tables/*.csv``, read back from disk): the rows flagged
  ``suppressed``, and the values they blank, taken from the analysis before suppression (the
  section's chart frame; the RE-AIM result's full table);
* what matplotlib holds for each figure, read back after drawing it: the data of every line
  (``Line2D``), the offsets and segments of every collection (scatter points, ``hlines``), the
  vertices of every patch, and every text (titles, labels, legends, tick labels).

The study is a copy of ``tests/studies/small_study`` edited so that cells fall below 5 people:
Montérégie (16) has 3 of 38 staff reporting burnout in quarter 7 (its 2 and 3 in quarters 2-3
are in the original data), reaches 3 people in all (so its reach, penetration and cost per
participant count 3 people), and Estrie (05) trains every eligible staff member but 2 (2 people
between the numerator and the denominator). The burnout of Montérégie is flagged as worse by the
previous section, so the control-chart section draws its chart (checked below). Montérégie's
3 people are reached one per quarter in quarters 5-7, so the coverage of those region x quarter
cells (1/206, 1/163, 1/185), and the composite fidelity index computed from it, rest on 1 person:
step 4's fidelity heatmap must leave them out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

import scaleup_analysis as sa
from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.privacy import HIDDEN_MARK
from scaleup_analysis.steps._section import StepReport

matplotlib.use("Agg")

SMALL = Path(__file__).parent / "studies" / "small_study"
THRESHOLD = 5
#: a drawn coordinate this close to a suppressed value shows it (values are drawn as computed)
ATOL = 1e-9
#: the figure says what it leaves out, in the report's language
SAYS_HIDDEN = {"en": "values not shown", "fr": "valeurs non affichées"}
NOTE_HIDDEN = {"en": "values are not drawn", "fr": "valeurs ne sont pas tracées"}


def _small_cell_study(folder: Path) -> Path:
    shutil.copytree(SMALL, folder)
    oc = pd.read_csv(folder / "outcomes.csv", dtype={"site_id": str})
    burnout_q7 = (oc["indicator_id"] == "BURNOUT") & (oc["period"] == 7)
    for site, events in (("MON-GMF-Granby", 1), ("MON-Clin-Saint-Hyacinthe", 2)):
        oc.loc[burnout_q7 & (oc["site_id"] == site), "events"] = events
    oc.to_csv(folder / "outcomes.csv", index=False)
    dv = pd.read_csv(folder / "delivery.csv", dtype={"site_id": str})
    delivering = (dv["site_id"] == "MON-Clin-Saint-Hyacinthe") & (dv["period"] >= 5)
    assert delivering.sum() == 4
    dv.loc[delivering, "reached"] = [1, 1, 1, 0]
    estrie = dv["site_id"].str.startswith("EST") & (dv["staff_trained"] > 0)
    dv.loc[estrie, "staff_trained"] = dv.loc[estrie, "staff_eligible"]
    dv.loc[dv.index[estrie][0], "staff_trained"] -= 2
    dv.to_csv(folder / "delivery.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    return _small_cell_study(tmp_path_factory.mktemp("figure_privacy") / "study")


@pytest.fixture(scope="module", params=["en", "fr"])
def step5(request, study_folder, tmp_path_factory):
    """The control-chart and RE-AIM sections of the small-cell study, run in-process in one language."""
    lang = request.param
    study = sa.load_study(study_folder, language=lang)
    tables = tmp_path_factory.mktemp(f"tables_{lang}")
    rep = StepReport(study, 5, tables_dir=tables, display=False)
    sections = {key: rep.run(key) for key in ("control_charts", "reaim")}
    for key, sec in sections.items():
        assert sec.status == "ran", (key, sec.status, sec.reason, sec.error)
    return lang, sections, tables


def _drawn(fig) -> tuple[list[np.ndarray], list[str]]:
    """Every (x, y) drawn on the figure's axes, in data coordinates, one array per artist, and every text."""
    from matplotlib.text import Text

    fig.canvas.draw()  # tick labels exist once drawn
    xy = []
    for ax in fig.axes:
        for line in ax.lines:
            xy.append(np.column_stack([np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)]))
        for coll in ax.collections:
            offsets = np.asarray(coll.get_offsets(), float)
            if offsets.size:
                xy.append(offsets.reshape(-1, 2))
            for seg in getattr(coll, "get_segments", lambda: [])():
                xy.append(np.asarray(seg, float).reshape(-1, 2))
        for patch in ax.patches:
            verts = patch.get_verts()
            if len(verts):
                xy.append(ax.transData.inverted().transform(verts))
    texts = [t.get_text() for t in fig.findobj(Text) if t.get_text()]
    return xy, texts


def _shown(xy: list[np.ndarray], value: float, *, x=None, column: int = 1) -> bool:
    """Whether ``value`` is drawn (in coordinate ``column``; at abscissa ``x`` when given)."""
    for a in xy:
        near = np.abs(a[:, column] - value) <= ATOL
        if x is not None:
            near &= np.abs(a[:, 0] - x) <= ATOL
        if near.any():
            return True
    return False


def _published(saved: pd.DataFrame) -> np.ndarray:
    """Every number a saved table shows."""
    num = saved.select_dtypes("number").to_numpy(float).ravel()
    return num[np.isfinite(num)]


# ----------------------------------------------------------------------------------------------
# control charts
# ----------------------------------------------------------------------------------------------
def test_control_chart_draws_nothing_the_saved_table_suppresses(step5):
    lang, sections, tables = step5
    out = sections["control_charts"].output
    charts = {f.name: f.figure for f in out.figures}
    assert "05_control_chart_16_BURNOUT" in charts  # the flagged region is charted
    n_hidden_total = 0
    for t in out.tables:
        frame = t.data.reset_index(drop=True)  # the chart as computed, every point
        saved = pd.read_csv(tables / f"{t.name}.csv")
        assert len(saved) == len(frame) and (saved["x"] == frame["x"]).all()
        hidden = saved["suppressed"].to_numpy(bool)
        xy, texts = _drawn(charts[t.name])
        published = _published(saved)
        for i in np.flatnonzero(hidden):
            for col in ("y", "lcl", "ucl"):
                v = frame.loc[i, col]
                if not np.isfinite(v) or not np.isnan(saved.loc[i, col]):
                    continue  # not suppressed (e.g. the limits of an I-chart)
                assert not _shown(xy, v, x=frame.loc[i, "x"]), (t.name, lang, i, col, v)
                if not np.isclose(published, v, rtol=0, atol=ATOL).any():  # a value the table never shows
                    assert not _shown(xy, v), (t.name, lang, i, col, v)
        k = int(hidden.sum())
        n_hidden_total += k
        assert texts.count(HIDDEN_MARK) == k  # each left-out point is marked on the axis
        said = [s for s in texts if SAYS_HIDDEN[lang] in s.replace("\n", " ")]
        assert len(said) == (1 if k else 0), (t.name, said)
        if k:
            assert said[0].startswith(f"{k} ")
        # the analysis still uses every point: the centre line is the pooled baseline proportion
        base = frame["baseline"].to_numpy(bool)
        np.testing.assert_allclose(frame["cl"], frame.loc[base, "events"].sum() / frame.loc[base, "n"].sum(),
                                   rtol=1e-12)
    assert n_hidden_total >= 4  # quarters 2, 3 (baseline) and 7 (follow-up) of Montérégie, with a complement
    assert any(NOTE_HIDDEN[lang] in n for n in out.notes), out.notes


def test_every_baseline_cell_hidden_has_a_hidden_companion(step5):
    """The centre line is the pooled baseline: it must not give away a single hidden baseline point."""
    _, sections, tables = step5
    for t in sections["control_charts"].output.tables:
        saved = pd.read_csv(tables / f"{t.name}.csv")
        for flag, g in saved.groupby("baseline"):
            assert g["suppressed"].sum() != 1 or len(g) == 1, (t.name, flag)


def test_a_baseline_of_one_small_point_draws_no_chart(tmp_path):
    """With one baseline quarter of 2 + 1 staff, the centre line would be that point: no chart, no table."""
    folder = tmp_path / "study"
    shutil.copytree(SMALL, folder)
    toml = folder / "study.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('unit = "quarter"', 'unit = "quarter"\nbaseline = [1]'),
                    encoding="utf-8")
    oc = pd.read_csv(folder / "outcomes.csv", dtype={"site_id": str})
    q1 = (oc["indicator_id"] == "BURNOUT") & (oc["period"] == 1) & oc["site_id"].str.startswith("MON")
    oc.loc[q1, "events"] = [2, 1]
    oc.to_csv(folder / "outcomes.csv", index=False)
    study = sa.load_study(folder, language="en")
    assert study.settings.baseline == (1,)
    out_dir = tmp_path / "tables"
    out_dir.mkdir()
    sec = StepReport(study, 5, tables_dir=out_dir, display=False).run("control_charts")
    assert sec.status == "ran", (sec.reason, sec.error)
    assert not sec.output.figures and not sec.output.tables
    assert not list(out_dir.glob("05_control_chart_16_*"))
    assert any("no control chart is shown" in n and "quarter 1" in n for n in sec.output.notes), sec.output.notes


def test_control_chart_plot_hide():
    d = pd.DataFrame({"period": range(1, 9), "n": [30, 4, 28, 31, 29, 33, 27, 30],
                      "events": [6, 1, 5, 7, 12, 13, 11, 12]})
    chart = sa.control_chart(d, value="events", n="n", chart="p", x="period", freeze=4)
    frame = chart.to_frame()
    hide = np.zeros(len(frame), bool)
    hide[[1, 5]] = True
    ax = chart.plot(hide=hide, threshold=5)
    xy, texts = _drawn(ax.figure)
    for i in (1, 5):
        for col in ("y", "lcl", "ucl"):
            assert not _shown(xy, frame.loc[i, col], x=frame.loc[i, "x"]), (i, col)
    assert texts.count(HIDDEN_MARK) == 2
    assert any(s.replace("\n", " ").startswith("2 values not shown (fewer than 5 people") for s in texts)
    # only the drawing changes
    assert chart.to_frame().equals(frame)
    # the points kept are drawn as they are
    for i in (0, 2, 7):
        assert _shown(xy, frame.loc[i, "y"], x=frame.loc[i, "x"])
    # an I-chart keeps its (constant) limits at a hidden point
    ichart = sa.control_chart(d.assign(y=d["events"] / d["n"]), value="y", chart="i", x="period", freeze=4)
    xy, _ = _drawn(ichart.plot(hide=hide).figure)
    f = ichart.to_frame()
    assert not _shown(xy, f.loc[1, "y"], x=2) and _shown(xy, f.loc[1, "ucl"], x=2)
    # nothing hidden: no mark, no legend entry
    _, texts = _drawn(chart.plot().figure)
    assert HIDDEN_MARK not in texts and not any("not shown" in s for s in texts)
    with pytest.raises(ScaleupDataError, match="one flag per row"):
        chart.plot(hide=hide[:-1])
    with pytest.raises(ScaleupDataError, match="True/False"):
        chart.plot(hide=["yes"] * len(frame))
    import matplotlib.pyplot as plt

    plt.close("all")


# ----------------------------------------------------------------------------------------------
# RE-AIM
# ----------------------------------------------------------------------------------------------
def test_reaim_figure_draws_nothing_the_saved_table_suppresses(step5):
    lang, sections, tables = step5
    out = sections["reaim"].output
    full = out.result.table  # the analysis, before suppression
    saved = pd.read_csv(tables / "05_reaim.csv", dtype={"region": str})
    assert len(saved) == len(full)
    assert (saved["measure"].to_numpy() == full["measure"].to_numpy()).all()
    assert (saved["region"].to_numpy() == full["region"].astype(str).to_numpy()).all()
    hidden = saved["suppressed"].to_numpy(bool)
    # reach, penetration and cost per participant of Montérégie (3 people) and the staff of Estrie
    # (2 people not trained), each with a complementary suppression
    hidden_cells = set(zip(saved.loc[hidden, "measure"], saved.loc[hidden, "region"]))
    assert {("reach", "16"), ("penetration", "16"), ("implementation_cost_per_participant", "16"),
            ("adoption_staff", "05")} <= hidden_cells
    assert hidden.sum() == 8
    (fig,) = [f.figure for f in out.figures]
    xy, texts = _drawn(fig)
    published = _published(saved)
    checked = 0
    for i in np.flatnonzero(hidden):
        for col in ("estimate", "ci_low", "ci_high"):
            v = full[col].iloc[i]
            if np.isfinite(v) and not np.isclose(published, v, rtol=0, atol=ATOL).any():
                assert not _shown(xy, v, column=0), (lang, full.iloc[i][["measure", "region"]].tolist(), col, v)
                checked += 1
    assert checked >= 15
    assert texts.count(HIDDEN_MARK) == hidden.sum()
    said = [s for s in texts if SAYS_HIDDEN[lang] in s]
    assert len(said) == 1 and said[0].startswith(f"{int(hidden.sum())} "), said
    assert any(NOTE_HIDDEN[lang] in n for n in out.notes), out.notes
    # the analysis still counts everyone: Montérégie's 3 people are in the total
    reach = full[full["measure"] == "reach"].set_index("region")
    assert reach.loc["16", "numerator"] == 3
    assert reach.loc["all", "numerator"] == reach.drop(index="all")["numerator"].sum()


def test_saved_reaim_table_hides_the_people_a_row_implies(step5):
    """Counts of 1-4 people a RE-AIM row gives away without a column: the people between the
    numerator and the denominator (staff not trained), and the people reached behind a cost per
    participant (its denominator; with the total cost published, also its estimate)."""
    _, _, tables = step5
    saved = pd.read_csv(tables / "05_reaim.csv", dtype={"region": str})
    people = saved["measurement_unit"] == "individuals"
    rest = saved.loc[people, "denominator"] - saved.loc[people, "numerator"]
    assert not ((rest >= 1) & (rest < THRESHOLD)).any()
    cpp = saved[saved["measure"] == "implementation_cost_per_participant"]
    assert not ((cpp["denominator"] >= 1) & (cpp["denominator"] < THRESHOLD)).any()
    assert cpp.loc[cpp["suppressed"], ["estimate", "denominator"]].isna().all().all()
    assert cpp["suppressed"].sum() != 1


def test_reaim_plot_hide():
    res = sa.reaim(sa.load_study(SMALL).tables)
    t = res.to_frame()
    assert not t["suppressed"].any()
    hide = ((t["measure"] == "reach") & (t["region"] != "all")).to_numpy()
    hide[np.flatnonzero(hide)[1:]] = False  # one region's reach
    fig = res.plot(hide=hide)
    xy, texts = _drawn(fig)
    v = t.loc[hide, ["estimate", "ci_low", "ci_high"]].to_numpy().ravel()
    assert not any(_shown(xy, x, column=0) for x in v)
    assert texts.count(HIDDEN_MARK) == 1
    assert any(s.startswith("1 value not shown") for s in texts)
    ax = res.plot_measure("reach", hide=hide)
    xy, texts = _drawn(ax.figure)
    assert not any(_shown(xy, x, column=0) for x in v) and texts.count(HIDDEN_MARK) == 1
    with pytest.raises(ScaleupDataError, match="one flag per row"):
        res.plot(hide=hide[:3])
    import matplotlib.pyplot as plt

    plt.close("all")


def test_figures_without_small_cells_are_unchanged():
    """The original small study: its RE-AIM figure hides nothing, so it has no mark and no legend entry."""
    study = sa.load_study(SMALL, language="en")
    sec = StepReport(study, 5, display=False).run("reaim")
    xy, texts = _drawn(sec.output.figures[0].figure)
    assert HIDDEN_MARK not in texts and not any("not shown" in s for s in texts)
    assert not any("not drawn" in n for n in sec.output.notes)


# ----------------------------------------------------------------------------------------------
# step 4: fidelity heatmap (region x quarter)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["en", "fr"])
def step4(request, study_folder, tmp_path_factory):
    """The fidelity section of the small-cell study, run in-process in one language."""
    lang = request.param
    study = sa.load_study(study_folder, language=lang)
    tables = tmp_path_factory.mktemp(f"tables4_{lang}")
    sec = StepReport(study, 4, tables_dir=tables, display=False).run("fidelity")
    assert sec.status == "ran", (sec.status, sec.reason, sec.error)
    return lang, sec, tables


def _heatmap_image(fig):
    """The heatmap's image (its colour bar is not an image) and the cell values it colours."""
    (image,) = [im for ax in fig.axes for im in ax.get_images()]
    return image, np.ma.masked_invalid(np.ma.asarray(image.get_array(), dtype=float))


def test_fidelity_heatmap_draws_nothing_the_saved_table_suppresses(step4):
    lang, sec, tables = step4
    out = sec.output
    (heat,) = [t for t in out.tables if t.name == "04_fidelity_heatmap"]
    full = heat.data.reset_index(drop=True)  # the heatmap's cells as computed, before suppression
    saved = pd.read_csv(tables / "04_fidelity_heatmap.csv", dtype={"rss_code": str})
    assert len(saved) == len(full)
    assert (saved["rss_code"].to_numpy() == full["rss_code"].to_numpy()).all()
    assert (saved["period"].to_numpy() == full["period"].to_numpy()).all()
    hidden = saved["suppressed"].to_numpy(bool)
    cells = set(zip(saved.loc[hidden, "rss_code"], saved.loc[hidden, "period"]))
    # Montérégie's quarters of 1 person, and a complement in each of those quarters (Bas-Saint-Laurent)
    assert {("16", 5), ("16", 6), ("16", 7)} <= cells and len(cells) == 6
    np.testing.assert_allclose(full.loc[hidden & (full["rss_code"] == "16"), "fidelity_index"],
                               [0.616, 0.495, 0.453], atol=5e-4)  # the values the heatmap used to colour
    assert saved.loc[hidden, ["eligible", "reached", "coverage", "exposure", "fidelity_index"]].isna().all().all()
    assert saved.loc[hidden, "band"].isna().all()  # the band would tell the suppressed index's range

    (fig,) = [f.figure for f in out.figures if f.name == "04_fidelity_heatmap"]
    image, drawn = _heatmap_image(fig)
    regions, periods = sorted(full["rss_code"].unique()), sorted(full["period"].unique())
    assert drawn.shape == (len(regions), len(periods))
    shown = []
    for k, r in full.iterrows():
        i, j = regions.index(r["rss_code"]), periods.index(r["period"])
        if hidden[k]:
            assert drawn.mask[i, j], (lang, r["rss_code"], r["period"])  # no colour from the value
        elif np.isfinite(r["fidelity_index"]):
            assert not drawn.mask[i, j] and abs(drawn[i, j] - r["fidelity_index"]) <= ATOL
            shown.append(r["fidelity_index"])
        else:
            assert drawn.mask[i, j]  # no rating
    # the colour scale starts under the smallest value shown, not under a hidden one (0.453 would give 0.4)
    assert image.norm.vmin == min(0.5, np.floor(10 * min(shown)) / 10) == 0.5
    xy, texts = _drawn(fig)
    tx = sa.narrative.Text(lang)
    for v in full.loc[hidden, ["coverage", "exposure", "fidelity_index"]].to_numpy().ravel():
        if np.isfinite(v):
            assert not _shown(xy, v) and not _shown(xy, v, column=0)
            assert not any(f in t for t in texts for f in (tx.num(v, 2), tx.num(v, 3), tx.pct(v))), (lang, v)
    assert texts.count(HIDDEN_MARK) == hidden.sum() == 6  # one mark per hidden cell
    said = [t for t in texts if SAYS_HIDDEN[lang] in t.replace("\n", " ")]
    assert len(said) == 1 and said[0].startswith("6 "), said
    notes = [n for n in out.notes if NOTE_HIDDEN[lang] in n]
    assert len(notes) == 1 and "6" in notes[0], out.notes
    # the index is computed as before: Montérégie's people are still counted in its region's index
    np.testing.assert_allclose(full.loc[(full["rss_code"] == "16") & (full["period"] == 5), "coverage"], 1 / 206,
                               rtol=1e-12)


def test_fidelity_findings_quote_only_published_regions(step4):
    """The findings name no value of a region whose row the saved region table suppresses."""
    lang, sec, tables = step4
    out = sec.output
    (region,) = [t for t in out.tables if t.name == "04_fidelity_by_region"]
    saved = pd.read_csv(tables / "04_fidelity_by_region.csv", dtype={"rss_code": str})
    hidden = saved["suppressed"].to_numpy(bool)
    assert set(saved.loc[hidden, "rss_code"]) == {"01", "16"}  # Montérégie (3 people) and its complement
    assert saved.loc[hidden, ["fidelity_index", "band"]].isna().all().all()
    tx = sa.narrative.Text(lang)
    words = [*out.findings, out.headline, *(v for _, v in out.key_figures)]
    for v in region.data.loc[hidden, "fidelity_index"]:
        assert not any(tx.pct(v) in w for w in words), (lang, v, words)


def test_plot_fidelity_hide():
    import matplotlib.pyplot as plt

    idx = pd.DataFrame({"site_id": ["A", "A", "B", "B", "C", "C"], "period": [1, 2] * 3,
                        "n_sessions": [2, 2, 1, 1, 1, 1],
                        "adherence": [0.9, 0.8, 0.7, 0.75, 0.85, 0.95],
                        "fidelity_index": [0.9, 0.8, 0.31, 0.75, 0.85, 0.95]})
    sites = pd.DataFrame({"site_id": ["A", "B", "C"], "rss_code": ["16", "05", "16"]})
    hide = np.array([False, False, True, False, False, False])  # B, period 1 (the smallest value)
    # by site, rows grouped by region (B, of region 05, comes first): the flag follows its row
    ax = sa.plot_fidelity(idx, sites=sites, hide=hide, threshold=5)
    image, drawn = _heatmap_image(ax.figure)
    assert drawn.shape == (3, 2) and drawn.mask.sum() == 1 and drawn.mask[0, 0]
    assert abs(drawn[0, 1] - 0.75) <= ATOL and abs(drawn[1, 0] - 0.9) <= ATOL
    assert image.norm.vmin == 0.5  # from the values shown (0.31 would give 0.3)
    xy, texts = _drawn(ax.figure)
    assert texts.count(HIDDEN_MARK) == 1 and not _shown(xy, 0.31) and not _shown(xy, 0.31, column=0)
    assert any(t.replace("\n", " ").startswith("1 value not shown (fewer than 5 people") for t in texts)
    assert "No rating" not in texts  # a hidden cell is not a cell without a rating
    # a pandas Series of flags (by position), with missing flags counted as hidden
    ax = sa.plot_fidelity(idx, hide=pd.Series([None, False, False, False, False, False], dtype="boolean",
                                              index=range(10, 16)))
    assert _heatmap_image(ax.figure)[1].mask[0, 0]
    # by region: one flag per row of the pooled region x period table
    pooled = sa.fidelity_by(idx, ["rss_code", "period"], sites=sites)
    assert list(zip(pooled["rss_code"], pooled["period"])) == [("05", 1), ("05", 2), ("16", 1), ("16", 2)]
    ax = sa.plot_fidelity(idx, by="region", sites=sites, hide=[False, False, False, True], threshold=11)
    _, drawn = _heatmap_image(ax.figure)
    assert drawn.mask.tolist() == [[False, False], [False, True]]
    xy, texts = _drawn(ax.figure)
    assert texts.count(HIDDEN_MARK) == 1 and any("fewer than 11 people" in t.replace("\n", " ") for t in texts)
    assert not _shown(xy, pooled.loc[3, "fidelity_index"]) and not _shown(xy, pooled.loc[3, "fidelity_index"], column=0)
    # nothing hidden: no mark, no legend entry, the drawing of before
    for hide_none in (None, np.zeros(len(idx), bool)):
        ax = sa.plot_fidelity(idx, hide=hide_none)
        _, texts = _drawn(ax.figure)
        assert HIDDEN_MARK not in texts and not any("not shown" in t for t in texts)
        assert _heatmap_image(ax.figure)[0].norm.vmin == 0.3
    # bad input
    with pytest.raises(ScaleupDataError, match=r"hide= has 5 flag\(s\) but table 'data' has 6 row\(s\)"):
        sa.plot_fidelity(idx, hide=hide[:-1])
    with pytest.raises(ScaleupDataError, match=r"hide= has 6 flag\(s\) but the region x period table fidelity_by"):
        sa.plot_fidelity(idx, by="region", sites=sites, hide=hide)
    with pytest.raises(ScaleupDataError, match="True/False"):
        sa.plot_fidelity(idx, hide=["yes"] * len(idx))
    with pytest.raises(ScaleupDataError, match="True/False"):
        sa.plot_fidelity(idx, hide=[0.5] * len(idx))
    with pytest.raises(ScaleupDataError, match="not a DataFrame"):
        sa.plot_fidelity(idx, hide=pd.DataFrame({"suppressed": hide}))
    for bad in (0, True, 2.5, "5"):
        with pytest.raises(ScaleupDataError, match="threshold must be an integer >= 1"):
            sa.plot_fidelity(idx, hide=hide, threshold=bad)
    plt.close("all")


def test_fidelity_heatmap_without_small_cells_hides_nothing():
    study = sa.load_study(SMALL, language="en")
    sec = StepReport(study, 4, display=False).run("fidelity")
    out = sec.output
    (heat,) = [t for t in out.tables if t.name == "04_fidelity_heatmap"]
    assert not heat.hidden(THRESHOLD).any()
    _, texts = _drawn(out.figures[0].figure)
    assert HIDDEN_MARK not in texts and not any("not shown" in t for t in texts)
    assert not any("not drawn" in n for n in out.notes)
