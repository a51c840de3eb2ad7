"""The systematic sweep of the bad-input catalogue: every public function, every category of bad input.

The hand-written cases of ``test_bad_inputs.py`` check the exact wording of one error each. This
sweep complements them: each public function that takes a table is called on a small valid input
(its :class:`Target`), then on the same input damaged in each category of :data:`CATEGORIES`
(wrong type, empty, one row or unit, constant values, NaN, inf, extreme magnitudes, mixed key types,
duplicated column). For every (function, category) the expected outcome is written down here and
checked by ``test_bad_input_sweep.py``:

* ``"error"``: a :class:`~scaleup_analysis.ScaleupDataError` whose message names the damaged
  argument or column;
* ``"warning"``: a result comes back with a :class:`~scaleup_analysis.ScaleupWarning` saying what is
  degenerate (and any NaN in the result is then explained by it);
* ``"result"``: a result comes back, with no warning and no NaN in its numbers.

Whatever the outcome, no raw Python exception, no numpy ``RuntimeWarning`` and no warning other than
the package's own may reach the caller. A category that cannot apply to a function is listed in
``not_applicable`` with the reason, so ``docs/bad_inputs.md`` shows every public function against every
category. Functions that take no table (loaders, settings, designs, result objects) are listed in
:data:`NO_TABLE` with their own wrong-type case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from bad_input_support import meta_df, mm_df, ratings, sim, tbl, tmpdir

import scaleup_analysis as sa

# category -> what the damaged input is (the docs table's column headings)
CATEGORIES = {
    "wrong_type": "wrong type (a list of rows instead of a table)",
    "empty": "empty (header only, zero rows)",
    "one_unit": "one row or one unit only",
    "constant": "constant values",
    "nan": "a NaN value",
    "inf": "an infinite value",
    "huge": "extreme magnitudes (x 1e300)",
    "tiny": "extreme magnitudes (x 1e-300)",
    "mixed_types": "mixed types in a key column (text and numbers)",
    "duplicated_column": "a duplicated column name",
}
KINDS = ("error", "warning", "result")


@dataclass(frozen=True)
class Target:
    """One public function on one small valid input.

    ``data`` builds the valid table; ``call`` runs the function on a (possibly damaged) copy of it;
    ``value`` is the numeric column damaged by constant / nan / inf / huge / tiny; ``key`` is the unit
    column (one unit kept; mixed types); ``argument`` is the name of the parameter the table is given to,
    or the table's name where the function takes the tables of a study (an error about a wrong type must
    name it)."""

    function: str
    data: Callable[[], pd.DataFrame]
    call: Callable[[object], object]
    value: str | None
    key: str | None
    expect: dict[str, str]
    not_applicable: dict[str, str] = field(default_factory=dict)
    argument: str = "data"
    mixed: str | None = None  # the column given mixed types (default: key)
    passthrough: bool = False  # returns (a copy of) its input: NaN in the input stays NaN

    def categories(self) -> list[str]:
        return [c for c in CATEGORIES if c in self.expect]


def damage(target: Target, category: str):
    """The valid input of ``target`` damaged in ``category``."""
    d = target.data().copy()
    v, k = target.value, target.key
    if category == "wrong_type":
        return d.to_numpy().tolist()
    if category == "empty":
        return d.iloc[:0]
    if category == "one_unit":
        return d[d[k] == d[k].iloc[0]] if k is not None else d.iloc[:1]
    if category == "constant":  # the missing values stay missing (a site-period without sessions ...)
        first = d[v].dropna().iloc[0]
        return d.assign(**{v: d[v].where(d[v].isna(), first)})
    if category in ("nan", "inf"):
        col = d[v].astype(float)
        col.iloc[int(np.flatnonzero(col.notna().to_numpy())[0])] = np.nan if category == "nan" else np.inf
        return d.assign(**{v: col})
    if category in ("huge", "tiny"):
        return d.assign(**{v: d[v].astype(float) * (1e300 if category == "huge" else 1e-300)})
    if category == "mixed_types":
        k = target.mixed or k
        col = d[k].astype(object)
        first = col.iloc[0]
        # a number where the others are text, or the same number written as text where the others are numbers
        col.iloc[0] = 1 if isinstance(first, str) else str(first)
        return d.assign(**{k: col})
    if category == "duplicated_column":
        name = v if v is not None else k
        return pd.concat([d, d[[name]]], axis=1)
    raise AssertionError(category)


# ----------------------------------------------------------------------------------------------
# small valid inputs
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _fidelity():
    return sa.fidelity_index(tbl("fidelity_ratings"), tbl("components"), tbl("delivery"))


def _summary():
    return sa.summarize(mm_df(), by="site", outcome="y", covariates=["x"])


def _ho_y():
    """The outcomes of the indicator the models analyse (so a damaged row is an analysed row)."""
    o = tbl("outcomes")
    return o[o["indicator_id"] == "HO_Y"].reset_index(drop=True)


def _health():
    o = tbl("outcomes").merge(tbl("sites"), on="site_id")
    return o[o["indicator_id"] == "HO_Y"].reset_index(drop=True)


def _panel():
    rng = np.random.default_rng(3)
    n, T = 24, 6
    coh = np.repeat([0, 3, 4, 5], n // 4)
    return pd.DataFrame({"unit": np.repeat([f"U{i:02d}" for i in range(n)], T), "time": np.tile(np.arange(1, T + 1), n),
                         "cohort": np.repeat(coh, T), "y": rng.normal(size=n * T)})


def _sw_frame():
    d = sa.stepped_wedge_design(6, 3).to_frame()
    d = d.loc[d.index.repeat(5)].reset_index(drop=True)
    return d.assign(y=np.random.default_rng(1).normal(size=len(d)) + 0.3 * d["treatment"])


def _its():
    t = np.arange(1, 25)
    return pd.DataFrame({"t": t, "y": np.sin(t) + 0.1 * t})


def _quintiles():
    return pd.DataFrame({"quintile": [1, 2, 3, 4, 5], "events": [10, 12, 15, 18, 20], "n": [100] * 5,
                         "pop": [1000.0] * 5}).assign(p=lambda d: d["events"] / d["n"])


def _kappa():
    return pd.DataFrame({"a": [1, 2, 3, 1, 2, 3, 1, 2, 3, 1], "b": [1, 2, 3, 1, 3, 3, 2, 2, 3, 2]})


def _landenberger():
    return sa.effect_sizes(sa.load_dataset("landenberger2005"), "OR", ai="n.cbt.non", bi="n.cbt.rec",
                           ci="n.ctrl.non", di="n.ctrl.rec")


def _binary():
    return pd.DataFrame({"study": ["A", "B", "C", "D"], "a": [5, 3, 8, 6], "b": [10, 12, 9, 11],
                         "c": [4, 6, 5, 7], "d": [11, 9, 12, 10]})


def _cells():
    return pd.DataFrame({"region": ["01", "01", "02", "02", "03", "03"], "n": [12, 8, 30, 3, 25, 40],
                         "rate": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})


def _tables():
    return dict(sim())


def _with(name):
    """A call on the whole set of tables with ``name`` replaced by the damaged table."""
    return lambda f: (lambda d: f({**_tables(), name: d}))


# ----------------------------------------------------------------------------------------------
# the targets (filled in below; the expectations are the contract)
# ----------------------------------------------------------------------------------------------
TARGETS: list[Target] = []



@dataclass(frozen=True)
class NoTable:
    """A public function that takes no table: its wrong-type case (``call`` is None when it takes no
    argument at all) and why the table categories do not apply to it."""

    function: str
    reason: str
    bad_input: str = ""
    call: Callable[[], object] | None = None
    fragments: tuple[str, ...] = ()


_RESULT = "a result object (its own tables are swept where they are built)"
_PATH = "a folder or file path (the loaders' files are in the hand-written catalogue above)"
NO_TABLE: list[NoTable] = [
    NoTable("change_from_baseline", f"takes {_RESULT}", "a table instead of a quintuple-aim panel",
            lambda: sa.change_from_baseline(tbl("outcomes"), baseline_periods=[1], followup_periods=[8]),
            ("argument 'panel'", "sa.quintuple_aim_panel")),
    NoTable("deleterious_effects", f"takes {_RESULT}", "a table instead of a change from baseline",
            lambda: sa.deleterious_effects(tbl("outcomes")), ("argument 'changes'", "sa.change_from_baseline")),
    NoTable("plot_dashboard", f"takes {_RESULT}", "a table instead of a change from baseline",
            lambda: sa.plot_dashboard(tbl("outcomes")), ("ChangeFromBaseline or DeleteriousEffects",)),
    NoTable("stepped_wedge_power", "takes a design (numbers checked in the catalogue above)",
            "a sites table instead of a design",
            lambda: sa.stepped_wedge_power(tbl("sites"), 0.3, sigma2=1, icc=0.05, m=20),
            ("'design' must come from sa.stepped_wedge_design",)),
    NoTable("stepped_wedge_power_sim", "takes a design (numbers checked in the catalogue above)",
            "a sites table instead of a design",
            lambda: sa.stepped_wedge_power_sim(tbl("sites"), 0.3, sigma2=1, icc=0.05, m=20),
            ("'design' must come from sa.stepped_wedge_design",)),
    NoTable("stepped_wedge_design", "takes counts of clusters and steps", "the text '6' as the number of clusters",
            lambda: sa.stepped_wedge_design("6", 3), ("'n_clusters' must be an integer", "'6'")),
    NoTable("check_manifest", f"takes {_PATH}", "a number as the folder", lambda: sa.check_manifest(12),
            ("argument 'directory'", "folder or file path", "int 12")),
    NoTable("write_manifest", f"takes {_PATH}", "a number as the folder", lambda: sa.write_manifest(12),
            ("argument 'directory'", "folder or file path")),
    NoTable("load_table", f"takes {_PATH}", "a number as the file", lambda: sa.load_table(12),
            ("argument 'path'", "folder or file path")),
    NoTable("load_tables", f"takes {_PATH}", "a number as the folder", lambda: sa.load_tables(12),
            ("argument 'directory'", "folder or file path")),
    NoTable("load_study", f"takes {_PATH}", "a number as the folder", lambda: sa.load_study(12),
            ("argument 'data_dir'", "folder or file path")),
    NoTable("init_study", f"takes {_PATH}", "a number as the folder", lambda: sa.init_study(12),
            ("argument 'directory'", "folder or file path")),
    NoTable("run_report", f"takes {_PATH}", "a number as the data folder", lambda: sa.run_report(12, tmpdir() / "out"),
            ("argument 'data_dir'", "folder or file path")),
    NoTable("write_feedback", f"takes {_PATH}", "a number as the data folder",
            lambda: sa.write_feedback(12, tmpdir() / "out"), ("argument 'data_dir'", "folder or file path")),
    NoTable("write_encounters_parquet", f"takes {_PATH}", "a number as the file",
            lambda: sa.write_encounters_parquet(12), ("argument 'path'", "folder or file path")),
    NoTable("simulate_scaleup", "takes a seed and sizes (sizes checked in the catalogue above)", "a text seed",
            lambda: sa.simulate_scaleup(seed="x"), ("argument 'seed'", "non-negative integer")),
    NoTable("default_study", "takes a seed", "a text seed", lambda: sa.default_study(seed="abc"),
            ("argument 'seed'", "non-negative integer")),
    NoTable("load_dataset", "takes a dataset name", "a number as the name", lambda: sa.load_dataset(12),
            ("Unknown dataset 12", "sa.list_datasets()")),
    NoTable("load_instrument", "takes an instrument name or file", "a number as the name",
            lambda: sa.load_instrument(12), ("argument 'name_or_path'", "got a int")),
    NoTable("frame_scheme", "takes a scheme name", "a number as the scheme", lambda: sa.frame_scheme(12),
            ("argument 'scheme'", "'FRAME' or 'FRAME-IS'")),
    NoTable("set_language", "takes a language code", "a number as the language", lambda: sa.set_language(12),
            ("unknown language 12", "fr, en")),
    NoTable("setup_display", "takes display settings", "a text precision", lambda: sa.setup_display(precision="x"),
            ("argument 'precision'", "integer >= 0")),
    NoTable("get_language", "takes no argument"),
    NoTable("list_datasets", "takes no argument"),
    NoTable("list_instruments", "takes no argument"),
]


def _survival():
    """Times to de-adoption of 30 sites in 3 waves, censored or not, with a cause and a score."""
    rng = np.random.default_rng(3)
    event = rng.integers(0, 2, 30)
    return pd.DataFrame({"site_id": [f"s{i:02d}" for i in range(30)], "wave": np.repeat([1, 2, 3], 10),
                         "time": rng.integers(1, 10, 30).astype(float), "event": event,
                         "cause": np.where(event == 1, rng.integers(1, 3, 30), 0),
                         "score": rng.normal(4.5, 1.0, 30).round(2)})


def _stops():
    sites = tbl("sites")
    adopters = sites.dropna(subset=["adoption_period"]).head(3)
    return pd.DataFrame({"site_id": adopters["site_id"].to_numpy(), "period": adopters["adoption_period"].astype(int) + 2,
                         "extent": "complete", "reason": "low_fit"})


def _withdrawal_panel():
    """A site x period panel of 12 sites over 8 periods: 3 never adopt, the others adopt in period 3 or 4 and
    lose their support 3 periods later."""
    rng = np.random.default_rng(5)
    sites = [f"s{i:02d}" for i in range(12)]
    adopt = dict(zip(sites, [np.nan] * 3 + [3] * 5 + [4] * 4))
    rows = [(s, t, adopt[s], adopt[s] + 3 if adopt[s] == adopt[s] else np.nan) for s in sites for t in range(1, 9)]
    d = pd.DataFrame(rows, columns=["site_id", "period", "adoption_period", "withdrawal_period"])
    treated = d["period"] >= d["adoption_period"]
    after = d["period"] >= d["withdrawal_period"]
    return d.assign(y=rng.normal(size=len(d)) + 2.0 * treated - 1.0 * after)


def _prom_items():
    """A 4-item questionnaire (1-5 scale, item q3 reversed) answered by 8 respondents."""
    return pd.DataFrame({"q1": [4, 5, 3, 2, 4, 5, 1, 3], "q2": [3, 5, 4, 2, 3, 4, 2, 3],
                         "q3": [2, 1, 3, 4, 2, 1, 5, 3], "q4": [5, 4, 3, 1, 4, 5, 2, 2]})


def _prem_patients():
    """Scale scores of 21 respondents in 4 sites, with their age (case mix)."""
    return pd.DataFrame({"site_id": list("AAAAAABBBBBBCCCCCCDDD"),
                         "age": [30, 40, 50, 60, 45, 35, 60, 70, 80, 75, 65, 55, 40, 50, 45, 55, 60, 35, 50, 60, 70],
                         "score": [4.0, 3.5, 3.8, 3.0, 4.2, 3.9, 3.1, 2.8, 2.5, 2.9, 3.4, 3.6, 3.7, 3.3, 4.0, 3.2, 3.0,
                                   4.1, 3.5, 3.0, 2.7]})


def _funnel_units():
    """Events among individuals in 6 sites (a proportion per site)."""
    return pd.DataFrame({"site_id": ["A", "B", "C", "D", "E", "F"], "events": [12, 30, 9, 41, 20, 3],
                         "n": [100, 210, 95, 250, 160, 60]})


def _casemix_patients():
    """Patients of 6 sites (30 each, planted site effects) with a 0/1 event and two case-mix covariates."""
    rng = np.random.default_rng(14)
    site = np.repeat(["A", "B", "C", "D", "E", "F"], 30)
    age = np.round(rng.normal(60, 12, site.size), 1)
    female = rng.integers(0, 2, site.size)
    effect = np.repeat([-0.8, -0.3, 0.0, 0.2, 0.5, 1.0], 30)
    event = rng.binomial(1, 1 / (1 + np.exp(-(-1 + 0.04 * (age - 60) + effect))))
    return pd.DataFrame({"site_id": site, "age": age, "female": female, "event": event})


_KIND = {"E": "error", "W": "warning", "R": "result", "?": "?"}


def _cusum_patients():
    """Patients of 3 sites (20 each) in time order, with a 0/1 event and its predicted risk."""
    rng = np.random.default_rng(21)
    risk = np.round(rng.uniform(0.05, 0.4, 60), 3)
    return pd.DataFrame({"site_id": np.repeat(["A", "B", "C"], 20), "period": np.tile(np.arange(1, 21), 3),
                         "event": rng.binomial(1, risk), "risk": risk})


def T(function, outcomes, data, call, value, key, na=None, argument="data", mixed=None, passthrough=False):
    """Add a target; ``outcomes`` has one letter per category of :data:`CATEGORIES`, in order:
    E (error), W (warning), R (result) or - (not applicable, with its reason in ``na``)."""
    na = dict(na or {})
    assert len(outcomes) == len(CATEGORIES), function
    expect = {c: _KIND[o] for c, o in zip(CATEGORIES, outcomes) if o != "-"}
    assert set(na) == {c for c, o in zip(CATEGORIES, outcomes) if o == "-"}, function
    TARGETS.append(Target(function, data, call, value, key, expect, na, argument, mixed, passthrough))


S = sa
T("meta_analysis", 'EEERWEEREE', meta_df, lambda d: S.meta_analysis(d), "yi", "site")
T("meta_regression", 'EEERWEEREE', lambda: meta_df(k=8), lambda d: S.meta_regression(d, mods=["x"]), "yi", "site")
T("multilevel_meta_analysis", 'EEEWWEEWEE', lambda: meta_df(k=8).assign(region=list("aabbccdd")),
  lambda d: S.multilevel_meta_analysis(d, group=["region", "site"]), "yi", "region")
T("component_analysis", 'EEERWEEREE', _landenberger,
  lambda d: S.component_analysis(d, components=["cbt.angerctrl", "cbt.intpprbsolv"]), "yi", "study")
T("effect_sizes", 'EERRWEWREE', _binary, lambda d: S.effect_sizes(d, "OR", ai="a", bi="b", ci="c", di="d"), "a", "study")
T("icc", 'EEEEEEEEEE', ratings, lambda d: S.icc(d, "t", "r", "y"), "y", "t")
T("icc_mixed", 'EEEEEEEEEE', ratings, lambda d: S.icc_mixed(d, "t", "r", "y"), "y", "t")
T("fleiss_kappa", 'EEEEEERREE', ratings, lambda d: S.fleiss_kappa(d, "t", "r", "y"), "y", "t")
T("krippendorff_alpha", 'EEEEWERREE', ratings, lambda d: S.krippendorff_alpha(d, "t", "r", "y", n_boot=0), "y", "t")
T("cohen_kappa", 'EEEWEEWWEE', _kappa, lambda d: S.cohen_kappa(d, "a", "b"), "a", None, mixed="a")
T("mixed_model", 'EEEEWEEEEE', mm_df, lambda d: S.mixed_model(d, "y ~ x", group="site"), "y", "site")
T("mixed_model_from_summary", 'EEEWEEEEEE', _summary, lambda d: S.mixed_model_from_summary(d, "y ~ x", group="site"),
  "sp__y__y", "site")
T("site_effects_from_summary", 'EERREEEREE', _summary, lambda d: S.site_effects_from_summary(d, "y ~ x", "x", site="site"),
  "sp__x__y", "site")
T("summarize", 'EERRWEEREE', mm_df, lambda d: S.summarize(d, by="site", outcome="y", covariates=["x"]), "y", "site")
T("staggered_did", 'EEEWEEEWEE', _panel, lambda d: S.staggered_did(d, "y", "unit", "time", "cohort", n_boot=0), "y", "unit")
T("twfe_did", 'EEEREEEWEE', _panel, lambda d: S.twfe_did(d, "y", "unit", "time", "cohort"), "y", "unit")
T("bacon_decomposition", 'EEEREEEREE', _panel, lambda d: S.bacon_decomposition(d, "y", "unit", "time", "cohort"), "y", "unit")
T("interrupted_time_series", 'EEEEWEEEEE', _its, lambda d: S.interrupted_time_series(d, "t", "y", 13), "y", None, mixed="t")
T("stepped_wedge_analysis", 'EEEEWEEEEE', _sw_frame, lambda d: S.stepped_wedge_analysis(d, "y", "unit", "period", "treatment"),
  "y", "unit")
T("rollout_design", 'EERRREEEEE', lambda: tbl("sites"), lambda d: S.rollout_design(d), "adoption_period", "site_id")
T("control_chart", 'EEWWWEEREE', _its, lambda d: S.control_chart(d, "y", "i", x="t"), "y", None, mixed="t")
T("inequality", 'EEEEEEEEEE', _quintiles, lambda d: S.inequality(d, "p", "quintile", "pop", events="events", n="n"), "p", "quintile")
T("equity_effects", 'EEEEWEEEEE', _health, lambda d: S.equity_effects(d, "mean", before=[1, 2], after=[7, 8]), "mean", "site_id")
T("fidelity_index", 'EEREEEEREE', lambda: tbl("fidelity_ratings"), lambda d: S.fidelity_index(d, tbl("components")), "score",
  "site_id")
T("session_adherence", 'EEREEEEREE', lambda: tbl("fidelity_ratings"), lambda d: S.session_adherence(d, tbl("components")), "score",
  "site_id")
T("fidelity_by", 'EERRREEREE', _fidelity, lambda d: S.fidelity_by(d, sites=tbl("sites")), "adherence", "site_id")
T("fidelity_drift", 'EERRWEEREE', _fidelity, lambda d: S.fidelity_drift(d), "adherence", "site_id")
T("fidelity_dose_response", 'EEEEWEEEEE', _ho_y,
  lambda d: S.fidelity_dose_response(d, _fidelity(), tbl("sites"), indicator="HO_Y", inference="cluster"),
  "mean", "site_id")
T("adaptation_effects", 'EEEEWEEEEE', _ho_y,
  lambda d: S.adaptation_effects(d, tbl("adaptations"), tbl("sites"), indicator="HO_Y", inference="cluster"),
  "mean", "site_id")
T("site_effects", 'EEERWEEREE', _ho_y, lambda d: S.site_effects(d, tbl("sites"), "HO_Y"), "mean", "site_id")
T("voltage_drop", 'EEERWEEWEE', lambda: S.site_effects(_ho_y(), tbl("sites"), "HO_Y"),
  lambda d: S.voltage_drop(data=d, levels=["pilot", "scale-up"]), "yi", "site_id")
T("plot_fidelity", 'EERRREEREE', _fidelity, lambda d: S.plot_fidelity(d), "fidelity_index", "site_id")
T("plot_adaptation_timeline", 'ERRREEEEEE', lambda: tbl("adaptations"), lambda d: S.plot_adaptation_timeline(d, sites=tbl("sites")),
  "period", "site_id")
T("summarize_adaptations", 'EERREEEEEE', lambda: tbl("adaptations"), lambda d: S.summarize_adaptations(d, sites=tbl("sites")),
  "period", "site_id")
T("validate_adaptations", 'ERRREEEEEE', lambda: tbl("adaptations"), lambda d: S.validate_adaptations(d), "period", "site_id", passthrough=True)
T("score_assessment", 'EERWREEEEE', lambda: tbl("assessments"), lambda d: S.score_assessment(d, "ISAT", n_boot=0), "score",
  "innovation")
T("reaim", 'EEWWEEEREE', lambda: tbl("delivery"), _with("delivery")(S.reaim), "reached", "site_id", argument="delivery")
T("quintuple_aim_panel", 'EERREEEREE', lambda: tbl("outcomes"), _with("outcomes")(S.quintuple_aim_panel), "mean", "site_id",
  argument="outcomes")
T("indicator_funnel", 'EEEREEEREE', lambda: tbl("outcomes"),
  _with("outcomes")(lambda t: S.indicator_funnel(t, indicator="EF_COST")), "mean", "site_id", argument="outcomes")
T("validate_table", 'EERREEEERE', lambda: tbl("sites"), lambda d: S.validate_table(d, "sites"), "size", "site_id", argument="sites", passthrough=True)
T("validate_tables", 'EEEREEEEEE', lambda: tbl("sites"), _with("sites")(S.validate_tables), "size", "site_id", argument="sites", passthrough=True)
T("suppress_small_cells", 'ERRRWEEEEE', _cells, lambda d: S.suppress_small_cells(d, "n", "rate", by="region"), "n", "region")
T("check_no_identifiers", 'ERRRRRRRRR', _cells, lambda d: S.check_no_identifiers(d), "rate", "region", passthrough=True)
T("deadoption_times", 'EEEREEEEEE', lambda: tbl("sites"),
  lambda d: S.deadoption_times(d, last_period=8, deadoption=_stops()), "adoption_period", "site_id", argument="data")
T("kaplan_meier", 'EERREERREE', _survival, lambda d: S.kaplan_meier(d, by="wave"), "time", "wave")
T("cumulative_incidence", 'EERREERREE', _survival, lambda d: S.cumulative_incidence(d, event="cause", by="wave"),
  "time", "wave")
T("concordance", 'EEWREERREE', _survival, lambda d: S.concordance(d, predictor="score"), "score", "site_id")
T("support_withdrawal_effects", 'EEEWWEEREE', _withdrawal_panel,
  lambda d: S.support_withdrawal_effects(d, outcome="y", n_boot=19, seed=1), "y", "site_id")
T("cox_model", 'EEEEWEEEEE', _survival, lambda d: S.cox_model(d, ["score"], time="time", event="event"), "score",
  "site_id")
T("scale_reliability", 'EEEEREEEEE', _prom_items,
  lambda d: S.scale_reliability(d, items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1, scale_max=5), "q1", None,
  mixed="q2")
T("scale_omega", 'EEEEREEEEE', lambda: _prom_items().assign(q3=[2, 3, 3, 4, 2, 1, 4, 2], q4=[5, 3, 3, 1, 4, 3, 2, 5]),
  lambda d: S.scale_omega(d, items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1, scale_max=5), "q1", None,
  mixed="q2")
T("score_scale", 'EERRREEEEE', _prom_items,
  lambda d: S.score_scale(d, items=["q1", "q2", "q3", "q4"], reverse=["q3"], scale_min=1, scale_max=5), "q1", None,
  mixed="q2")
T("prem_by_site", 'EEREWEEEEE', _prem_patients,
  lambda d: S.prem_by_site(d, score="score", covariates=["age"], threshold=3), "score", "site_id")
T("institutional_funnel", 'EEEREEEEEE', _funnel_units, lambda d: S.institutional_funnel(d), "events", "site_id")
T("risk_adjusted_cusum", 'EERREEEREE', _cusum_patients,
  lambda d: S.risk_adjusted_cusum(d, odds_ratio=(2, 0.5), limit=(2.0, 2.0)), "risk", "site_id")
T("indirect_standardization", 'EEREWEEEEE', _casemix_patients,
  lambda d: S.indirect_standardization(d, outcome="event", covariates=["age", "female"]), "age", "site_id")
T("reliability_adjusted_values", 'EEEEWEEEEE', _casemix_patients,
  lambda d: S.reliability_adjusted_values(d, outcome="event", covariates=["age", "female"], n_draws=200, seed=1), "age",
  "site_id")
T("write_table_atomic", 'ERRRRRRRRE', _cells, lambda d: S.write_table_atomic(d, tmpdir() / "t.csv"), "rate", "region", passthrough=True)
T("classify_fidelity", 'ERRRREEREE', lambda: _fidelity()[["fidelity_index"]], lambda d: S.classify_fidelity(d["fidelity_index"]
  if isinstance(d, pd.DataFrame) else d), "fidelity_index", None, argument="values",
  mixed="fidelity_index")
T("runs_analysis", 'EEWWWERREE', _its, lambda d: S.runs_analysis(d["y"] if isinstance(d, pd.DataFrame) else d), "y", None,
  argument="values", mixed="y")


# ----------------------------------------------------------------------------------------------
# observing one call
# ----------------------------------------------------------------------------------------------
@dataclass
class Observed:
    kind: str  # "error", "warning", "result" or "raw" (an exception that is not a ScaleupDataError)
    message: str  # the error's text, or the package warnings' texts
    foreign_warnings: list[str]  # warnings that are not the package's own (numpy, pandas, matplotlib ...)
    nan: int | None  # NaN in the numbers of the result (None: no table to count in)


def result_frame(result) -> pd.DataFrame | None:
    """The numbers of a result: the DataFrame itself, or its ``to_frame()``."""
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame()
    to_frame = getattr(result, "to_frame", None)
    return to_frame() if callable(to_frame) else None


def nan_count(result) -> int | None:
    frame = result_frame(result)
    if frame is None:
        return None
    numbers = frame.select_dtypes("number")
    return int(np.isnan(numbers.to_numpy(dtype=float)).sum()) if numbers.shape[1] else 0


def observe(call, data) -> Observed:
    """Call ``call(data)`` recording every warning; classify what came back."""
    import warnings

    import matplotlib.pyplot as plt

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            result = call(data)
        except sa.ScaleupDataError as exc:
            kind, message, nan = "error", str(exc), None
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything raw
            kind, message, nan = "raw", f"{type(exc).__name__}: {exc}", None
        else:
            own = [str(w.message) for w in record if issubclass(w.category, sa.ScaleupWarning)]
            kind, message, nan = ("warning" if own else "result"), " | ".join(own), nan_count(result)
        finally:
            plt.close("all")
    foreign = [f"{w.category.__name__}: {w.message}" for w in record if not issubclass(w.category, sa.ScaleupWarning)]
    return Observed(kind, message, foreign, nan)


@lru_cache(maxsize=None)
def baseline_nan(function: str) -> int | None:
    """NaN in the result of ``function`` on its valid input (a damaged input may not add any silently)."""
    target = next(t for t in TARGETS if t.function == function)
    return observe(target.call, target.data()).nan
