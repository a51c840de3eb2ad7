"""metafor's projection matrix P = W - W X (X'WX)^{-1} X'W, never formed (O(k p^2) time, O(k p) memory).

metafor forms the k x k matrix P of a weighted least-squares fit (weights ``w``, model matrix
``X``); every quantity ``rma.uni`` builds from it (y'Py, y'PPy, tr P, tr PP, tr PVPV, ...) is
computed here in its O(k p^2)-time, O(k p)-memory form (:class:`Projection`), the same numbers up
to rounding, so that a meta-analysis stays linear in the number of studies k (k = 10^6 runs).
Inputs: ``X`` (k x p, or ``None`` for the single intercept column, see :func:`design_or_none`),
weights ``w`` and vectors of length k; outputs: floats and small p x p arrays.

Used by :mod:`.tau2` (the tau^2 estimators) and :mod:`.rma` (the fit).
"""

from __future__ import annotations

import numpy as np

__all__ = ["design_or_none", "inv_xtwx", "xtdx", "xty", "xb", "Projection", "logdet", "q_of_tau2"]


def design_or_none(X: np.ndarray) -> np.ndarray | None:
    """``None`` when X is the single intercept column (the helpers below then skip the products with
    x = 1, which are exact, so results are bit-identical), else X itself."""
    if X.shape[1] == 1 and bool(np.all(X[:, 0] == 1.0)):
        return None
    return X


def inv_xtwx(X: np.ndarray | None, w: np.ndarray) -> np.ndarray:
    """(X' W X)^{-1} for diagonal W = diag(w), via the QR decomposition of sqrt(W) X (metafor .invcalc).

    O(k p^2) time and O(k p) memory; for a single column it is 1 / sum(w x^2). ``X=None``: intercept.
    """
    if X is None:
        return np.array([[1.0 / float(np.sum(w))]])
    if X.shape[1] == 1:  # element-wise products and pairwise sums (no BLAS call: cheaper for p = 1)
        x = X[:, 0]
        return np.array([[1.0 / float(np.sum(w * x * x))]])
    r = np.linalg.qr(np.sqrt(w)[:, None] * X, mode="r")
    rinv = np.linalg.solve(r, np.eye(r.shape[0]))
    return rinv @ rinv.T


def xtdx(X: np.ndarray | None, d: np.ndarray | None) -> np.ndarray:
    """X' diag(d) X (p x p) in O(k p^2) time (``d=None``: X'X; ``X=None``: intercept column)."""
    if X is None:
        return np.array([[float(np.sum(d))]])
    if X.shape[1] == 1:
        x = X[:, 0]
        return np.array([[float(np.sum(x * x if d is None else d * x * x))]])
    return X.T @ (X if d is None else d[:, None] * X)


def xty(X: np.ndarray | None, u: np.ndarray) -> np.ndarray:
    """X' u (length p)."""
    if X is None:
        return np.array([float(np.sum(u))])
    if X.shape[1] == 1:
        return np.array([float(np.sum(X[:, 0] * u))])
    return X.T @ u


def xb(X: np.ndarray | None, b: np.ndarray):
    """X b (length k; a scalar for the intercept column, broadcast by the caller)."""
    if X is None:
        return b[0]
    if X.shape[1] == 1:
        return X[:, 0] * b[0]
    return X @ b


class Projection:
    """The k x k matrix P = W - W X (X'WX)^{-1} X'W of metafor, never formed.

    With W = diag(w), A = X'WX (p x p) and, for a vector y, the weighted least-squares residuals
    r = y - X (A^{-1} X'W y): P y = W r, y'P y = sum(w r^2), y'P P y = sum(w^2 r^2). For diagonal
    D = diag(d), E = diag(e), writing M_d = X' diag(w^2 d) X:

        tr(P)       = sum(w) - tr(A^{-1} X'W^2 X)
        tr(P D P E) = sum(w^2 d e) - 2 tr(A^{-1} X' diag(w^3 d e) X) + tr(A^{-1} M_d A^{-1} M_e)

    (expand P = W - H, H = W X A^{-1} X'W, use tr(H D W E) = tr(W D H E) and cyclic permutation).
    tr(P P) = sum(P * P), tr(P V P V) = sum(PV * t(PV)) and tr(P V P) = sum(PV * P) of ``rma.uni`` are
    the cases d = e = 1, d = e = v and (d, e) = (v, 1). Every quantity costs O(k p^2) time and O(k p)
    memory instead of the O(k^2) memory and O(k^3) time of the dense matrix.
    """

    __slots__ = ("X", "w", "st")

    def __init__(self, X: np.ndarray | None, w: np.ndarray):
        self.X = X
        self.w = w
        self.st = inv_xtwx(X, w)

    def resid(self, y: np.ndarray) -> np.ndarray:
        """r = y - X beta_hat, beta_hat = (X'WX)^{-1} X'W y (so that P y = w r)."""
        return y - xb(self.X, self.st @ xty(self.X, self.w * y))

    def quad(self, y: np.ndarray) -> float:
        """y' P y = sum(w r^2)."""
        r = self.resid(y)
        return float(np.sum(self.w * r * r))

    def quad2(self, y: np.ndarray) -> float:
        """y' P P y = ||P y||^2 = sum(w^2 r^2)."""
        wr = self.w * self.resid(y)
        return float(np.sum(wr * wr))

    def trace(self, d=None) -> float:
        """tr(P D) = sum(w d) - tr(A^{-1} X' diag(w^2 d) X) for D = diag(d) (None: tr(P))."""
        w = self.w
        wd = w if d is None else w * d
        return float(wd.sum()) - float(np.sum(self.st * xtdx(self.X, wd * w)))

    def tr_pdpe(self, d=None, e=None) -> float:
        """tr(P D P E) for D = diag(d), E = diag(e) (None: identity)."""
        w = self.w
        w2 = w * w
        de = w2 if d is None and e is None else w2 * (1.0 if d is None else d) * (1.0 if e is None else e)
        t1 = float(de.sum())
        t2 = float(np.sum(self.st * xtdx(self.X, de * w)))
        md = self.st @ xtdx(self.X, w2 if d is None else w2 * d)
        me = md if e is d else self.st @ xtdx(self.X, w2 if e is None else w2 * e)
        t3 = float(np.sum(md * me.T))
        return t1 - 2.0 * t2 + t3


def logdet(a: np.ndarray) -> float:
    """log |a| of a positive-definite matrix (from its LU factorisation, as ``slogdet``)."""
    sign, val = np.linalg.slogdet(a)
    return float(val)


def q_of_tau2(tau2: float, y: np.ndarray, vi: np.ndarray, X: np.ndarray | None) -> float:
    """Generalised Q statistic y' P(tau2) y = sum w_i r_i^2 (metafor .QE.func without the objective).

    O(k p^2) time, O(k p) memory (see :class:`Projection`); ``X`` may be ``None`` for the intercept column
    (see :func:`design_or_none`).
    """
    return Projection(X, 1.0 / (vi + tau2)).quad(y)
