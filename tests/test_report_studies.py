"""The main job on three studies, each in a folder outside the repository: a true, complete report.

* the embedded default study (simulated province-wide scale-up, real evidence table);
* the hand-built small study (tests/studies/small_study: 6 sites in 3 RSS, 8 quarters, 3 raters, one
  innovation; not made by the simulator);
* the null study (tests/studies/null_study: no effect anywhere).

Checked: each report is complete (every step ran, no section failed, exit status 0); the input folder
is byte-identical after the run; the generated text agrees with the numbers saved by the same run
(counts of sites, regions, raters, items, innovations and adaptations against the input tables;
flagged regions against the deleterious-effects table; directions of effects against their
intervals); no finding sentence of one study appears in another's report; and every estimate saved
with an interval lies inside it.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaleup_analysis.reporting import run_report

STUDIES = Path(__file__).parent / "studies"
#: the three studies, their reports in English (the language the text checks below read)
NAMES = ("default_en", "small_study", "null_study")
#: the runs: (name, study folder or None for the embedded default, language)
RUNS = {"default_en": (None, "en"), "small_study": ("small_study", None), "null_study": ("null_study", None),
        "default_fr": (None, None), "small_fr": ("small_study", "fr")}

pytestmark = pytest.mark.xdist_group("report_studies")


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("studies")
    out = {}
    for name, (folder, language) in RUNS.items():
        data = None
        before = None
        if folder is not None:
            data = base / name
            shutil.copytree(STUDIES / folder, data)
            before = _tree(data)
        res = run_report(data, base / f"{name}_report", language=language, progress=False)
        out[name] = {"result": res, "data": data, "before": before, "out": base / f"{name}_report",
                     "sections": {(s["step"], s["key"]): s for s in res.sections}}
    return out


def _input(name: str, table: str) -> pd.DataFrame:
    return pd.read_csv(STUDIES / RUNS[name][0] / f"{table}.csv", dtype=str)


def _findings(run, step: int, key: str) -> str:
    sec = run["sections"][(step, key)]
    assert sec["status"] == "ran", (step, key, sec["reason"], sec["error"])
    return " ".join(sec["findings"])


def _table(run, name: str) -> pd.DataFrame:
    return pd.read_csv(run["out"] / "tables" / f"{name}.csv", dtype={"rss_code": str})


@pytest.mark.parametrize("name", sorted(RUNS))
def test_complete_report(runs, name):
    res = runs[name]["result"]
    assert res.ok, res.summary()
    assert [nb["status"] for nb in res.notebooks] == ["ran"] * 5
    assert not [s for s in res.sections if s["status"] == "failed"]
    out = runs[name]["out"]
    for step_file in ("01_evidence_of_effectiveness", "05_monitoring_impacts"):
        for kind in ("", "_report", "_summary"):
            assert (out / f"{step_file}{kind}.html").exists()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert ("Run summary" in index or "Sommaire de l'exécution" in html.unescape(index))
    assert "This run is partial" not in index and "Cette exécution est partielle" not in html.unescape(index)
    # a section that did not run says why, and what would allow it, in the index and the report
    for s in res.sections:
        if s["status"] == "skipped":
            assert s["reason"] and s["reason"][1:] in html.unescape(index)


@pytest.mark.parametrize("name", ["small_study", "null_study", "small_fr"])
def test_input_folder_is_byte_identical(runs, name):
    assert _tree(runs[name]["data"]) == runs[name]["before"]


def test_every_finding_is_shown_in_the_report(runs):
    for name in RUNS:
        out = runs[name]["out"]
        pages = {p.name[:2]: html.unescape(p.read_text(encoding="utf-8")) for p in out.glob("0[1-5]_*_report.html")}
        for s in runs[name]["result"].sections:
            for f in s["findings"]:
                assert f in pages[f"{s['step']:02d}"], (name, s["key"], f)


def _sentences(run) -> set[str]:
    out = set()
    for s in run["result"].sections:
        for f in s["findings"]:
            out.update(x.strip() for x in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", f))
    return out


def test_no_finding_of_one_study_appears_in_another(runs):
    # a finding that quotes a number must come from that study; a sentence without any number (e.g. "No
    # region got significantly worse on any indicator after the Holm correction.") may rightly be said of
    # two studies
    sentences = {name: {t for t in _sentences(runs[name]) if re.search(r"\d", t)} for name in NAMES}
    for a, b in itertools.combinations(NAMES, 2):
        shared = sentences[a] & sentences[b]
        assert not shared, f"{a} and {b} share findings: {sorted(shared)}"


# ----------------------------------------------------------------------------------------------
# the text agrees with the numbers
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["small_study", "null_study"])
def test_counts_in_the_text_match_the_input_tables(runs, name):
    run = runs[name]
    sites, assessments, adaptations = (_input(name, t) for t in ("sites", "assessments", "adaptations"))
    periods = sorted(_input(name, "outcomes")["period"].astype(int).unique())
    rollout = _findings(run, 3, "rollout")
    assert (f"{len(sites)} sites in {sites['rss_code'].nunique()} regions, observed over {len(periods)} "
            f"quarters") in rollout
    never = int((sites["phase"] == "not-adopted").sum())
    assert f"{never} site{'s' if never > 1 else ''} never adopted" in rollout
    scores = _findings(run, 2, "scores")
    n_inn = assessments["innovation"].nunique()
    n_items = assessments["item_id"].nunique()
    assert f"by {assessments['rater_id'].nunique()} raters ({n_items} items in 10 domains)" in scores
    if n_inn == 1:
        assert "was rated on the ISAT" in scores
    adapt = _findings(run, 4, "adaptations")
    assert f"{len(adaptations)} adaptations were documented at {adaptations['site_id'].nunique()} sites" in adapt
    rel = adaptations["fidelity_relation"].value_counts()
    assert (f"{rel.get('fidelity-consistent', 0)} fidelity-consistent, {rel.get('fidelity-inconsistent', 0)} "
            f"fidelity-inconsistent") in adapt


@pytest.mark.parametrize("name", NAMES)
def test_flagged_regions_in_the_text_are_those_of_the_table(runs, name):
    run = runs[name]
    text = _findings(run, 5, "deleterious_effects")
    table = _table(run, "05_deleterious_effects")
    flagged = table[table["flagged"].astype(bool)]
    worse_sentences = [s for s in run["sections"][(5, "deleterious_effects")]["findings"] if "got worse by" in s]
    assert len(worse_sentences) == len(flagged)
    for r in flagged.itertuples():
        assert any(s.startswith(f"{r.region}: {r.indicator} got worse by") for s in worse_sentences), r
        # the amount in the text is the table's improvement, sign flipped ("got worse by")
        assert r.improvement < 0 and r.improvement_ci_high < 0
    if flagged.empty:
        assert "No region got significantly worse" in text
    n_tests = int(table["improvement"].notna().sum())
    assert f"{n_tests} tests" in text


@pytest.mark.parametrize("name", NAMES)
def test_direction_of_the_effect_at_scale_follows_its_interval(runs, name):
    run = runs[name]
    text = _findings(run, 5, "effect_at_scale")
    r = _table(run, "05_effect_at_scale").iloc[0]
    if r["band_low"] > 0 or r["band_high"] < 0:
        assert ("improved" in text) != ("worsened" in text)
    else:
        assert "not clearly different from zero" in text and "improved" not in text and "worsened" not in text


@pytest.mark.parametrize("name", NAMES)
def test_pooled_evidence_sentence_matches_its_table(runs, name):
    run = runs[name]
    text = _findings(run, 1, "pooled_effect")
    reml = _table(run, "01_pooled_effect").set_index("method").loc["REML"]
    assert f"Across {int(reml['k'])} studies" in text
    assert f"{reml['estimate']:.2f} (95% CI " in text or f"{reml['estimate']:.3f} (95% CI " in text
    if reml["ci_low"] > 0:
        assert "favours the innovation" in text
    elif reml["ci_high"] < 0:
        assert "doing worse" in text
    else:
        assert "does not show a clear effect" in text


def test_null_study_reports_no_effect(runs):
    run = runs["null_study"]
    assert "does not show a clear effect" in _findings(run, 1, "pooled_effect")
    assert "not clearly different from zero" in _findings(run, 5, "effect_at_scale")


def test_small_study_reports_its_planted_harm_and_withholds_unfit_models(runs):
    run = runs["small_study"]
    # staff burnout rises at the one scale-up site of Montérégie (planted by tests/studies/make_studies.py)
    assert "Montérégie (16): Staff reporting burnout got worse by" in _findings(run, 5, "deleterious_effects")
    # 3 raters who disagree: no readiness judgement
    rec = _findings(run, 2, "recommendation")
    assert "no readiness judgement yet" in rec and "ready for scale-up" not in rec
    # no patient-level table: the section steps aside and says what would allow it
    s = run["sections"][(5, "site_variation")]
    assert s["status"] == "skipped" and "encounters" in s["needs"]


def test_readiness_is_never_given_when_raters_disagree(runs):
    for name in NAMES:
        run = runs[name]
        rec = _table(run, "02_recommendation")
        low = rec["krippendorff_alpha"].isna() | (rec["krippendorff_alpha"] < 0.667)
        assert (rec.loc[low, "recommendation"] == "discuss the ratings first").all()
        text = _findings(run, 2, "recommendation")
        for r in rec[low].itertuples():
            assert "no readiness judgement yet" in text


# ----------------------------------------------------------------------------------------------
# estimates and their intervals agree in every saved table
# ----------------------------------------------------------------------------------------------
#: estimate columns of a row whose interval is the bare ci_low / ci_high
ROW_ESTIMATES = ("estimate", "att", "slope")


def _interval_pairs(columns) -> list[tuple[str, str, str]]:
    cols = list(columns)
    pairs = []
    for c in cols:
        if c.endswith("_ci_low") and c[: -len("_ci_low")] in cols:
            q = c[: -len("_ci_low")]
            assert f"{q}_ci_high" in cols, c
            pairs.append((q, c, f"{q}_ci_high"))
        elif c.endswith("_ci_low"):
            q = c[: -len("_ci_low")]
            # a name such as ratio_ci_low_fieller is handled below; a bare q_ci_low needs its q
            raise AssertionError(f"interval {c!r} without its estimate {q!r}")
        elif re.fullmatch(r"(.+)_ci_low_(\w+)", c):
            q, method = re.fullmatch(r"(.+)_ci_low_(\w+)", c).groups()
            pairs.append((q, c, f"{q}_ci_high_{method}"))
    for lo, hi in (("ci_low", "ci_high"), ("band_low", "band_high"), ("pi_low", "pi_high")):
        if lo in cols:
            est = next((e for e in ROW_ESTIMATES if e in cols), None)
            assert est is not None, f"interval {lo!r} without an estimate column"
            pairs.append((est, lo, hi))
    return pairs


def test_every_saved_estimate_lies_inside_its_interval(runs):
    checked = 0
    for name in RUNS:
        for path in sorted((runs[name]["out"] / "tables").glob("*.csv")):
            t = pd.read_csv(path)
            for est, lo, hi in _interval_pairs(t.columns):
                d = t[[est, lo, hi]].apply(pd.to_numeric, errors="coerce").dropna()
                tol = 1e-9 * np.maximum(1, np.abs(d[est]))
                bad = d[(d[est] < d[lo] - tol) | (d[est] > d[hi] + tol)]
                assert bad.empty, f"{name}/{path.name}: {est} outside [{lo}, {hi}] in rows {list(bad.index)}"
                checked += len(d)
    assert checked > 500  # the check reached the tables


def test_interval_check_catches_the_old_improvement_bug():
    # the deleterious-effects table once showed improvement_did = -0.129 beside the interval of did
    t = pd.DataFrame({"improvement_did": [-0.129], "did_ci_low": [0.062], "did_ci_high": [0.196]})
    with pytest.raises(AssertionError, match="without its estimate"):
        _interval_pairs(t.columns)
    t = pd.DataFrame({"improvement": [-0.129], "improvement_ci_low": [0.062], "improvement_ci_high": [0.196]})
    est, lo, hi = _interval_pairs(t.columns)[0]
    assert not (t[lo] <= t[est]).all()


def test_sections_json_and_index_agree(runs):
    for name in NAMES:
        rec = json.loads((runs[name]["out"] / "sections.json").read_text(encoding="utf-8"))
        assert len(rec["sections"]) == len(runs[name]["result"].sections)
        counts = {k: sum(s["status"] == k for s in rec["sections"]) for k in ("ran", "skipped", "failed")}
        index = (runs[name]["out"] / "index.html").read_text(encoding="utf-8")
        assert f"{counts['ran']} sections ran, {counts['skipped']} were not run" in index


# ----------------------------------------------------------------------------------------------
# the decision briefs (the summary reports): designed documents, in both languages
# ----------------------------------------------------------------------------------------------
#: what must never appear in a decision brief (its visible text)
FORBIDDEN = {
    "raw repr": re.compile(r"<IPython|object at 0x|np\.float64|dtype:|Name: |\[\d+ rows x \d+ columns\]"),
    "scientific notation": re.compile(r"\d[eE][+-]?\d"),
    "missing value": re.compile(r"\b(NaN|nan|NaT)\b|<NA>|\bNone\b(?! of)"),
    "index column": re.compile(r"Unnamed"),
    "truncated cell": re.compile(r"\.\.\.|…"),
    "identifier-style name": re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b|\b[a-z]+\.[a-z]+\b"),
}


def _visible_text(page: str) -> str:
    page = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<footer>.*?</footer>", " ", page, flags=re.S)  # provenance: package name, commit
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


@pytest.mark.parametrize("name", ["default_fr", "default_en", "small_study", "small_fr"])
def test_decision_briefs_hold_no_raw_output(runs, name):
    briefs = sorted(runs[name]["out"].glob("0[1-5]_*_summary.html"))
    assert len(briefs) == 5
    for path in briefs:
        text = _visible_text(path.read_text(encoding="utf-8"))
        for what, pattern in FORBIDDEN.items():
            hit = pattern.search(text)
            assert hit is None, f"{name}/{path.name}: {what}: {text[max(0, hit.start() - 60):hit.end() + 60]!r}"
        page = path.read_text(encoding="utf-8")
        assert "@media print" in page and "@page" in page  # printable


def test_brief_answers_with_the_run_s_own_headlines(runs):
    from scaleup_analysis.reporting.html import MAX_HEADLINES

    for name in ("default_fr", "small_study"):
        rec = runs[name]["sections"]
        page = html.unescape((runs[name]["out"] / "05_monitoring_impacts_summary.html").read_text(encoding="utf-8"))
        headlines = [s["headline"] for (step, _), s in rec.items()
                     if step == 5 and s["status"] == "ran" and s["headline"]]
        assert headlines
        for h in headlines[:MAX_HEADLINES]:
            assert h in page
        for (step, key), s in rec.items():
            if step == 5 and s["status"] == "skipped":
                assert s["title"] in page  # "what was not analysed, and why"


def test_the_french_report_is_in_french(runs):
    run = runs["default_fr"]
    text = _findings(run, 5, "deleterious_effects")
    assert ("s'est détérioré de" in text and "IC à 95" in text) or \
        "Aucune région ne s'est significativement détériorée" in text
    text = _findings(run, 5, "sustainment")
    assert "À la fin des données (trimestre 16)" in text and "sites qui ont adopté l'innovation" in text
    assert "IC à 95" in _findings(run, 5, "effect_after_support")
    page = html.unescape((run["out"] / "index.html").read_text(encoding="utf-8"))
    assert "Sommaire de l'exécution" in page and 'lang="fr"' in page
    brief = _visible_text((run["out"] / "01_evidence_of_effectiveness_summary.html").read_text(encoding="utf-8"))
    assert "La question" in brief and "La réponse" in brief and "Chiffres clés" in brief


# ----------------------------------------------------------------------------------------------
# the stored notebooks (run by `make notebooks` on the embedded default, in French) carry their figures
# ----------------------------------------------------------------------------------------------
NOTEBOOKS = Path(__file__).resolve().parent.parent / "scaleup_analysis" / "notebooks"
_RUN_CELL = re.compile(r"""report\.run\(\s*["'](\w+)["']""")


def _stored_cells():
    for path in sorted(NOTEBOOKS.glob("0[1-5]_*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                yield path, "".join(cell["source"]), cell.get("outputs", [])


def test_stored_notebooks_hold_one_image_per_figure(runs):
    """Each section cell of a stored notebook holds as many PNG images as the section drew figures
    in the same study's report run (the default study in French, as `make notebooks` runs it)."""
    rec = json.loads((runs["default_fr"]["out"] / "sections.json").read_text(encoding="utf-8"))
    figures = {(s["step"], s["key"]): len(s["figures"]) for s in rec["sections"]}
    checked = 0
    for path, source, outputs in _stored_cells():
        hit = _RUN_CELL.search(source)
        if hit is None:
            continue
        step = int(path.name[:2])
        images = sum("image/png" in o.get("data", {}) for o in outputs)
        assert images == figures[(step, hit.group(1))], (
            f"{path.name}, section {hit.group(1)!r}: {images} stored images, the report run drew "
            f"{figures[(step, hit.group(1))]} (re-run `make notebooks`)")
        checked += images
    assert checked >= 10, checked


def test_stored_notebooks_hold_no_warning_or_error():
    bad = re.compile(r"Traceback|Kernel is running over TCP|\[IPKernelApp\]|Warning:|<Figure size")
    for path, source, outputs in _stored_cells():
        for o in outputs:
            data = o.get("data", {})
            # a figure's display carries its PNG and a "<Figure size ...>" text alternative
            plain = "" if "image/png" in data else "".join(data.get("text/plain", ""))
            text = "".join(o.get("text", "")) + plain
            hit = bad.search(text)
            assert o["output_type"] != "error" and hit is None, f"{path.name}: {text[:300]!r}"
