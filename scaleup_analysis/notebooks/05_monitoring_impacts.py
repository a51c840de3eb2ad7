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
# # Étape 5 — Suivi des effets de la mise à l'échelle
#
# **Question.** Maintenant que l'innovation est offerte : a-t-elle conservé son effet à grande échelle ou
# subi une « perte d'effet » (voltage drop)? Qu'est-il advenu des cinq objectifs — résultats de santé,
# expérience des usagers, efficience et coûts, bien-être des équipes, équité — et une région a-t-elle subi
# un effet délétère? Dans quelle mesure les sites et les régions diffèrent-ils, et la mise à l'échelle
# a-t-elle creusé ou réduit les écarts sociaux? Enfin, la pratique a-t-elle duré une fois l'accompagnement
# terminé : quels sites ont cessé de l'offrir, et son effet s'est-il maintenu?
#
# **Pour qui.** Les comités de suivi et les gestionnaires régionaux, qui ont besoin d'alertes précoces et
# d'un portrait juste des résultats, région par région.
#
# **Données.** Les tables `outcomes` (indicateurs par site et par période) et `sites` de l'étude et, le
# cas échéant, `encounters` (niveau des patients) et `delivery`; pour la pérennisation, `deadoption`
# (sites qui ont cessé d'offrir l'innovation), `support` (accompagnement reçu) et `site_assessments`
# (évaluation de la pérennité de chaque site).

# %% [markdown] tags=["lang-en"]
# # Step 5 — Monitoring the impacts of the scale-up
#
# **Question.** Now that the innovation is delivered: did it keep its effect at scale or suffer a
# "voltage drop"? What happened to the five aims — health outcomes, user experience, efficiency and
# cost, care-team well-being, equity — and did any region suffer a deleterious effect? How much do
# sites and regions differ, and did the scale-up widen or narrow social gaps? Finally, did the practice
# last once the support ended: which sites stopped delivering it, and did its effect hold?
#
# **For whom.** Monitoring committees and regional managers, who need early warnings and a fair
# account of results region by region.
#
# **Data.** The study's `outcomes` (indicators by site and period), `sites`, and, when present,
# `encounters` (patient-level) and `delivery`; for sustainment, `deadoption` (sites that stopped
# delivering the innovation), `support` (support received) and `site_assessments` (each site's
# sustainability assessment).

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
report = sa.StepReport(study, 5, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown] tags=["lang-fr"]
# ## 1. Quintuple objectif : une région s'est-elle détériorée?
#
# Pour chaque région et chaque indicateur, le changement entre la période de référence et la période de
# suivi est comparé au changement des sites de comparaison pendant les mêmes périodes (une différence de
# différences, qui retire les tendances communes à tous les sites). Les changements sont orientés pour que
# positif = amélioration ; une région est signalée lorsqu'un indicateur s'est significativement détérioré
# après correction pour le nombre de tests.

# %% [markdown] tags=["lang-en"]
# ## 1. Quintuple aim: did any region get worse?
#
# For each region and indicator, the change from the baseline to the follow-up periods is compared
# with the change at the comparison sites over the same periods (a difference-in-differences, which
# removes trends shared by all sites). Changes are oriented so that positive = improvement; a region is
# flagged when an indicator got significantly worse after correction for the number of tests.

# %%
harm = report.run("deleterious_effects")

# %% [markdown] tags=["lang-fr"]
# ## 2. Cartes de contrôle : quand cela a-t-il commencé?
#
# Pour une région et un indicateur signalés, une carte de contrôle dont les limites sont calculées sur les
# périodes de référence, et les règles d'Anhøj de la carte de tendance pour repérer les profils non
# aléatoires.

# %% [markdown] tags=["lang-en"]
# ## 2. Control charts: when did it start?
#
# For a flagged region and indicator, a control chart with limits computed on the baseline periods,
# and Anhøj's run-chart rules for non-random patterns.

# %%
charts = report.run("control_charts")

