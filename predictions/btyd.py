"""BG/NBD, MBG/NBD and Gamma-Gamma ("buy till you die" models), fitted by maximum likelihood.

- BG/NBD: Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers" the easy way: an
  alternative to the Pareto/NBD model. Marketing Science 24(2), 275-284 (with the note "Implementing the
  BG/NBD model for customer base analysis in Excel", 2005, for the conditional expectation).
- MBG/NBD: Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). Empirical validation and comparison of
  models for customer base analysis. International Journal of Research in Marketing 24(3), 201-209: the
  customer may also drop out right after the first purchase, so P(alive) < 1 for customers with x == 0.
- Gamma-Gamma: Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: using iso-value curves for
  customer base analysis. Journal of Marketing Research 42(4), 415-430 (and the note "The Gamma-Gamma model
  of monetary value", 2013).

Inputs are numpy arrays, one element per customer, time in WEEKS: x = repeat purchases (purchase days after
the first one), t_x = time of the last purchase since the first (0 where x == 0), T = age, the time from the
first purchase to the end of the calibration period; m = mean spend per repeat purchase.

Why this module instead of a library:
- `lifetimes` is archived (no release since 2020) and fails on current pandas/scipy;
- `btyd`, its fork, does not install on current numpy;
- `pymc-marketing` is maintained, but it brings several hundred MB (PyMC, PyTensor, ArviZ, pandas, xarray)
  into the web image for what are two closed-form likelihoods and a gamma mixture.
So this is a small vectorised maximum-likelihood implementation on scipy (optimize, special), a few hundred
lines: exactly the published formulas (log-likelihoods with analytical gradients, maximised by L-BFGS-B on
log-parameters), cross-checked in tests/predictions/test_btyd.py against the papers' published parameters on
the CDNOW sample, and against numerical integration and simulation.

No Django imports: the predictions services call this with plain arrays.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, special

Array = NDArray[np.float64]

# Parameters outside this range mean the likelihood is flat in that direction (e.g. no dropout in the data):
# the fit is then reported as not converged rather than returned as if it meant something.
PARAM_MIN = 1e-6
PARAM_MAX = 1e6
# The optimiser's box, in log space: wider than the plausibility range above so that running off is seen.
_LOG_BOUND = float(np.log(1e10))
# Rows per chunk in the objectives: 8192 float64 = 64 KiB temporaries, below glibc's 128 KiB mmap threshold, so
# they are recycled from the heap instead of being mapped (and page-faulted) afresh at every operation:
# measured 4x faster than whole-array operations on a million rows.
_CHUNK = 1 << 13

NBD_PARAMS = ("r", "alpha", "a", "b")
GG_PARAMS = ("p", "q", "gamma")


@dataclass(frozen=True)
class FitResult:
    params: dict[str, float]
    log_likelihood: float
    converged: bool
    message: str
    iterations: int
    n: int


class FitError(ValueError):
    """The data cannot be fitted at all (empty, degenerate, invalid); the message says why."""


# ---------------------------------------------------------------------------------------------------------
# Input handling


def _array(value: ArrayLike, name: str, error: type[ValueError] = ValueError) -> Array:
    arr = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise error(f"{name} contains non-finite values (NaN or infinity)")
    if np.any(arr < 0):
        raise error(f"{name} contains negative values")
    return arr


def _params(params: Mapping[str, float], names: tuple[str, ...]) -> tuple[float, ...]:
    missing = [name for name in names if name not in params]
    if missing:
        raise ValueError(f"missing parameters: {', '.join(missing)}")
    values = tuple(float(params[name]) for name in names)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"parameters must be finite and positive, got {dict(zip(names, values))}")
    return values


def _rft(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, error: type[ValueError] = ValueError) -> tuple[Array, ...]:
    x_, t_x_, T_ = np.broadcast_arrays(_array(x, "x", error), _array(t_x, "t_x", error), _array(T, "T", error))
    if np.any(x_ != np.floor(x_)):
        raise error("x must be whole numbers (repeat purchases)")
    # A little slack: t_x and T are often computed separately from the same dates.
    late = t_x_ > T_ * (1 + 1e-12) + 1e-12
    if np.any(late):
        raise error(f"t_x is greater than T for {int(late.sum())} customers: the last purchase cannot come"
                    " after the end of the calibration period")
    if np.any((x_ == 0) & (t_x_ > 0)):
        raise error("t_x must be 0 where x == 0 (with no repeat purchase the last purchase is the first)")
    return x_, np.minimum(t_x_, T_), T_


def _weights(weights: ArrayLike | None, n: int) -> Array:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise FitError(f"weights must have one value per customer ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise FitError("weights must be finite and non-negative")
    return w


def _fit_columns(columns: dict[str, ArrayLike], weights: ArrayLike | None) -> tuple[list[Array], Array]:
    arrays = [np.asarray(value, dtype=np.float64) for value in columns.values()]
    if any(arr.ndim != 1 for arr in arrays):
        raise FitError(f"{', '.join(columns)} must be one-dimensional arrays (one value per customer)")
    lengths = {arr.shape[0] for arr in arrays}
    if len(lengths) != 1:
        raise FitError(f"{', '.join(columns)} must have the same length, got {[a.shape[0] for a in arrays]}")
    n = lengths.pop()
    if n == 0:
        raise FitError("no customers: the arrays are empty")
    w = _weights(weights, n)
    keep = w > 0
    if not keep.any():
        raise FitError("no customers: every weight is 0")
    return [arr[keep] for arr in arrays], w[keep]


def _group(columns: list[Array], w: Array, probe: int) -> tuple[list[Array], Array]:
    """Identical rows merged, their weights summed: the likelihood is evaluated once per distinct row (real
    data in days have many duplicates; this makes a million customers cheap)."""
    # Rows are at least as distinct as any one column: when the probe column (the one with the most
    # distinct values, e.g. T or m) has hardly any duplicates, the full row sort would not pay for itself.
    if np.unique(columns[probe]).size > 0.5 * w.size:
        return columns, w
    # + 0.0 turns -0.0 into 0.0, so that equal values have equal bytes.
    stacked = np.ascontiguousarray(np.column_stack(columns) + 0.0)
    keys = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return [col[first] for col in columns], np.bincount(inverse.ravel(), weights=w, minlength=first.size)


# ---------------------------------------------------------------------------------------------------------
# BG/NBD and MBG/NBD: one likelihood with an offset k (0: BG/NBD, 1: MBG/NBD).
#
#   ln L = lnB(a, b+x+k) - lnB(a, b) + lnΓ(r+x) - lnΓ(r) + r ln α - (r+x) ln(α+T) + ln(1 + δ c R^(r+x))
#   c = a / (b+x+k-1), R = (α+T)/(α+t_x), δ = [x > 0] for BG/NBD and 1 for MBG/NBD.
#
# The last term is logaddexp(0, z) with z = ln c + (r+x) ln R, which never overflows; P(alive) = expit(-z).


def _log_c(a: float, b: float, x: Array, k: int) -> Array:
    with np.errstate(divide="ignore", invalid="ignore"):  # b+x-1 <= 0 only where BG/NBD has x == 0 (masked)
        return np.log(a) - np.log(b + x + k - 1)


def _z(params: tuple[float, ...], x: Array, t_x: Array, T: Array, k: int) -> Array:
    r, alpha, a, b = params
    return _log_c(a, b, x, k) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))


def _nbd_log_likelihood(params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike, k: int) -> Array:
    r, alpha, a, b = p = _params(params, NBD_PARAMS)
    x_, t_x_, T_ = _rft(x, t_x, T)
    mixed = x_ > 0 if k == 0 else np.ones(x_.shape, dtype=bool)
    z = np.where(mixed, _z(p, x_, t_x_, T_, k), -np.inf)
    return (special.betaln(a, b + x_ + k) - special.betaln(a, b) + special.gammaln(r + x_) - special.gammaln(r)
            + r * np.log(alpha) - (r + x_) * np.log(alpha + T_) + np.logaddexp(0.0, z))


@dataclass(frozen=True)
class _NbdData:
    """Distinct rows, mixing rows (x > 0 for BG/NBD, all for MBG/NBD) first, and the per-x weight sums."""

    x: Array
    t_x: Array
    T: Array
    w: Array
    wx: Array  # w * x
    n_mixed: int
    ux: Array  # distinct x values and their total weights: the lnB / lnΓ terms depend on x only
    ux_w: Array
    total: float


def _nbd_data(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None, k: int) -> _NbdData:
    (x_, t_x_, T_), w = _fit_columns({"x": x, "t_x": t_x, "T": T}, weights)
    x_, t_x_, T_ = _rft(x_, t_x_, T_, FitError)
    repeat_weight = float(w[x_ > 0].sum())
    if repeat_weight == 0:
        raise FitError("no customer has a repeat purchase (x == 0 for all): the purchase rate and the dropout"
                       " cannot be estimated")
    if repeat_weight < 2:
        raise FitError("fewer than 2 repeat buyers: the purchase rate and the dropout cannot be estimated")
    if not np.any(T_ > 0):
        raise FitError("every customer's age T is 0 (all first purchased at the end of the calibration period):"
                       " there is no observation time")
    (x_, t_x_, T_), w = _group([x_, t_x_, T_], w, probe=2)
    order = np.argsort(x_ == 0, kind="stable") if k == 0 else np.arange(x_.size)
    x_, t_x_, T_, w = x_[order], t_x_[order], T_[order], w[order]
    ux, inverse = np.unique(x_, return_inverse=True)
    return _NbdData(x=x_, t_x=t_x_, T=T_, w=w, wx=w * x_, n_mixed=int(np.count_nonzero(x_ > 0)) if k == 0
                    else x_.size, ux=ux, ux_w=np.bincount(inverse.ravel(), weights=w), total=float(w.sum()))


def _nbd_objective(theta: Array, d: _NbdData, k: int) -> tuple[float, Array]:
    """Minus the mean log-likelihood and its gradient with respect to the log-parameters."""
    r, alpha, a, b = np.exp(theta)
    ux, uw = d.ux, d.ux_w
    # Terms that depend on x only, once per distinct x.
    ll = uw @ (special.betaln(a, b + ux + k) + special.gammaln(r + ux)) - d.total * (special.betaln(a, b)
                                                                                  + special.gammaln(r))
    g_r = uw @ special.digamma(r + ux) - d.total * special.digamma(r)
    psi_ab = special.digamma(a + b)
    psi_abx = special.digamma(a + b + ux + k)
    g_a = d.total * psi_ab - uw @ psi_abx
    g_b = uw @ (special.digamma(b + ux + k) - psi_abx) + d.total * (psi_ab - special.digamma(b))
    ll += d.total * r * np.log(alpha)
    g_r += d.total * np.log(alpha)
    g_alpha = d.total * r / alpha
    log_a = np.log(a)
    # Terms per row, a chunk at a time (see _CHUNK).
    for start in range(0, d.x.size, _CHUNK):
        rows = slice(start, start + _CHUNK)
        w, wx = d.w[rows], d.wx[rows]
        log_aT = np.log(alpha + d.T[rows])
        inv_aT = 1.0 / (alpha + d.T[rows])
        w_log_aT = w @ log_aT
        ll -= r * w_log_aT + wx @ log_aT
        g_r -= w_log_aT
        g_alpha -= r * (w @ inv_aT) + wx @ inv_aT
        # The mixing term ln(1 + c R^(r+x)) = softplus(z), on the rows that have it (they come first).
        # softplus and the sigmoid share one exp of z capped at 35 (beyond it log1p(e^z) = z to double
        # precision): three times cheaper than np.logaddexp + scipy's expit.
        n_mixed = min(d.n_mixed - start, w.size)
        if n_mixed <= 0:
            continue
        mixed = slice(start, start + n_mixed)
        xm, wm = d.x[mixed], w[:n_mixed]
        log_at = np.log(alpha + d.t_x[mixed])
        log_R = log_aT[:n_mixed] - log_at
        z = (log_a - np.log(b + xm + (k - 1))) + (r + xm) * log_R
        capped = np.minimum(z, 35.0)
        e = np.exp(capped)
        ll += wm @ np.log1p(e) + wm @ (z - capped)
        ws = wm * (e / (1.0 + e))
        d_inv = inv_aT[:n_mixed] - np.exp(-log_at)
        g_r += ws @ log_R
        g_alpha += r * (ws @ d_inv) + (ws * xm) @ d_inv
        g_a += ws.sum() / a
        g_b -= ws @ (1.0 / (b + xm + (k - 1)))
    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return -ll / d.total, -grad / d.total


def _nbd_fit(x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None, max_iterations: int,
             k: int) -> FitResult:
    d = _nbd_data(x, t_x, T, weights, k)
    # Start where the mean purchase rate r/α matches the data's; the second start has more heterogeneity.
    rate = max(float(d.wx.sum() / max(d.w @ d.T, 1e-12)), 1e-6)
    starts = [(1.0, 1.0 / rate, 1.0, 1.0), (0.5, 0.5 / rate, 0.5, 2.0)]
    return _maximise(lambda theta: _nbd_objective(theta, d, k), starts, NBD_PARAMS, d.total, max_iterations)


# ---------------------------------------------------------------------------------------------------------
# Gamma-Gamma: the density of the mean spend m of x transactions,
#   ln f = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln γ + (px-1) ln m + px ln x - (px+q) ln(γ + m x)


@dataclass(frozen=True)
class _GgData:
    mx: Array  # m * x per distinct row
    w: Array
    wx: Array
    ux: Array  # distinct x values and their total weights: the lnΓ terms depend on x only
    ux_w: Array
    sum_w_log_m: float
    sum_wx_log_m: float
    total: float


def _gg_objective(theta: Array, d: _GgData) -> tuple[float, Array]:
    """Minus the mean log-likelihood and its gradient with respect to the log-parameters."""
    p, q, gamma = np.exp(theta)
    pu = p * d.ux
    log_u = np.log(d.ux)
    psi_puq = special.digamma(pu + q)
    ll = d.ux_w @ (special.gammaln(pu + q) - special.gammaln(pu) + pu * log_u)
    ll += p * d.sum_wx_log_m - d.sum_w_log_m + d.total * (q * np.log(gamma) - special.gammaln(q))
    g_p = (d.ux_w * d.ux) @ (psi_puq - special.digamma(pu) + log_u) + d.sum_wx_log_m
    g_q = d.ux_w @ psi_puq + d.total * (np.log(gamma) - special.digamma(q))
    g_gamma = d.total * q / gamma
    # Per row only ln(γ + m x) and its derivative (in chunks: see _nbd_objective).
    for start in range(0, d.mx.size, _CHUNK):
        rows = slice(start, start + _CHUNK)
        w, wx = d.w[rows], d.wx[rows]
        log_gmx = np.log(gamma + d.mx[rows])
        inv_gmx = 1.0 / (gamma + d.mx[rows])
        wx_log, w_log = wx @ log_gmx, w @ log_gmx
        ll -= p * wx_log + q * w_log
        g_p -= wx_log
        g_q -= w_log
        g_gamma -= p * (wx @ inv_gmx) + q * (w @ inv_gmx)
    grad = np.array([g_p * p, g_q * q, g_gamma * gamma])
    return -ll / d.total, -grad / d.total


# ---------------------------------------------------------------------------------------------------------
# Optimiser


def _maximise(objective: Callable[[Array], tuple[float, Array]], starts: list[tuple[float, ...]],
              names: tuple[str, ...], total: float, max_iterations: int) -> FitResult:
    budget = max(int(max_iterations), 1)
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(names)
    options = {"ftol": 1e-14, "gtol": 1e-9, "maxcor": 20}
    best: tuple[float, Array, bool, str] | None = None
    iterations = 0
    for start in starts:
        theta = np.clip(np.log(np.asarray(start, dtype=np.float64)), -_LOG_BOUND, _LOG_BOUND)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            value, _ = objective(theta)
        if not np.isfinite(value):
            candidate = (np.inf, theta, False, "the log-likelihood is not finite at the starting point")
        else:
            # L-BFGS-B, then a restart from its optimum: the restart drops the curvature history, which
            # tightens the last digits when the first run stopped on a flat stretch.
            candidate = (np.inf, theta, False, "")
            for polish in (False, True):
                if iterations >= budget:
                    break
                with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                    res = optimize.minimize(objective, candidate[1], jac=True, method="L-BFGS-B", bounds=bounds,
                                            options={**options, "maxiter": budget - iterations,
                                                     "maxfun": 20 * budget + 100})
                iterations += int(res.nit)
                success, message = _judge(res, objective)
                value = float(res.fun) if np.isfinite(res.fun) else np.inf
                # A polish that fails or does worse (e.g. out of iterations) leaves the converged first run.
                if not polish or (success and value <= candidate[0]):
                    candidate = (value, np.asarray(res.x), success, message)
                if not success:
                    break
        if best is None or (candidate[2], -candidate[0]) > (best[2], -best[0]):
            best = candidate
        if best[2] or iterations >= budget:
            break
    assert best is not None
    value, theta, converged, message = best
    params = {name: float(v) for name, v in zip(names, np.exp(theta))}
    log_likelihood = -value * total
    if not np.isfinite(log_likelihood):
        converged, message = False, "the log-likelihood is not finite at the optimum"
    elif converged:
        off = [f"{name} = {v:.3g}" for name, v in params.items() if not PARAM_MIN <= v <= PARAM_MAX]
        if off:
            converged = False
            message = (f"parameters ran off to the bounds ({', '.join(off)}; plausible range {PARAM_MIN:g} to"
                       f" {PARAM_MAX:g}): the data do not identify the model")
    return FitResult(params=params, log_likelihood=float(log_likelihood), converged=bool(converged),
                     message=message, iterations=iterations, n=int(round(total)))


def _judge(res: optimize.OptimizeResult, objective: Callable[[Array], tuple[float, Array]]) -> tuple[bool, str]:
    message = str(res.message)
    if not np.isfinite(res.fun):
        return False, "the log-likelihood is not finite"
    if res.success:
        return True, f"converged: {message}"
    if res.status == 1:
        return False, f"iteration limit reached before convergence ({message})"
    # L-BFGS-B often ends with a failed line search when it is already at the optimum within rounding:
    # accept that when the gradient says so.
    _, grad = objective(np.asarray(res.x))
    at_bound = np.abs(res.x) >= _LOG_BOUND * (1 - 1e-9)
    if np.all(np.isfinite(grad)) and np.max(np.abs(np.where(at_bound, 0.0, grad))) < 1e-6:
        return True, f"converged (gradient below 1e-6; optimiser said: {message})"
    return False, f"the optimiser stopped without converging: {message}"


# ---------------------------------------------------------------------------------------------------------
# Public API: fits


def bgnbd_fit(*, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None,
              max_iterations: int = 2000) -> FitResult:
    """Maximum-likelihood BG/NBD. weights: how many customers each row stands for (identical rows may be
    passed once with their count)."""
    return _nbd_fit(x, t_x, T, weights, max_iterations, k=0)


def mbgnbd_fit(*, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, weights: ArrayLike | None = None,
               max_iterations: int = 2000) -> FitResult:
    """Maximum-likelihood MBG/NBD (see bgnbd_fit)."""
    return _nbd_fit(x, t_x, T, weights, max_iterations, k=1)


def gamma_gamma_fit(*, x: ArrayLike, m: ArrayLike, weights: ArrayLike | None = None,
                    max_iterations: int = 2000) -> FitResult:
    """Maximum-likelihood Gamma-Gamma on the customers with x >= 1 and m > 0 (the others are left out and not
    counted in n)."""
    (x_, m_), w = _fit_columns({"x": x, "m": m}, weights)
    x_, m_ = _array(x_, "x", FitError), _array(m_, "m", FitError)
    if np.any(x_ != np.floor(x_)):
        raise FitError("x must be whole numbers (repeat purchases)")
    usable = (x_ >= 1) & (m_ > 0)
    if not usable.any():
        raise FitError("no customer with a repeat purchase (x >= 1) and a positive mean spend (m > 0)")
    (x_, m_), w = _group([x_[usable], m_[usable]], w[usable], probe=1)
    if np.all(m_ == m_[0]):
        raise FitError(f"every repeat buyer has the same mean spend ({m_[0]:g}): the spread of spend across"
                       " customers cannot be estimated")
    total = float(w.sum())
    ux, inverse = np.unique(x_, return_inverse=True)
    log_m = np.log(m_)
    d = _GgData(mx=m_ * x_, w=w, wx=w * x_, ux=ux, ux_w=np.bincount(inverse.ravel(), weights=w),
                sum_w_log_m=float(w @ log_m), sum_wx_log_m=float((w * x_) @ log_m), total=total)
    mean = float(w @ m_ / total)
    # Start at a population mean p γ/(q-1) equal to the observed mean spend.
    starts = [(1.0, 2.0, mean), (5.0, 3.0, 0.4 * mean)]
    return _maximise(lambda theta: _gg_objective(theta, d), starts, GG_PARAMS, total, max_iterations)


# ---------------------------------------------------------------------------------------------------------
# Public API: per-customer likelihoods and predictions


def bgnbd_log_likelihood(*, params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    return _nbd_log_likelihood(params, x, t_x, T, k=0)


def mbgnbd_log_likelihood(*, params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    return _nbd_log_likelihood(params, x, t_x, T, k=1)


def gamma_gamma_log_likelihood(*, params: Mapping[str, float], x: ArrayLike, m: ArrayLike) -> Array:
    """Per customer; defined for x >= 1 and m > 0 only (NaN elsewhere)."""
    p, q, gamma = _params(params, GG_PARAMS)
    x_, m_ = np.broadcast_arrays(_array(x, "x"), _array(m, "m"))
    ok = (x_ >= 1) & (m_ > 0)
    xs, ms = np.where(ok, x_, 1.0), np.where(ok, m_, 1.0)
    px = p * xs
    ll = (special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q) + q * np.log(gamma)
          + (px - 1) * np.log(ms) + px * np.log(xs) - (px + q) * np.log(gamma + ms * xs))
    return np.where(ok, ll, np.nan)


def _p_alive(params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike, k: int) -> Array:
    p = _params(params, NBD_PARAMS)
    x_, t_x_, T_ = _rft(x, t_x, T)
    alive = special.expit(-_z(p, x_, t_x_, T_, k))
    return np.where(x_ > 0, alive, 1.0) if k == 0 else alive


def bgnbd_p_alive(*, params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    """P(alive at T | x, t_x, T); exactly 1 where x == 0: BG/NBD customers only drop out after a repeat
    purchase."""
    return _p_alive(params, x, t_x, T, k=0)


def mbgnbd_p_alive(*, params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Array:
    return _p_alive(params, x, t_x, T, k=1)


def _hyp_term(r: float, alpha: float, a: float, b: float, x: Array, T: Array, t: Array, k: int,
              near_one: bool = True) -> Array:
    """(a+b+x+k-1)/(a-1) * [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x+k; a+b+x+k-1; t/(α+T+t))]: the expected
    purchases in (T, T+t] of a customer alive at T (T = 0, x = 0: a new customer)."""
    step = 1e-3
    if near_one and abs(a - 1) < step:
        # a = 1 is a removable singularity (0/0) near which the formula loses digits to cancellation (about
        # 1e-12 / |a-1| relative): interpolate instead, a cubic through a = 1 -/+ step, 1 -/+ 2 step (the
        # function is smooth in a; error about 1e-9).
        nodes = (-2.0, -1.0, 1.0, 2.0)
        u = (a - 1) / step
        result: Array | float = 0.0
        for node in nodes:
            weight = math.prod((u - other) / (node - other) for other in nodes if other != node)
            result = result + weight * _hyp_term(r, alpha, 1 + node * step, b, x, T, t, k, near_one=False)
        return np.asarray(result)
    # Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the published
    # product (tiny power) * (huge 2F1) into (1-z)^(a-1) 2F1(a+b+k-1-r, a-1; C; z), whose 2F1 stays finite for
    # large r+x and z near 1 (long horizons, frequent buyers), where the published form gives inf * 0 = NaN.
    c = a + b + x + k - 1
    z = t / (alpha + T + t)
    power = np.exp((a - 1) * (np.log(alpha + T) - np.log(alpha + T + t)))
    hyp = special.hyp2f1(c - r - x, a - 1, c, z)
    return c / (a - 1) * (1 - power * hyp)


def _expected_purchases(params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike,
                        k: int) -> Array:
    r, alpha, a, b = _params(params, NBD_PARAMS)
    x_, t_x_, T_ = _rft(x, t_x, T)
    t_, x_, t_x_, T_ = np.broadcast_arrays(_array(t, "t"), x_, t_x_, T_)
    alive = _p_alive(params, x_, t_x_, T_, k)
    return np.where(t_ > 0, alive * _hyp_term(r, alpha, a, b, x_, T_, t_, k), 0.0)


def bgnbd_expected_purchases(*, params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike,
                             T: ArrayLike) -> Array:
    """E[Y(t) | x, t_x, T]: expected repeat purchases in (T, T+t] (FHL 2005, eq. 10)."""
    return _expected_purchases(params, t, x, t_x, T, k=0)


def mbgnbd_expected_purchases(*, params: Mapping[str, float], t: ArrayLike, x: ArrayLike, t_x: ArrayLike,
                              T: ArrayLike) -> Array:
    """E[Y(t) | x, t_x, T] under MBG/NBD (Batislam et al. 2007)."""
    return _expected_purchases(params, t, x, t_x, T, k=1)


def _expected_cumulative(params: Mapping[str, float], t: ArrayLike, k: int) -> Array:
    r, alpha, a, b = _params(params, NBD_PARAMS)
    t_ = _array(t, "t")
    zero = np.zeros_like(t_)
    if k == 0:
        value = _hyp_term(r, alpha, a, b, zero, zero, t_, 0)
    else:
        # E[X(t)] = b/(a-1) [1 - (α/(α+t))^r 2F1(r, b+1; a+b; t/(α+t))]: alive after the first purchase with
        # probability b/(a+b), after which it is the BG/NBD term with p ~ Beta(a, b+1).
        value = b / (a + b) * _hyp_term(r, alpha, a, b, zero, zero, t_, 1)
    return np.where(t_ > 0, value, 0.0)


def bgnbd_expected_cumulative(*, params: Mapping[str, float], t: ArrayLike) -> Array:
    """E[X(t)]: expected repeat purchases of a new customer within t weeks of the first (FHL 2005, eq. 9)."""
    return _expected_cumulative(params, t, k=0)


def mbgnbd_expected_cumulative(*, params: Mapping[str, float], t: ArrayLike) -> Array:
    return _expected_cumulative(params, t, k=1)


def gamma_gamma_expected_value(*, params: Mapping[str, float], x: ArrayLike, m: ArrayLike) -> Array:
    """E(M | x, m): the posterior mean spend per transaction, a weighted mean of the population mean
    p γ/(q-1) and the customer's own mean m; the population mean where x == 0 (NaN if q <= 1, where the
    population mean does not exist)."""
    p, q, gamma = _params(params, GG_PARAMS)
    x_, m_ = np.broadcast_arrays(_array(x, "x"), _array(m, "m"))
    population = p * gamma / (q - 1) if q > 1 else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        own = p * (gamma + m_ * x_) / (p * x_ + q - 1)
    return np.where(x_ > 0, own, population)


def clv(*, model: str, params: Mapping[str, float], gg_params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike,
        T: ArrayLike, m: ArrayLike, months: int = 12, monthly_discount_rate: float, margin: float,
        weeks_per_month: float = 365.25 / 12 / 7) -> Array:
    """Discounted margin over the next `months`: sum over month k of the expected purchases in month k times
    the expected spend per purchase times margin, discounted by (1 + d)^k."""
    expected = {"bgnbd": bgnbd_expected_purchases, "mbgnbd": mbgnbd_expected_purchases}.get(model)
    if expected is None:
        raise ValueError(f"model must be 'bgnbd' or 'mbgnbd', got {model!r}")
    if months < 0 or monthly_discount_rate <= -1:
        raise ValueError("months must be >= 0 and monthly_discount_rate > -1")
    value = gamma_gamma_expected_value(params=gg_params, x=x, m=m)
    total = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(t_x), np.shape(T), np.shape(m)))
    previous = np.zeros_like(total)
    for month in range(1, months + 1):
        cumulative = expected(params=params, t=month * weeks_per_month, x=x, t_x=t_x, T=T)
        total = total + (cumulative - previous) / (1 + monthly_discount_rate) ** month
        previous = cumulative
    return total * value * margin


def _crossing_age(params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, p_alive_min: float, k: int
                  ) -> Array:
    r, alpha, a, b = _params(params, NBD_PARAMS)
    if not 0 < p_alive_min < 1:
        raise ValueError(f"p_alive_min must be between 0 and 1, got {p_alive_min}")
    x_, t_x_ = np.broadcast_arrays(_array(x, "x"), _array(t_x, "t_x"))
    # 1/(1 + c R^(r+x)) = p  <=>  R = ((1/p - 1)/c)^(1/(r+x)), R = (α+T)/(α+t_x); in logs, so that huge ages
    # come out as inf instead of overflowing in between.
    log_R = (np.log1p(-p_alive_min) - np.log(p_alive_min) - _log_c(a, b, x_, k)) / (r + x_)
    with np.errstate(over="ignore"):
        age = (alpha + t_x_) * np.exp(log_R) - alpha
    # R <= 1 means P(alive) is at or below p already at T = t_x: the crossing is then the last purchase
    # itself (exactly t_x, not t_x plus rounding).
    age = np.where(log_R > 0, np.maximum(age, t_x_), t_x_)
    return np.where(x_ > 0, age, np.inf) if k == 0 else age


def bgnbd_crossing_age(*, params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, p_alive_min: float) -> Array:
    """The age T at which P(alive) falls to p_alive_min (never below t_x); +inf where x == 0, whose P(alive)
    is 1 forever under BG/NBD."""
    return _crossing_age(params, x, t_x, p_alive_min, k=0)


def mbgnbd_crossing_age(*, params: Mapping[str, float], x: ArrayLike, t_x: ArrayLike, p_alive_min: float
                        ) -> Array:
    """The age T at which P(alive) falls to p_alive_min (never below t_x)."""
    return _crossing_age(params, x, t_x, p_alive_min, k=1)
