"""The study file ``study.toml``, derived settings, the default study and ``scaleup init``.

Truth is known by construction: the hand-built test studies (tests/studies/) have sites whose
adoption periods are written in their sites.csv, so the derived baseline/follow-up periods and the
comparison group can be checked by hand.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from scaleup_analysis.errors import ScaleupDataError
from scaleup_analysis.scaffold import WORKBOOK_NAME, init_study
from scaleup_analysis.study import (
    SETTINGS,
    STUDY_FILE,
    default_study,
    default_study_file,
    load_study,
    read_study_file,
    span_text,
    study_file_template,
)

STUDIES = Path(__file__).parent / "studies"


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(STUDIES / name, dst)
    return dst


def _write_toml(folder: Path, text: str) -> None:
    (folder / STUDY_FILE).write_text(text, encoding="utf-8")


def test_small_study_derived_settings(tmp_path):
    study = load_study(_copy("small_study", tmp_path))
    s = study.settings
    # sites.csv: pilots adopt in quarter 3, the scale-up wave (cohort 1) in quarter 5: baseline 1-4;
    # last adoption 5, data to quarter 8: follow-up 6-8
    assert s.baseline == (1, 2, 3, 4) and s.followup == (6, 7, 8)
    assert s.comparison == "not-adopted"  # MON-GMF-Granby never adopts
    assert s.primary_indicator == "DIAB_CTRL"  # the only health_outcomes indicator
    assert s.name == "Chronic care coordination in three regions"  # given in study.toml
    assert s.evidence_moderators == ("tailored",)
    text = " ".join(study.statements())
    assert "1-4" in text and "6-8" in text and "quarter 5" in text
    assert "2 pilot sites adopted earlier (quarter 3)" in text
    assert "the bundled" in text.lower() or "18 health regions" in text  # regions not given
    # region-level rollout? Montérégie has a never-adopting site: units are sites
    assert s.rollout_cluster == "site"
    assert study.region_name("05") == "Estrie (05)"


def test_study_file_values_override_derivation(tmp_path):
    folder = _copy("small_study", tmp_path)
    _write_toml(folder, '[periods]\nbaseline = [1, 2]\nfollowup = [7, 8]\nunit = "quarter"\n'
                        '[comparison]\nphase = "none"\n[indicators]\nprimary = "SATISF"\n'
                        '[indicators.label]\nCOST = "Coût par patient"\n')
    study = load_study(folder)
    assert study.settings.baseline == (1, 2) and study.settings.followup == (7, 8)
    assert study.settings.comparison is None
    assert study.settings.primary_indicator == "SATISF"
    assert study.indicator_label("COST") == "Coût par patient"
    assert study.indicator_label("BURNOUT") == "Staff reporting burnout"
    assert not any(st.startswith("Baseline") for st in study.settings.statements)


def test_every_study_file_problem_in_one_message(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    _write_toml(folder, '[study]\nnmae = "x"\nseed = "12"\nlanguage = "de"\n[perods]\nunit = "q"\n'
                        '[periods]\nbaseline = [1, "2"]\nunit = "week"\n')
    with pytest.raises(ScaleupDataError) as info:
        read_study_file(folder / STUDY_FILE)
    msg = str(info.value)
    for needle in ("[study] nmae: unknown setting (did you mean 'name'?)", "[study] seed: must be a whole number",
                   "[study] language: must be one of \"fr\", \"en\"", "[perods]: unknown section (did you mean 'periods'?)",
                   "[periods] baseline: must list whole numbers", "[periods] unit: must be one of"):
        assert needle in msg, needle
    assert msg.count("\n  - ") == 6


def test_toml_syntax_error_names_the_line(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    _write_toml(folder, "[study]\nname = Mon étude\n")
    with pytest.raises(ScaleupDataError, match=r"not valid TOML: .*line 2.*double quotes"):
        read_study_file(folder / STUDY_FILE)


def test_settings_that_do_not_fit_the_data(tmp_path):
    folder = _copy("small_study", tmp_path)
    _write_toml(folder, '[periods]\nbaseline = [1, 2, 9]\nfollowup = [2, 8]\n[indicators]\nprimary = "DIAB"\n'
                        '[comparison]\nphase = "control"\n[evidence]\nmoderators = ["tailoring"]\n')
    with pytest.raises(ScaleupDataError) as info:
        load_study(folder)
    msg = str(info.value)
    assert "[periods] baseline: period(s) 9 do not occur in the data" in msg
    assert "overlap" in msg
    assert "[indicators] primary: 'DIAB' is not an indicator_id" in msg and "did you mean 'DIAB_CTRL'" in msg
    assert "[comparison] phase: no site has phase 'control'" in msg
    assert "[evidence] moderators: column(s) 'tailoring' are not in the evidence table" in msg


def test_no_baseline_when_adoption_in_first_period(tmp_path):
    folder = _copy("small_study", tmp_path)
    sites = pd.read_csv(folder / "sites.csv", dtype=str)
    sites["adoption_period"] = sites["adoption_period"].where(sites["adoption_period"].isna(), "1")
    sites["cohort"] = sites["cohort"].where(sites["cohort"].isna(), "1")
    sites["phase"] = sites["phase"].where(sites["phase"] == "not-adopted", "scale-up")
    sites.to_csv(folder / "sites.csv", index=False)
    study = load_study(folder)
    assert study.settings.baseline == ()
    assert any("no quarter precedes the first scale-up wave" in st for st in study.statements())


def test_template_lists_every_setting_and_parses():
    text = study_file_template()
    parsed = tomllib.loads(text)
    assert all(v == {} for v in parsed.values())  # everything commented out
    for s in SETTINGS:
        if s.kind != "map":
            assert f"# {s.key} = " in text, s.name


def test_uncommented_template_is_a_valid_study_file(tmp_path):
    text = study_file_template()
    out = []
    for ln in text.splitlines():
        if ln.startswith("# ") and not ln.startswith("#   ") and ("=" in ln or ln.startswith("# [")):
            candidate = ln[2:]
            try:
                tomllib.loads(candidate if candidate.startswith("[") else f"x = {candidate.split('=', 1)[1]}")
            except tomllib.TOMLDecodeError:
                out.append(ln)
                continue
            out.append(candidate)
        else:
            out.append(ln)
    (tmp_path / STUDY_FILE).write_text("\n".join(out), encoding="utf-8")
    values = read_study_file(tmp_path / STUDY_FILE)
    assert values[("study", "seed")] == 20261123 and values[("data", "separator")] == ";"


def test_default_study():
    st = default_study(seed=1)
    assert st.settings.simulated and st.folder is None
    assert st.settings.baseline == (1, 2, 3, 4, 5) and st.settings.followup == (13, 14, 15, 16)
    assert "evidence" in st.tables and len(st.tables["evidence"]) == 23
    assert st.settings.language == "fr"  # the embedded Quebec study reports in French
    assert st.statements()[0].startswith("Les données de cette étude sont simulées")
    assert default_study(seed=1, language="en").statements()[0].startswith("The data of this study are simulated")
    parsed = tomllib.loads(default_study_file(seed=7))
    assert parsed["study"]["seed"] == 7 and parsed["study"]["simulated"] is True


def test_span_text():
    assert span_text([]) == ""
    assert span_text([4]) == "4"
    assert span_text([3, 1, 2, 7]) == "1-3, 7"


def test_init_scaffolds_a_study_folder(tmp_path):
    folder = tmp_path / "new_study"
    written = init_study(folder)
    names = {p.name for p in written}
    assert {STUDY_FILE, "README.md", WORKBOOK_NAME, "sites.csv", "outcomes.csv", "evidence.csv"} <= names
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "## Français" in readme and "## English" in readme and "scaleup report --data" in readme
    wb = openpyxl.load_workbook(folder / WORKBOOK_NAME)
    assert "sites" in wb.sheetnames and "adaptations" in wb.sheetnames
    ws = wb["sites"]
    assert [c.value for c in ws[1]][:2] == ["site_id", "rss_code"]
    formulas = {str(dv.sqref).split(":")[0].rstrip("0123456789"): dv.formula1
                for dv in ws.data_validations.dataValidation}
    lists = wb["Listes"]
    col = formulas["B"].split("!")[1].split(":")[0].replace("$", "")[0]  # rss_code drop-down
    values = [c.value for c in lists[col][1:] if c.value]
    assert values == [f"{i:02d}" for i in range(1, 19)]
    # the empty scaffold is not a study yet: loading it says which tables are missing
    with pytest.raises(ScaleupDataError, match="sites"):
        load_study(folder)


def test_init_never_overwrites(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sites.csv").write_text("x\n")
    with pytest.raises(ScaleupDataError, match="not empty"):
        init_study(folder)
    assert (folder / "sites.csv").read_text() == "x\n"
