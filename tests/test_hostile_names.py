"""Names from a user's data are data, never code (issue 16, "names from data are never evaluated").

* A column name used as a moderator reaches patsy only through a safe alias: a name written to run
  Python when evaluated creates no file, and the coefficient keeps the column's own name (estimates
  equal to those of the same column under a plain name).
* Text from data drawn in a figure is shown as written: a ``$`` never starts matplotlib mathtext (a
  name such as ``Programme 5$ à 10$`` keeps its dollar signs, one with ``$\\tilde$`` does not crash).
* The report runner runs only the package's own notebooks, whatever the current folder holds.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text as TextArtist  # noqa: E402

import scaleup_analysis as sa  # noqa: E402
from scaleup_analysis.reporting.runner import notebook_paths  # noqa: E402

PACKAGE = Path(sa.__file__).resolve().parent


def _hostile(flag: Path) -> list[str]:
    return [
        f'x") + __import__("os").system("touch {flag}") + Q("x',
        f"__import__('os').system('touch {flag}')",
        'a + b ~ c | "d"',
        "C(arm)",
        "I(dose ** 2)",
    ]


def _evidence() -> pd.DataFrame:
    return pd.DataFrame({"yi": [0.10, 0.30, 0.35, 0.65, 0.45, 0.15, 0.50, 0.20, 0.40, 0.05],
                         "vi": [0.03, 0.03, 0.05, 0.01, 0.05, 0.02, 0.04, 0.02, 0.03, 0.02],
                         "dose": [1, 2, 2, 4, 3, 1, 3, 2, 3, 1],
                         "arm": list("ababababab")})


@pytest.mark.parametrize("i", range(5))
def test_moderator_names_are_not_evaluated(tmp_path, i):
    flag = tmp_path / "F"
    name = _hostile(flag)[i]
    data = _evidence()
    data[name] = data["dose"]
    res = sa.meta_regression(data, mods=[name, "arm"])
    assert not flag.exists(), f"the moderator name {name!r} ran as code"
    assert list(res.coef.index) == ["intrcpt", name, "arm[T.b]"]
    plain = sa.meta_regression(data, mods=["dose", "arm"])
    np.testing.assert_allclose(res.coef["estimate"].to_numpy(), plain.coef["estimate"].to_numpy(), rtol=0, atol=0)
    new = pd.DataFrame({name: [1.0, 2.5], "arm": ["a", "b"]})
    np.testing.assert_allclose(res.predict(new)["pred"].to_numpy(),
                               plain.predict(new.rename(columns={name: "dose"}))["pred"].to_numpy(), rtol=0, atol=0)
    assert not flag.exists()


def test_predict_names_the_missing_moderator():
    res = sa.meta_regression(_evidence(), mods=["dose"])
    with pytest.raises(sa.ScaleupDataError, match="'dose'"):
        res.predict(pd.DataFrame({"other": [1.0]}))


DOLLARS = ["Programme 5$ à 10$", r"Site $\tilde$ A", "$x$"]


def _drawn_texts(fig) -> list[str]:
    fig.savefig(io.BytesIO(), format="png")  # a mathtext parse error would be raised here
    return [t.get_text() for t in fig.findobj(TextArtist) if t.get_visible()]


def _shows_literally(texts: list[str], name: str) -> bool:
    """``name`` appears with every ``$`` escaped, so matplotlib draws it as written."""
    escaped = name.replace("$", r"\$")
    return any(escaped in t for t in texts)


def _forest(name):
    data = _evidence().assign(study=[name] + [f"Study {i}" for i in range(1, 10)])
    return sa.meta_analysis(data, slab="study").plot_forest().figure


def _bubble(name):
    data = _evidence().rename(columns={"dose": name})
    return sa.meta_regression(data, mods=[name]).plot_bubble(mod=name).figure


def _control_chart(name):
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"period": np.tile(np.arange(1, 13), 2), "y": rng.normal(size=24),
                         "unit": [name] * 12 + ["Other"] * 12})
    axes = sa.control_chart(data, "y", chart="i", x="period", by="unit").plot()  # one panel per unit
    return np.asarray(axes).flat[0].figure


#: figures that show a name from data: a study label, a moderator column, a facet (unit) of a chart
DRAWERS = {"forest_study_label": _forest, "bubble_moderator": _bubble, "control_chart_facet": _control_chart}


@pytest.mark.parametrize("name", DOLLARS)
@pytest.mark.parametrize("figure", sorted(DRAWERS))
def test_names_from_data_are_drawn_as_written(figure, name):
    fig = DRAWERS[figure](name)
    try:
        assert _shows_literally(_drawn_texts(fig), name), f"{figure}: {name!r} not drawn as written"
    finally:
        plt.close(fig)


def test_report_runs_only_the_package_notebooks(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_evidence_of_effectiveness.ipynb").write_text("{}", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    paths = notebook_paths()
    assert sorted(paths) == [1, 2, 3, 4, 5]
    for p in paths.values():
        assert Path(os.path.realpath(p)).is_relative_to(PACKAGE), p


def _landenberger():
    return sa.effect_sizes(sa.load_dataset("landenberger2005"), "OR", ai="n.cbt.non", bi="n.cbt.rec",
                           ci="n.ctrl.non", di="n.ctrl.rec")


def _numbers(res) -> np.ndarray:
    frame = res.to_frame() if hasattr(res, "to_frame") else res
    return frame.select_dtypes("number").to_numpy(dtype=float)


@pytest.mark.parametrize("i", range(5))
def test_every_function_taking_column_names_keeps_them_data(tmp_path, i):
    """Column names that the other model-building functions take (components, phase, effect
    modifiers, covariates, grouping columns) reach no formula as code: same numbers as under a plain
    name, and the file the name would create is never created."""
    flag = tmp_path / "F"
    name = _hostile(flag)[i]
    sim = sa.simulate_scaleup(seed=5, n_sites=36, n_periods=8, patients_per_site_period=4).tables
    o = sim["outcomes"][sim["outcomes"]["indicator_id"] == "HO_Y"]
    fid = sa.fidelity_index(sim["fidelity_ratings"], sim["components"], sim["delivery"])
    lb = _landenberger()
    se = sa.site_effects(o, sim["sites"], "HO_Y")
    enc = sim["encounters"]
    calls = [
        (lambda d, c: sa.component_analysis(d, components=[c, "cbt.intpprbsolv"]), lb, "cbt.angerctrl"),
        (lambda d, c: sa.voltage_drop(data=d, phase=c, levels=["pilot", "scale-up"]), se, "phase"),
        (lambda d, c: sa.fidelity_dose_response(o, fid, d, indicator="HO_Y", inference="cluster",
                                                effect_modifiers=[c]), sim["sites"], "rurality"),
        (lambda d, c: sa.summarize(d, by=["site_id", "period"], outcome="y", covariates=[c]), enc, "treated"),
        (lambda d, c: sa.staggered_did(d, "y", c, "period", "adoption_period", n_boot=0),
         enc.groupby(["site_id", "period"], as_index=False)["y"].mean().merge(
             sim["sites"][["site_id", "adoption_period"]], on="site_id").fillna({"adoption_period": 0}), "site_id"),
    ]
    for call, data, column in calls:
        plain = call(data, column)
        if column == "treated" and "__" in name:  # summarize reserves '__' for its sp__a__b columns: said, not run
            with pytest.raises(sa.ScaleupDataError, match="contains '__'"):
                call(data.rename(columns={column: name}), name)
            continue
        res = call(data.rename(columns={column: name}), name)
        assert not flag.exists(), f"the column name {name!r} ran as code"
        np.testing.assert_array_equal(_numbers(res), _numbers(plain))
    assert not flag.exists()
