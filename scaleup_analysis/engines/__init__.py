"""The engine layer: the numerical cores that several models share (internal API).

The public functions (``sa.meta_analysis``, ``sa.mixed_model``, ...) check their input, prepare
arrays, call an engine and assemble a result object. The engines work on plain NumPy arrays, know
nothing of data frames, column names or result classes, and never warn: they return what happened
(flags, messages) and raise :class:`FitError` when a model cannot be fitted; the models translate
that into the package's warnings and errors. Models import the engines; nothing outside this
package imports a model's private helpers.

=======================  ============================================  =====================================
module                   computes                                      used by
=======================  ============================================  =====================================
:mod:`.tau2`             the univariate tau^2 estimators, as a table   :mod:`.rma`
                         (``ESTIMATORS``: one entry per estimator)
:mod:`.rma`              metafor's ``rma.uni`` fit (coefficients,      ``heterogeneity.meta``,
                         tests, Q, I^2, H^2, fit statistics) and the   ``monitoring.voltage`` (bootstrap)
                         Q-profile interval of tau^2
:mod:`.wls`              metafor's projection matrix P in O(k p^2)     :mod:`.tau2`, :mod:`.rma`
:mod:`.uniroot`          R's ``uniroot`` (Brent-Dekker)                :mod:`.tau2`, :mod:`.rma`
:mod:`.reml`             Gaussian (RE)ML from per-cluster              ``heterogeneity.mixed``,
                         cross-products (lme4's PLS), Satterthwaite    ``heterogeneity.multilevel``,
                         df, profile intervals, bounded optimiser,     ``rollout.stepped_wedge``,
                         numerical derivatives                         ``summarize``, :mod:`.glmm`
:mod:`.glmm`             binomial (logit, probit) and Poisson (log,    ``heterogeneity.mixed``
                         offset) GLMM with one grouping factor:
                         Laplace with its exact gradient, adaptive
                         Gauss-Hermite quadrature (``glmer``)
:mod:`.terms`            Gaussian (RE)ML with several random terms     ``heterogeneity.mixed``,
                         (crossed, nested; lme4's ``lmer``): sparse    :mod:`.glmm_terms`
                         Z, block + Schur-complement factor of
                         ``Lambda'Z'WZ Lambda + I``, Satterthwaite df
:mod:`.glmm_terms`       Laplace GLMM with several random terms        ``heterogeneity.mixed``
:mod:`.crossed`          REML of two crossed random intercepts         ``agreement.icc_mixed``
                         (lme4's ``REMLcrit``)
:mod:`.factor`           psych's ``fa`` (minres, ML), varimax,         ``prom.scale_omega``,
                         GPArotation's oblimin, ``schmid``, ``smc``    ``prom.scale_reliability`` (smc)
=======================  ============================================  =====================================
"""

from __future__ import annotations

__all__ = ["FitError"]


class FitError(RuntimeError):
    """An engine could not fit its model (non-convergence, bracket failure); the message says what to try."""
