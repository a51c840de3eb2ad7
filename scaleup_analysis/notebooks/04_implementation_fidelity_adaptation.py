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
# # Step 4 — Implementation: fidelity and adaptation
#
# **Question.** As the innovation spreads to new sites, are its core components (its "active
# ingredients") still delivered? Can we trust the fidelity ratings? Which local adaptations were made,
# and did they help or harm?
#
# **For whom.** Implementation teams and regional coordinators who decide where to send support, and
# researchers who must explain why effects differ between sites.
#
# **Data.** The study's `components`, `fidelity_ratings` (observed sessions scored by raters),
# `delivery` (sessions, people reached) and FRAME-coded `adaptations`, with the primary indicator.

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
report = sa.StepReport(study, 4, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown]
# ## 1. Fidelity by region
#
# *Adherence* is the weighted share of the core components delivered in a session (each component's
# score rescaled to 0–1 on its own scale, averaged over raters). *Dose* is sessions delivered over
# sessions planned, *coverage* is people reached over people eligible. The composite **fidelity index**
# averages the three (Carroll et al. 2007).

# %%
fidelity = report.run("fidelity")

# %% [markdown]
# ## 2. Fidelity drift: which sites are slipping?
#
# For each site, a straight line through its adherence over time; a site is flagged when the whole
# confidence interval of its slope is below zero, or when adherence falls for several periods in a row.

# %%
drift = report.run("fidelity_drift")

# %% [markdown]
# ## 3. Can we trust the fidelity ratings?
#
# When sessions are rated by several raters, the mixed-model intra-class correlation (which allows
# incomplete designs) and Krippendorff's alpha (ordinal, any number of raters per session) measure how
# far the scores depend on who rated.

# %%
reliability = report.run("rater_reliability")

# %% [markdown]
# ## 4. Which adaptations were made? (FRAME)
#
# Every adaptation is documented with the FRAME coding scheme (Wiltsey Stirman et al. 2019): when, by
# whom, what was modified, at which level, and whether it kept the core components intact
# (*fidelity-consistent*) or not (*fidelity-inconsistent*).

# %%
adaptations = report.run("adaptations")

# %% [markdown]
# ## 5. Did adaptations help or harm?
#
# A mixed model of each site's primary indicator on its cumulative numbers of fidelity-consistent,
# fidelity-inconsistent and unknown adaptations, with period effects, site random effects and a
# site-specific adoption effect, so that only changes within sites are used.

# %%
effects = report.run("adaptation_effects")

# %% [markdown]
# ## 6. Does more fidelity mean more effect?
#
# The association between a site-period's rated adherence and its primary indicator, within sites.

# %%
dose = report.run("dose_response")

# %% [markdown]
# ## Sections of this step

# %%
summary = report.close()