# %% [markdown] tags=["lang-fr"]
# ## 3. L'innovation a-t-elle fonctionné à grande échelle?
#
# Les sites ont adopté à des moments différents ; une simple comparaison avant/après serait donc
# confondue avec le temps. L'estimateur de Callaway et Sant'Anna (2021) compare chaque cohorte d'adoption
# aux sites qui n'avaient pas encore adopté, période par période, et regroupe selon le temps écoulé depuis
# l'adoption (une étude d'événements). Des estimations proches de zéro avant l'adoption appuient la
# comparaison.

# %% [markdown] tags=["lang-en"]
# ## 3. Did the innovation work at scale?
#
# Sites adopted at different times, so a naive before/after comparison is confounded by time. The
# Callaway & Sant'Anna (2021) estimator compares each adoption cohort with sites that had not yet
# adopted, period by period, and aggregates by time since adoption (an event study). Estimates before
# adoption near zero support the comparison.

# %%
did = report.run("effect_at_scale")

# %% [markdown] tags=["lang-fr"]
# La régression habituelle à effets fixes bidirectionnels fait la moyenne de nombreuses comparaisons, dont
# certaines utilisent comme témoins des sites ayant déjà adopté ; la décomposition de Goodman-Bacon montre
# leur poids.

# %% [markdown] tags=["lang-en"]
# The usual two-way fixed-effects regression averages many comparisons, some of which use sites that
# had already adopted as controls; the Goodman-Bacon decomposition shows their weight.

# %%
twfe = report.run("twfe_comparison")

# %% [markdown] tags=["lang-fr"]
# ## 4. Dans quelle mesure les sites et les régions diffèrent-ils?
#
# Un modèle mixte du résultat des patients avec une ordonnée à l'origine aléatoire par site donne la part
# de la variation entre les sites ; une méta-analyse multiniveau des effets par site sépare l'hétérogénéité
# de l'*effet* entre les régions et entre les sites d'une même région.

# %% [markdown] tags=["lang-en"]
# ## 4. How much do sites and regions differ?
#
# A mixed model of the patient-level outcome with a random intercept per site gives the share of
# variation between sites; a multilevel meta-analysis of the site-level effects separates the
# heterogeneity of the *effect* between regions and between sites within regions.

# %%
variation = report.run("site_variation")

# %%
heterogeneity = report.run("effect_heterogeneity")

# %% [markdown] tags=["lang-fr"]
# ## 5. Perte d'effet : l'effet a-t-il diminué à grande échelle?
#
# Les effets par site des sites pilotes et des sites de la mise à l'échelle sont comparés par une
# méta-régression de sous-groupes ; le rapport mise à l'échelle / pilote est accompagné d'un intervalle
# de confiance de Fieller.

# %% [markdown] tags=["lang-en"]
# ## 5. Voltage drop: did the effect shrink at scale?
#
# The site-level effects of the pilot sites and of the scale-up sites are compared by a subgroup
# meta-regression; the ratio scale-up / pilot comes with a Fieller confidence interval.

# %%
voltage = report.run("voltage_drop")

# %% [markdown] tags=["lang-fr"]
# ## 6. Équité : la mise à l'échelle a-t-elle creusé ou réduit les écarts?
#
# L'effet de l'innovation par quintile de défavorisation des sites, sa tendance d'un quintile à l'autre, et
# le changement de l'écart entre les quintiles (indice de pente des inégalités).

# %% [markdown] tags=["lang-en"]
# ## 6. Equity: did the scale-up widen or narrow gaps?
#
# The effect of the innovation by deprivation quintile of the sites, its trend across quintiles, and
# the change in the gap between quintiles (slope index of inequality).

# %%
equity = report.run("equity")

# %% [markdown] tags=["lang-fr"]
# ## 7. Sommaire RE-AIM
#
# Portée, adoption, implantation (coût) et maintien de l'innovation, pour la province et par région.

# %% [markdown] tags=["lang-en"]
# ## 7. RE-AIM summary
#
# Reach, adoption, implementation (cost) and maintenance of the innovation, for the province and by
# region.

# %%
reaim = report.run("reaim")

# %% [markdown] tags=["lang-fr"]
# ## 8. Pérennisation : quels sites ont cessé d'offrir l'innovation, quand et pourquoi?
#
# Chaque site qui a adopté l'innovation est suivi depuis sa période d'adoption jusqu'à la première période
# où il ne l'offre plus (en tout ou en partie), ou jusqu'à la fin des données s'il l'offre encore. La courbe
# de Kaplan-Meier donne la part des sites qui l'offrent encore selon le temps écoulé depuis l'adoption, par
# vague de déploiement; les raisons d'arrêt sont comptées, et les taux d'arrêt pendant et après
# l'accompagnement externe sont comparés.

