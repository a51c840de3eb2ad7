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

# %% [markdown] tags=["lang-fr"]
# # Étape 2 — Potentiel de mise à l'échelle : l'innovation est-elle prête?
#
# **Question.** Des experts ont coté la ou les innovations candidates avec un instrument de potentiel de
# mise à l'échelle comme l'Intervention Scalability Assessment Tool (ISAT; Milat et al. 2020) : le
# problème, l'intervention, son contexte, les données probantes, les coûts, la fidélité et l'adaptation,
# la portée, le milieu d'offre et la main-d'œuvre, l'infrastructure d'implantation, la pérennité. Quelle
# innovation est prête, laquelle demande d'abord du travail, et les évaluateurs s'entendent-ils?
#
# **Pour qui.** Les comités directeurs qui décident quoi mettre à l'échelle, et les équipes qui préparent
# le dossier.
#
# **Données.** La table `assessments` de l'étude : une cote par instrument, innovation, évaluateur et item.

# %% [markdown] tags=["lang-en"]
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
language = None  # "fr" or "en"; None = the study's own language (French by default)
figures_dir = None  # set by the report runner: figures are saved there
tables_dir = None  # set by the report runner: key tables (CSV) are saved there
status_dir = None  # set by the report runner: status of each section for the run summary
processed_dir = None  # set by the report runner: summaries of the patient-level tables, reused

# %%
import scaleup_analysis as sa
from scaleup_analysis.notebook import setup_display

setup_display()
study = sa.load_study(data_dir, seed=seed, language=language, processed=processed_dir)
report = sa.StepReport(study, 2, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown] tags=["lang-fr"]
# ## 1. Scores par domaine et score global
#
# Le score d'un domaine est la moyenne de ses items remplis (les réponses manquantes sont signalées, jamais
# comptées comme zéro), d'abord par évaluateur, puis en moyenne sur les évaluateurs ; le score global est
# la moyenne des domaines.

# %% [markdown] tags=["lang-en"]
# ## 1. Domain and overall scores
#
# Each domain score is the mean of its answered items (missing answers are reported, never counted as
# zero), first per rater and then averaged across raters; the overall score is the mean of the domains.

# %%
scores = report.run("scores")

# %% [markdown] tags=["lang-fr"]
# ## 2. Les évaluateurs s'entendent-ils?
#
# L'alpha de Krippendorff (ordinal) sur les items de chaque innovation mesure dans quelle mesure les
# jugements des évaluateurs concordent au-delà du hasard.

# %% [markdown] tags=["lang-en"]
# ## 2. Do the raters agree?
#
# Krippendorff's alpha (ordinal) across the items of each innovation measures how far the raters'
# item-level judgements agree beyond chance.

# %%
agreement = report.run("agreement")

# %% [markdown] tags=["lang-fr"]
# ## 3. Recommandation
#
# Les catégories d'état de préparation appliquent au score global les seuils consignés dans le fichier de
# l'instrument. Une catégorie n'est donnée que si les évaluateurs s'entendent assez ; sinon, les cotes
# doivent d'abord être discutées en rencontre de consensus.

# %% [markdown] tags=["lang-en"]
# ## 3. Recommendation
#
# The readiness categories apply the thresholds stored in the instrument file to the overall score.
# A category is given only when the raters agree well enough; otherwise the ratings must first be
# discussed in a consensus meeting.

# %%
recommendation = report.run("recommendation")

# %% [markdown] tags=["lang-fr"]
# ## Sections de cette étape

# %% [markdown] tags=["lang-en"]
# ## Sections of this step

# %%
summary = report.close()
