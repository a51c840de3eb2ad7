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
# # Step 1 — Evidence of effectiveness
#
# **Question.** Before scaling an innovation up, is there solid evidence that it works? How much does
# its effect vary from one setting to another, and what effect should a *new* site expect?
#
# **For whom.** Researchers and decision makers preparing a scale-up decision. Every result below is
# followed by findings written from the numbers of this run.
#
# **Data.** The study's `evidence` table: one row per published or pilot study of the innovation, with
# its effect size `yi` (positive = in favour of the innovation) and sampling variance `vi`, and optional
# moderators named in `study.toml`.

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
report = sa.StepReport(study, 1, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown]
# ## 1. Pooled effect and heterogeneity
#
# A random-effects meta-analysis treats each study's true effect as drawn from a distribution of
# effects across settings. It is estimated by restricted maximum likelihood (REML), with the
# DerSimonian–Laird estimator as a sensitivity analysis. The **prediction interval** is the range of
# effects a new setting could expect; it is what matters for a scale-up.

# %%
pooled = report.run("pooled_effect")

# %% [markdown]
# ## 2. Could small-study effects bias the pooled estimate?
#
# A funnel plot shows each study's effect against its precision; Egger's regression test checks
# whether less precise studies report systematically different effects (a hint of publication bias).
# It is run only with ten or more studies.

# %%
funnel = report.run("small_study_effects")

# %% [markdown]
# ## 3. Moderators of the effect
#
# A meta-regression tests whether features of the studies named in `study.toml` (for example
# tailoring to the setting, or the caseload of the people delivering it) go with larger or smaller
# effects. A permutation test gives p-values that do not rely on large-sample approximations.

# %%
moderators = report.run("moderators")

# %% [markdown]
# ## 4. Does any single study drive the result?
#
# Leave-one-out estimates and metafor's influence diagnostics show whether the conclusion depends on
# one study.

# %%
influence = report.run("influence")

# %% [markdown]
# ## 5. Active ingredients
#
# When the evidence table says which components each study's intervention contained, a
# meta-regression of the effects on those components (all in one model) points to the ingredients
# that go with larger effects.

# %%
ingredients = report.run("active_ingredients")

# %% [markdown]
# ## Sections of this step

# %%
summary = report.close()
