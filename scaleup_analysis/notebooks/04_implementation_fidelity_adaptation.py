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
# # Étape 4 — Implantation : fidélité et adaptation
#
# **Question.** À mesure que l'innovation s'étend à de nouveaux sites, ses composantes essentielles (ses
# « ingrédients actifs ») sont-elles encore offertes? Peut-on se fier aux cotes de fidélité? Quelles
# adaptations locales ont été faites, et ont-elles aidé ou nui?
#
# **Pour qui.** Les équipes d'implantation et les coordonnateurs régionaux qui décident où envoyer du
# soutien, et les chercheurs qui doivent expliquer pourquoi les effets diffèrent d'un site à l'autre.
#
# **Données.** Les tables `components`, `fidelity_ratings` (séances observées et cotées par des
# évaluateurs), `delivery` (séances, personnes rejointes) et `adaptations` (codées selon FRAME) de
# l'étude, avec l'indicateur principal.

# %% [markdown] tags=["lang-en"]
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
report = sa.StepReport(study, 4, figures_dir=figures_dir, tables_dir=tables_dir, status_dir=status_dir)
report.intro()

# %% [markdown] tags=["lang-fr"]
# ## 1. Fidélité par région
#
# L'*adhésion* est la part pondérée des composantes essentielles offertes pendant une séance (la cote de
# chaque composante ramenée de 0 à 1 sur sa propre échelle, en moyenne sur les évaluateurs). La *dose*
# est le nombre de séances offertes sur le nombre prévu, la *couverture* le nombre de personnes rejointes
# sur le nombre de personnes admissibles. L'**indice composite de fidélité** fait la moyenne des trois
# (Carroll et al. 2007).

# %% [markdown] tags=["lang-en"]
# ## 1. Fidelity by region
#
# *Adherence* is the weighted share of the core components delivered in a session (each component's
# score rescaled to 0–1 on its own scale, averaged over raters). *Dose* is sessions delivered over
# sessions planned, *coverage* is people reached over people eligible. The composite **fidelity index**
# averages the three (Carroll et al. 2007).

# %%
fidelity = report.run("fidelity")

# %% [markdown] tags=["lang-fr"]
# ## 2. Dérive de la fidélité : quels sites glissent?
#
# Pour chaque site, une droite à travers son adhésion dans le temps ; un site est signalé lorsque tout
# l'intervalle de confiance de sa pente est sous zéro, ou lorsque son adhésion baisse plusieurs périodes
# de suite.

# %% [markdown] tags=["lang-en"]
# ## 2. Fidelity drift: which sites are slipping?
#
# For each site, a straight line through its adherence over time; a site is flagged when the whole
# confidence interval of its slope is below zero, or when adherence falls for several periods in a row.

# %%
drift = report.run("fidelity_drift")

# %% [markdown] tags=["lang-fr"]
# ## 3. Peut-on se fier aux cotes de fidélité?
#
# Lorsque des séances sont cotées par plusieurs évaluateurs, la corrélation intraclasse par modèle mixte
# (qui admet les devis incomplets) et l'alpha de Krippendorff (ordinal, tout nombre d'évaluateurs par
# séance) mesurent à quel point les cotes dépendent de la personne qui a coté.

# %% [markdown] tags=["lang-en"]
# ## 3. Can we trust the fidelity ratings?
#
# When sessions are rated by several raters, the mixed-model intra-class correlation (which allows
# incomplete designs) and Krippendorff's alpha (ordinal, any number of raters per session) measure how
# far the scores depend on who rated.

# %%
reliability = report.run("rater_reliability")

# %% [markdown] tags=["lang-fr"]
# ## 4. Quelles adaptations ont été faites? (FRAME)
#
# Chaque adaptation est documentée avec le cadre de codage FRAME (Wiltsey Stirman et al. 2019) : quand,
# par qui, ce qui a été modifié, à quel niveau, et si elle a préservé les composantes essentielles
# (*compatible avec la fidélité*) ou non (*incompatible avec la fidélité*).

# %% [markdown] tags=["lang-en"]
# ## 4. Which adaptations were made? (FRAME)
#
# Every adaptation is documented with the FRAME coding scheme (Wiltsey Stirman et al. 2019): when, by
# whom, what was modified, at which level, and whether it kept the core components intact
# (*fidelity-consistent*) or not (*fidelity-inconsistent*).

# %%
adaptations = report.run("adaptations")

# %% [markdown] tags=["lang-fr"]
# ## 5. Les adaptations ont-elles aidé ou nui?
#
# Un modèle mixte de l'indicateur principal de chaque site selon son nombre cumulé d'adaptations
# compatibles, incompatibles et de lien inconnu avec la fidélité, avec des effets de période, des effets
# aléatoires de site et un effet d'adoption propre à chaque site, de sorte que seuls les changements à
# l'intérieur des sites sont utilisés.

# %% [markdown] tags=["lang-en"]
# ## 5. Did adaptations help or harm?
#
# A mixed model of each site's primary indicator on its cumulative numbers of fidelity-consistent,
# fidelity-inconsistent and unknown adaptations, with period effects, site random effects and a
# site-specific adoption effect, so that only changes within sites are used.

# %%
effects = report.run("adaptation_effects")

# %% [markdown] tags=["lang-fr"]
# ## 6. Plus de fidélité, plus d'effet?
#
# L'association entre l'adhésion cotée d'une période-site et son indicateur principal, à l'intérieur des
# sites.

# %% [markdown] tags=["lang-en"]
# ## 6. Does more fidelity mean more effect?
#
# The association between a site-period's rated adherence and its primary indicator, within sites.

# %%
dose = report.run("dose_response")

# %% [markdown] tags=["lang-fr"]
# ## Sections de cette étape

# %% [markdown] tags=["lang-en"]
# ## Sections of this step

# %%
summary = report.close()
