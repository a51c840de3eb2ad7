# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Step 3 — Scale-up plan: rolling out across the 18 health regions
#
# **Question.** If the innovation is rolled out region by region across Quebec's 18 RSS, how should the
# waves be organised so that the evaluation can tell whether it still works at scale? How many waves,
# how many patients per region and quarter, and what is the smallest effect we could detect?
#
# **For whom.** The team writing the scale-up plan and its evaluation protocol, and the funders who
# must know whether the evaluation is informative before committing to it.
#
# **Design.** Rolling out in waves, with every region eventually receiving the innovation, is a
# *stepped-wedge* cluster design (Hussey & Hughes 2007). Each region is a cluster; each quarter is a
# period; at each step a group of regions switches from usual care to the innovation.

# %% tags=["parameters"]
data_dir = None  # folder of the input tables; None = the embedded default dataset (simulated)
seed = 20261123
figures_dir = None  # set by `make report` to save figures under reports/figures/
tables_dir = None  # set by `make report` to save key tables (CSV) under reports/tables/

# %%
import matplotlib.pyplot as plt
import pandas as pd

import scaleup_analysis as sa
from scaleup_analysis.notebook import load_or_simulate, setup_display
from scaleup_analysis.reporting import save_figure, save_table

setup_display(precision=3)  # pandas display options; warnings printed as one line

# %% [markdown]
# ## 1. The rollout schedule
#
# Eighteen regions in six waves of three regions, after one baseline quarter: seven quarters in all.

# %%
design = sa.stepped_wedge_design(n_clusters=18, n_steps=6)
print(design.summary())

# %%
ax = design.plot_schedule()
ax.set_title("Stepped-wedge rollout: 18 regions, 6 waves (shaded = innovation delivered)")
save_figure(ax.figure, "03_schedule", figures_dir)
plt.show()

# %% [markdown]
# ## 2. Power under realistic between-region differences
#
# The power depends on the effect we want to detect, on the outcome's variability and on how much
# regions differ at baseline: the intra-cluster correlation (ICC). Primary-care outcomes typically have
# ICCs between 0.01 and 0.10. The outcome here is standardized (SD = 1), so effects are in SD units;
# `m` is the number of patients measured per region and quarter.

# %%
scenarios = [
    {"icc": icc, "m": m, "effect": effect}
    for icc in (0.01, 0.05, 0.10)
    for m in (25, 100)
    for effect in (0.10, 0.20)
]
power_table = pd.DataFrame(
    [
        {
            **s,
            **sa.stepped_wedge_power(design, s["effect"], sigma2=1.0, icc=s["icc"], m=s["m"])
            .to_frame()[["power", "se", "detectable_effect"]]
            .iloc[0]
            .to_dict(),
        }
        for s in scenarios
    ]
)
save_table(power_table, "03_power_scenarios", tables_dir)
power_table.round(3)

# %% [markdown]
# **Reading.** The number of patients measured per region and quarter matters far more than the ICC.
# With 100 patients, an effect of 0.1 SD is detected with about 89–91 % power whatever the ICC, because
# a stepped wedge compares each region with itself before and after its switch; with 25 patients the
# power drops to 36–43 %. `detectable_effect` (the smallest effect detected with 80 % power at the
# 5 % level) is about 0.09 SD with 100 patients and 0.16–0.17 SD with 25: if the evaluation must see a
# voltage drop to half of a modest pilot effect, measure at least 100 patients per region-quarter.

# %% [markdown]
# ## 3. Fewer, larger waves, or more, smaller waves?
#
# Organisations often prefer fewer waves. We compare 3, 6 and 9 waves for the same 18 regions
# (ICC = 0.05, 50 patients per region-quarter, effect = 0.15 SD), and a design in which the quarter of
# transition is not measured (an *incomplete* stepped wedge, common when teams need a quarter to
# start up).

# %%
import numpy as np

designs = {f"{k} waves": sa.stepped_wedge_design(18, k) for k in (3, 6, 9)}
six = designs["6 waves"]
transition = np.zeros((six.n_clusters, six.n_periods), dtype=bool)
for cluster in range(six.n_clusters):
    first_exposed = int(np.argmax(six.treatment[cluster] == 1))
    transition[cluster, first_exposed] = True  # the start-up quarter is not measured
designs["6 waves, transition quarter unmeasured"] = sa.stepped_wedge_design(18, 6, incomplete=transition)

comparison = pd.DataFrame(
    {
        name: sa.stepped_wedge_power(d, 0.15, sigma2=1.0, icc=0.05, m=50)
        .to_frame()[["power", "se", "detectable_effect"]]
        .iloc[0]
        for name, d in designs.items()
    }
).T.assign(quarters=[d.n_periods for d in designs.values()])
comparison.round(3)

# %% [markdown]
# **Reading.** More waves give more power (more before/after contrasts within regions) but lengthen
# the rollout; leaving the transition quarter unmeasured costs some power. The plan should weigh this
# against the regions' readiness to start.

# %% [markdown]
# ## 4. Checking the formula by simulation
#
# The closed-form power of Hussey & Hughes assumes known variance components. A simulation of 1,000
# rollouts of the six-wave design gives an independent check.

# %%
closed = sa.stepped_wedge_power(design, 0.10, sigma2=1.0, icc=0.05, m=50)
simulated = sa.stepped_wedge_power_sim(design, 0.10, sigma2=1.0, icc=0.05, m=50, n_sim=1000, seed=seed)
pd.DataFrame(
    {"closed form": [closed.power], "simulation (1,000 rollouts)": [simulated.power]},
    index=["power"],
).round(3)

# %% [markdown]
# ## 5. A binary outcome: avoidable emergency visits
#
# For a binary outcome such as an avoidable emergency-department visit within the quarter (baseline
# 20 %), how large a reduction can the six-wave plan detect with 100 patients per region-quarter and a
# between-region SD of 2 percentage points?

# %%
binary = sa.stepped_wedge_power(
    design, -0.03, family="binomial", p0=0.20, tau2=0.02**2, m=100
)
binary.to_frame()[["power", "se", "detectable_effect"]].round(3)

# %% [markdown]
# ## 6. The embedded scale-up: its actual rollout
#
# The embedded province-wide dataset (`simulate_scaleup`) follows a staggered plan: a few pilot sites
# first, then whole regions wave by wave, and a few sites that never adopt during the observation
# window (they serve as comparisons for the staggered difference-in-differences of step 5).

# %%
tables = load_or_simulate(data_dir, seed)
sites = tables["sites"]
sites.groupby(["phase", "cohort"], dropna=False, observed=True).agg(
    sites=("site_id", "size"), regions=("rss_code", "nunique"), adoption_period=("adoption_period", "min")
)

# %% [markdown]
# **Conclusion for step 3.** A six-wave stepped-wedge rollout over seven quarters, with at least 50–100
# patients measured per region and quarter, can detect effects of about 0.09–0.12 SD under realistic ICCs —
# small enough to see a voltage drop to half of the pilot effect. Keeping a few comparison sites that
# adopt late also allows the staggered difference-in-differences analysis used in step 5.
