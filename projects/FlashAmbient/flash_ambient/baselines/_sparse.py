"""Sparse forward-difference operators and the weighted smoothing solve both baselines share."""

import inspect
from typing import Tuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def forward_differences(h: int, w: int) -> Tuple[sp.csr_matrix, sp.csr_matrix]:
    """(D_h, D_v): horizontal and vertical forward differences of an (h, w) image flattened in
    row-major order, ``(D x)(i) = x(i + 1) - x(i)``, 0 on the last column / row (Neumann)."""

    def diff(n):
        d = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n), format="lil")
        d[n - 1, n - 1] = 0.0
        return d.tocsr()

    d_h = sp.kron(sp.identity(h), diff(w), format="csr")
    d_v = sp.kron(diff(h), sp.identity(w), format="csr")
    return d_h, d_v


def gradients(x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(H, W) -> horizontal and vertical forward differences, (H, W) each, 0 on the last column
    / row."""
    g_h = np.zeros_like(x)
    g_v = np.zeros_like(x)
    g_h[:, :-1] = x[:, 1:] - x[:, :-1]
    g_v[:-1] = x[1:] - x[:-1]
    return g_h, g_v


def weighted_smooth(
    target: np.ndarray,
    weight_h: np.ndarray,
    weight_v: np.ndarray,
    rhs_extra=None,
    x0=None,
    method: str = "direct",
    rtol: float = 1e-10,
) -> np.ndarray:
    """argmin_x ||x - target||^2 + sum_d ||sqrt(weight_d) * D_d x||^2 (+ <rhs_extra, x> terms).

    Solves ``(I + sum_d D_d^T diag(weight_d) D_d) x = target + rhs_extra``, a symmetric positive
    definite system: ``method="direct"`` by sparse LU (best for LIME's strongly varying weights),
    ``"cg"`` by Jacobi-preconditioned conjugate gradients to a relative residual ``rtol``
    starting from ``x0`` (default ``target``; fast for SRIE's warm-started iterations).

    Args:
        target, weight_h, weight_v: (H, W); weights >= 0.
        rhs_extra: optional (H, W) added to the right-hand side.

    Returns:
        (H, W) float64.
    """
    h, w = target.shape
    d_h, d_v = forward_differences(h, w)
    a = sp.identity(h * w, format="csr")
    a = a + d_h.T @ sp.diags(weight_h.ravel()) @ d_h + d_v.T @ sp.diags(weight_v.ravel()) @ d_v
    rhs = target.ravel().astype(np.float64)
    if rhs_extra is not None:
        rhs = rhs + rhs_extra.ravel()
    if method == "direct":
        return spla.spsolve(a.tocsc(), rhs).reshape(h, w)
    start = (target if x0 is None else x0).ravel().astype(np.float64)
    precond = sp.diags(1.0 / a.diagonal())
    x, info = spla.cg(a, rhs, x0=start, M=precond, atol=0.0, maxiter=10000, **{_RTOL: rtol})
    if info != 0:
        raise RuntimeError(f"conjugate gradients did not converge ({info} iterations)")
    return x.reshape(h, w)


# scipy < 1.12 calls the relative tolerance of cg ``tol``.
_RTOL = "rtol" if "rtol" in inspect.signature(spla.cg).parameters else "tol"
