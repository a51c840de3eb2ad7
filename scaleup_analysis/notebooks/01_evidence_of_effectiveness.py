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
# # Étape 1 — Données probantes d'efficacité
#
# **Question.** Avant de mettre une innovation à l'échelle, existe-t-il des données solides montrant
# qu'elle fonctionne? Dans quelle mesure son effet varie-t-il d'un milieu à l'autre, et à quel effet un
# *nouveau* site peut-il s'attendre?
#
# **Pour qui.** Les équipes de recherche et les décideurs qui préparent une décision de mise à l'échelle.
# Chaque résultat ci-dessous est suivi de constats rédigés à partir des chiffres de cette exécution.
#
# **Données.** La table `evidence` de l'étude : une ligne par étude publiée ou pilote de l'innovation,
# avec sa taille d'effet `yi` (positive = en faveur de l'innovation) et sa variance d'échantillonnage
# `vi`, ainsi que les modérateurs éventuels nommés dans `study.toml`.

# %% [markdown] tags=["lang-en"]
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
report = sa.StepReport(study, 1, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown] tags=["lang-fr"]
# ## 1. Effet combiné et hétérogénéité
#
# Une méta-analyse à effets aléatoires considère que l'effet réel de chaque étude provient d'une
# distribution d'effets selon les milieux. Elle est estimée par maximum de vraisemblance restreint (REML),
# avec l'estimateur de DerSimonian-Laird comme analyse de sensibilité. L'**intervalle de prédiction** est
# l'éventail des effets auxquels un nouveau milieu peut s'attendre : c'est lui qui compte pour une mise à
# l'échelle.

# %% [markdown] tags=["lang-en"]
# ## 1. Pooled effect and heterogeneity
#
# A random-effects meta-analysis treats each study's true effect as drawn from a distribution of
# effects across settings. It is estimated by restricted maximum likelihood (REML), with the
# DerSimonian–Laird estimator as a sensitivity analysis. The **prediction interval** is the range of
# effects a new setting could expect; it is what matters for a scale-up.

# %%
pooled = report.run("pooled_effect")

# %% [markdown] tags=["lang-fr"]
# ## 2. Les effets des petites études pourraient-ils biaiser l'estimation combinée?
#
# Un graphique en entonnoir montre l'effet de chaque étude selon sa précision ; le test de régression
# d'Egger vérifie si les études les moins précises rapportent des effets systématiquement différents
# (un indice de biais de publication). Il n'est fait qu'avec dix études ou plus.

# %% [markdown] tags=["lang-en"]
# ## 2. Could small-study effects bias the pooled estimate?
#
# A funnel plot shows each study's effect against its precision; Egger's regression test checks
# whether less precise studies report systematically different effects (a hint of publication bias).
# It is run only with ten or more studies.

# %%
funnel = report.run("small_study_effects")

# %% [markdown] tags=["lang-fr"]
# ## 3. Modérateurs de l'effet
#
# Une méta-régression vérifie si des caractéristiques des études nommées dans `study.toml` (par exemple
# l'adaptation au milieu, ou la charge des personnes qui offrent l'intervention) vont de pair avec des
# effets plus grands ou plus petits. Un test de permutation donne des valeurs p qui ne reposent pas sur
# des approximations pour grands échantillons.

# %% [markdown] tags=["lang-en"]
# ## 3. Moderators of the effect
#
# A meta-regression tests whether features of the studies named in `study.toml` (for example
# tailoring to the setting, or the caseload of the people delivering it) go with larger or smaller
# effects. A permutation test gives p-values that do not rely on large-sample approximations.

# %%
moderators = report.run("moderators")

# %% [markdown] tags=["lang-fr"]
# ## 4. Une seule étude détermine-t-elle le résultat?
#
# Les estimations en retirant une étude à la fois et les diagnostics d'influence de metafor montrent si
# la conclusion dépend d'une seule étude.

# %% [markdown] tags=["lang-en"]
# ## 4. Does any single study drive the result?
#
# Leave-one-out estimates and metafor's influence diagnostics show whether the conclusion depends on
# one study.

# %%
influence = report.run("influence")

# %% [markdown] tags=["lang-fr"]
# ## 5. Ingrédients actifs
#
# Lorsque la table des données probantes indique les composantes de l'intervention de chaque étude, une
# méta-régression des effets sur ces composantes (toutes dans un même modèle) désigne les ingrédients
# associés à des effets plus grands.

# %% [markdown] tags=["lang-en"]
# ## 5. Active ingredients
#
# When the evidence table says which components each study's intervention contained, a
# meta-regression of the effects on those components (all in one model) points to the ingredients
# that go with larger effects.

# %%
ingredients = report.run("active_ingredients")

# %% [markdown] tags=["lang-fr"]
# ## Sections de cette étape

# %% [markdown] tags=["lang-en"]
# ## Sections of this step

# %%
summary = report.close()