# %% [markdown] tags=["lang-en"]
# ## 8. Sustainment: which sites stopped delivering the innovation, when and why?
#
# Each site that adopted the innovation is followed from its adoption period to the first period in
# which it no longer delivers it (in whole or in part), or to the end of the data if it still does. The
# Kaplan-Meier curve gives the share of sites still delivering it by time since adoption, by rollout
# wave; the reasons for stopping are counted, and the stopping rates during and after the external
# facilitation are compared.

# %%
sustainment = report.run("sustainment")

# %% [markdown] tags=["lang-fr"]
# ## 9. Quels sites cessent, et l'évaluation de la pérennité faite à la mise à l'échelle le prédisait-elle?
#
# Un modèle de Cox relie le délai avant l'arrêt au score de pérennité de chaque site (PSAT) et à la fidélité
# de ses premières périodes; la concordance (C de Harrell) dit si le score classait bien les sites selon la
# durée de leur offre, et la part des sites arrêtés est donnée par catégorie de capacité du PSAT.

# %% [markdown] tags=["lang-en"]
# ## 9. Which sites stop, and did the sustainability assessment made at scale-up predict it?
#
# A Cox model relates the time to stopping to each site's sustainability score (PSAT) and to the
# fidelity of its first periods; the concordance (Harrell's C) says whether the score ranked the sites
# by how long they kept delivering, and the share of sites that stopped is given by the PSAT's capacity
# category.

# %%
predictors = report.run("sustainment_predictors")

# %% [markdown] tags=["lang-fr"]
# ## 10. L'effet a-t-il duré une fois l'accompagnement terminé?
#
# L'effet de l'innovation sur l'indicateur principal est estimé pendant l'accompagnement externe et après sa
# fin, par rapport aux sites et aux périodes sans l'innovation (estimateur par imputation). Le ratio de
# pérennité (effet après / effet pendant) dit quelle part de l'effet a été conservée.

# %% [markdown] tags=["lang-en"]
# ## 10. Did the effect last once the scale-up support ended?
#
# The innovation's effect on the primary indicator is estimated during the external facilitation and
# after it ended, against the sites and periods without the innovation (imputation estimator). The
# sustainment ratio (effect after / effect during) says how much of the effect was kept.

# %%
after_support = report.run("effect_after_support")

# %% [markdown] tags=["lang-fr"]
# ## 11. Rétroaction aux équipes : comment les sites se comparent-ils sur chaque indicateur?
#
# Chaque site est comparé à l'ensemble des sites sur chaque indicateur pendant les périodes de suivi, dans un
# graphique en entonnoir (Spiegelhalter, 2005) : ses limites à 95 % et à 99,8 % se resserrent quand le nombre de
# personnes augmente, et elles sont élargies pour la variation habituelle entre sites (surdispersion), pour
# qu'un petit site ne soit pas signalé par hasard. La même comparaison est faite entre établissements (CISSS,
# CIUSSS) quand l'étude les donne. C'est la vue d'ensemble des fiches de rétroaction que `scaleup feedback`
# écrit pour chaque site et chaque établissement.

# %% [markdown] tags=["lang-en"]
# ## 11. Feedback to the teams: how do the sites compare on each indicator?
#
# Each site is compared with all sites on each indicator over the follow-up periods in a funnel plot
# (Spiegelhalter, 2005): its 95 % and 99.8 % limits narrow as the number of people grows, and they are
# widened for the usual variation between sites (over-dispersion), so that a small site is not flagged by
# chance. The same comparison is made between establishments (CISSS, CIUSSS) when the study gives them. This
# is the province-level view of the feedback cards that `scaleup feedback` writes for each site and
# establishment.

# %%
comparison = report.run("site_comparison")

# %% [markdown] tags=["lang-fr"]
# ## Sections de cette étape

# %% [markdown] tags=["lang-en"]
# ## Sections of this step

# %%
summary = report.close()
