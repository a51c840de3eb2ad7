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
# # Step 2 — Scale-up potential: is the innovation ready to scale?
#
# **Question.** Experts rated the candidate innovation(s) with a scale-up potential instrument such as
# the Intervention Scalability Assessment Tool (ISAT; Milat et al. 2020): the problem, the intervention,
# its context, evidence, costs, fidelity and adaptation, reach, the delivery setting and workforce, the
# implementation infrastructure, sustainability. Which innovation is ready, which needs work first, and
# do the raters agree?
#
# **For whom.** Steering committees deciding what to scale, and the teams preparing the case.
#
# **Data.** The study's `assessments` table: one score per instrument, innovation, rater and item.

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
report = sa.StepReport(study, 2, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown]
# ## 1. Domain and overall scores
#
# Each domain score is the mean of its answered items (missing answers are reported, never counted as
# zero), first per rater and then averaged across raters; the overall score is the mean of the domains.

# %%
scores = report.run("scores")

# %% [markdown]
# ## 2. Do the raters agree?
#
# Krippendorff's alpha (ordinal) across the items of each innovation measures how far the raters'
# item-level judgements agree beyond chance.

# %%
agreement = report.run("agreement")

# %% [markdown]
# ## 3. Recommendation
#
# The readiness categories apply the thresholds stored in the instrument file to the overall score.
# A category is given only when the raters agree well enough; otherwise the ratings must first be
# discussed in a consensus meeting.

# %%
recommendation = report.run("recommendation")

# %% [markdown]
# ## Sections of this step

# %%
summary = report.close()
