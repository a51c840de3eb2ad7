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
# # Step 3 — Scale-up plan: the rollout as a stepped-wedge design
#
# **Question.** The innovation was rolled out in waves. Seen as a stepped-wedge design (Hussey & Hughes
# 2007), what effect can such a rollout detect, and would fewer or more waves have done better?
#
# **For whom.** The team writing the next scale-up plan and its evaluation protocol, and the funders
# who must know whether the evaluation is informative.
#
# **Data.** The study's `sites` (adoption periods, waves, comparison sites) and the baseline values of
# its primary indicator (`outcomes`).

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
report = sa.StepReport(study, 3, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown]
# ## 1. The rollout as it happened
#
# Pilot sites, scale-up waves and sites that never adopted, and the schedule of who delivered the
# innovation when.

# %%
rollout = report.run("rollout")

# %% [markdown]
# ## 2. What effect can this rollout detect?
#
# The detectable effect depends on how much the primary indicator varies between units (the
# intra-cluster correlation, ICC, estimated here from the baseline data), on how many people are
# measured per unit and period, and on the schedule itself.

# %%
detectable = report.run("detectable_effect")

# %% [markdown]
# ## 3. Fewer or more waves?
#
# The same adopting units rolled out in 2 to 6 waves, after one baseline period.

# %%
waves = report.run("waves")

# %% [markdown]
# ## 4. Checking the formula by simulation
#
# The closed form assumes known variance components; simulated rollouts give an independent check.

# %%
check = report.run("simulation_check")

# %% [markdown]
# ## Sections of this step

# %%
summary = report.close()
