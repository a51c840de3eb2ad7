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
# # Step 2 — Scale-up potential: which candidate innovation is ready to scale?
#
# **Question.** Three primary-care innovations are candidates for province-wide scale-up. Four experts
# rated each one with the Intervention Scalability Assessment Tool (ISAT; Milat et al. 2020): Part A
# (the problem, the intervention, the strategic and political context, evidence of effectiveness, costs
# and benefits) and Part B (fidelity and adaptation, reach and acceptability, delivery setting and
# workforce, implementation infrastructure, sustainability). Which innovation is ready, which needs
# work first, and do the experts agree?
#
# **For whom.** Steering committees deciding what to scale, and the teams preparing the case.
#
# **Data.** The `assessments` table of the embedded dataset: 3 innovations × 4 raters × 10 ISAT domains
# × 4 items, scores 1–4, with a few missing answers. Item labels are our own short labels; the official
# ISAT wording can be supplied in the instrument file.

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

setup_display(precision=2)  # pandas display options; warnings printed as one line

tables = load_or_simulate(data_dir, seed)
responses = tables["assessments"]
isat = sa.load_instrument("ISAT")
isat.domains

# %% [markdown]
# ## 1. Domain scores and completeness
#
# Each domain score is the mean of its answered items (missing answers are reported, never counted as
# zero), first per rater and then averaged across the four raters.

# %%
scores = sa.score_assessment(responses, isat, n_boot=1000, seed=seed)
print(scores.summary())

# %%
wide = scores.domain_scores.pivot(index="domain", columns="innovation", values="mean")
save_table(scores.domain_scores, "02_isat_domain_scores", tables_dir)
wide

# %%
scores.missing_items.head(10)

# %% [markdown]
# ## 2. Strengths and weaknesses (ISAT Part C summary)

# %%
ax = scores.plot_profile()
ax.set_title("ISAT domain scores by innovation (mean of 4 raters; bars = rater range)")
save_figure(ax.figure, "02_isat_profile", figures_dir)
plt.show()

# %% [markdown]
# ## 3. Do the raters agree?
#
# Krippendorff's alpha (ordinal) across the 40 items of each innovation. Values below 0.667 mean the
# raters' item-level judgements cannot be relied on individually: domain and overall scores, which
# average many items and four raters, are more stable, but the disagreements should be discussed in a
# consensus meeting before a decision.

# %%
scores.agreement.round(3)

# %% [markdown]
# ## 4. Recommendation

# %%
recommendation = scores.recommendation_table()
save_table(recommendation, "02_recommendation", tables_dir)
recommendation

# %% [markdown]
# **Reading.** *Chronic care coordination* scores about 3 of 4 overall and is the only candidate rated
# ready for scale-up; its weakest domains (listed in the table) should still be strengthened in the
# scale-up plan. *Collaborative mental health* and *social prescribing* are not yet ready: their weakest
# domains show where preparatory work is needed. Agreement between raters is low for all three
# (alpha well below 0.667), so the ranking rests on the averages across raters and items, and the
# items the raters disagree on should be discussed before the decision is final.
#
# The readiness thresholds (≥ 3 ready; ≥ 2.5 ready with conditions) are this package's own
# convention — the ISAT itself leaves the judgement to the assessment team — and are stored in the
# instrument file, where a team can change them.
