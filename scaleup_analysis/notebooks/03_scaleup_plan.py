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
# # Étape 3 — Plan de mise à l'échelle : le déploiement vu comme un devis en escalier
#
# **Question.** L'innovation a été déployée par vagues. Vu comme un devis en escalier (stepped wedge;
# Hussey et Hughes 2007), quel effet un tel déploiement peut-il détecter, et moins ou plus de vagues
# auraient-elles fait mieux?
#
# **Pour qui.** L'équipe qui rédige le prochain plan de mise à l'échelle et son protocole d'évaluation, et
# les bailleurs de fonds qui doivent savoir si l'évaluation sera informative.
#
# **Données.** Les `sites` de l'étude (périodes d'adoption, vagues, sites de comparaison) et les valeurs
# de référence de son indicateur principal (`outcomes`).

# %% [markdown] tags=["lang-en"]
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
report = sa.StepReport(study, 3, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown] tags=["lang-fr"]
# ## 1. Le déploiement tel qu'il s'est déroulé
#
# Sites pilotes, vagues de mise à l'échelle et sites qui n'ont jamais adopté, et le calendrier de l'offre
# de l'innovation.

# %% [markdown] tags=["lang-en"]
# ## 1. The rollout as it happened
#
# Pilot sites, scale-up waves and sites that never adopted, and the schedule of who delivered the
# innovation when.

# %%
rollout = report.run("rollout")

# %% [markdown] tags=["lang-fr"]
# ## 2. Quel effet ce déploiement peut-il détecter?
#
# L'effet détectable dépend de la variation de l'indicateur principal entre les unités (la corrélation
# intragrappe, estimée ici à partir des données de référence), du nombre de personnes mesurées par unité
# et par période, et du calendrier lui-même.

# %% [markdown] tags=["lang-en"]
# ## 2. What effect can this rollout detect?
#
# The detectable effect depends on how much the primary indicator varies between units (the
# intra-cluster correlation, ICC, estimated here from the baseline data), on how many people are
# measured per unit and period, and on the schedule itself.

# %%
detectable = report.run("detectable_effect")

# %% [markdown] tags=["lang-fr"]
# ## 3. Moins ou plus de vagues?
#
# Les mêmes unités adoptantes déployées en 2 à 6 vagues, après une période de référence.

# %% [markdown] tags=["lang-en"]
# ## 3. Fewer or more waves?
#
# The same adopting units rolled out in 2 to 6 waves, after one baseline period.

# %%
waves = report.run("waves")

# %% [markdown] tags=["lang-fr"]
# ## 4. Vérification de la formule par simulation
#
# La formule fermée suppose des composantes de variance connues ; des déploiements simulés en donnent une
# vérification indépendante.

# %% [markdown] tags=["lang-en"]
# ## 4. Checking the formula by simulation
#
# The closed form assumes known variance components; simulated rollouts give an independent check.

# %%
check = report.run("simulation_check")

# %% [markdown] tags=["lang-fr"]
# ## Sections de cette étape

# %% [markdown] tags=["lang-en"]
# ## Sections of this step

# %%
summary = report.close()
