# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Step 5 — Monitoring the impacts of the scale-up
#
# **Question.** Now that the innovation is delivered: did it keep its effect at scale or suffer a
# "voltage drop"? What happened to the five aims — health outcomes, user experience, efficiency and
# cost, care-team well-being, equity — and did any region suffer a deleterious effect? How much do
# sites and regions differ, and did the scale-up widen or narrow social gaps?
#
# **For whom.** Monitoring committees and regional managers, who need early warnings and a fair
# account of results region by region.
#
# **Data.** The study's `outcomes` (indicators by site and period), `sites`, and, when present,
# `encounters` (patient-level) and `delivery`.

# %% tags=["parameters"]
data_dir = None  # the study folder; None = the embedded default study (simulated)
seed = None  # None = the study's own seed
figures_dir = None  # set by the report runner: figures are saved there
tables_dir = None  # set by the report runner: key tables (CSV) are saved there
status_dir = None  # set by the report runner: status of each section for the run summary

# %%
import scaleup_analysis as sa
from scaleup_analysis.notebook import setup_display

setup_display()
study = sa.load_study(data_dir, seed=seed)
report = sa.StepReport(study, 5, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown]
# ## 1. Quintuple aim: did any region get worse?
#
# For each region and indicator, the change from the baseline to the follow-up periods is compared
# with the change at the comparison sites over the same periods (a difference-in-differences, which
# removes trends shared by all sites). Changes are oriented so that positive = improvement; a region is
# flagged when an indicator got significantly worse after correction for the number of tests.

# %%
harm = report.run("deleterious_effects")

# %% [markdown]
# ## 2. Control charts: when did it start?
#
# For a flagged region and indicator, a control chart with limits computed on the baseline periods,
# and Anhøj's run-chart rules for non-random patterns.

# %%
charts = report.run("control_charts")

# %% [markdown]
# ## 3. Did the innovation work at scale?
#
# Sites adopted at different times, so a naive before/after comparison is confounded by time. The
# Callaway & Sant'Anna (2021) estimator compares each adoption cohort with sites that had not yet
# adopted, period by period, and aggregates by time since adoption (an event study). Estimates before
# adoption near zero support the comparison.

# %%
did = report.run("effect_at_scale")

# %% [markdown]
# The usual two-way fixed-effects regression averages many comparisons, some of which use sites that
# had already adopted as controls; the Goodman-Bacon decomposition shows their weight.

# %%
twfe = report.run("twfe_comparison")

# %% [markdown]
# ## 4. How much do sites and regions differ?
#
# A mixed model of the patient-level outcome with a random intercept per site gives the share of
# variation between sites; a multilevel meta-analysis of the site-level effects separates the
# heterogeneity of the *effect* between regions and between sites within regions.

# %%
variation = report.run("site_variation")

# %%
heterogeneity = report.run("effect_heterogeneity")

# %% [markdown]
# ## 5. Voltage drop: did the effect shrink at scale?
#
# The site-level effects of the pilot sites and of the scale-up sites are compared by a subgroup
# meta-regression; the ratio scale-up / pilot comes with a Fieller confidence interval.

# %%
voltage = report.run("voltage_drop")

# %% [markdown]
# ## 6. Equity: did the scale-up widen or narrow gaps?
#
# The effect of the innovation by deprivation quintile of the sites, its trend across quintiles, and
# the change in the gap between quintiles (slope index of inequality).

# %%
equity = report.run("equity")

# %% [markdown]
# ## 7. RE-AIM summary
#
# Reach, adoption, implementation (cost) and maintenance of the innovation, for the province and by
# region.

# %%
reaim = report.run("reaim")

# %% [markdown]
# ## Sections of this step

# %%
summary = report.close()
