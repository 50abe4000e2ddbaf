"""Adaptive exit threshold for FREE shallow-deep decoding (Bae et al. 2023, Sec. 3.3).

A supervised two-component Beta mixture over shallow confidences c in [0, 1]:
component 1 = "the shallow prediction agrees with the deep one", component 0 =
"it disagrees". The threshold is read off the posterior P(agree | c) on a grid.

Pure python/numpy on purpose: upstream imported matplotlib (and scipy) at module
load; here the Beta density comes from ``math.lgamma`` and nothing heavy is
imported. Torch tensors are accepted by duck typing (``.tolist()``).

Published defects and what this module does instead
---------------------------------------------------
1. Lost lambda_r mixing. Upstream computed ``0.8 * pi_c * Beta_c(x)`` and then
   overwrote it with ``0.2 * onehot(y)``, so the "mixing" was dead code and the
   responsibilities were (floored, renormalised) hard labels. The labels are
   observed, so the correct supervised E-step is the label itself: we use
   responsibilities = labels exactly (the weighted method of moments with 0/1
   weights, i.e. per-class moments). No lambda_r parameter exists.
2. Ignored mixture weights. Upstream kept pi = (0.5, 0.5) and used equal priors
   in the posterior. We estimate pi as the class frequencies of the stored pairs
   and use them: P(agree|c) = pi1 B1(c) / (pi1 B1(c) + pi0 B0(c)).
3. Degenerate fits. Upstream produced r == 0.5 (threshold locks at grid_min)
   when one class is absent and NaN (threshold locks at grid_max) for a
   zero-variance class. We refuse to fit unless each class has at least
   ``min_per_class`` samples (the previous threshold is kept), floor the
   per-class variance at ``min_var`` and cap it just below m(1-m) so alpha and
   beta are always finite and positive, and compute the posterior in log space.
   ``update()`` never returns NaN.
4. Feedback loop. Calibration pairs are only produced when a deep pass runs
   over stacked (exited) tokens. A high threshold means few exits, hence few
   pairs at high confidence, so the fit cannot learn that high confidence is
   safe and the threshold stays high (upstream issue #16: stuck at 0.9).
   Remedy, for the engine: ``should_explore(step)`` returns True on a
   deterministic schedule (every ``explore_every``-th step, off by default);
   on such a step the engine should take the deep pass even though the shallow
   confidence is above the threshold and record the (confidence, agree) pair,
   so pairs keep arriving above the threshold. The engine should also record
   the pair at every deep step with an empty stack (both predictions exist
   there; upstream discarded it), which supplies the below-threshold side.
   ``window`` optionally bounds the stored pairs (upstream: unbounded) so the
   fit can track drift instead of being dominated by old data.

Threshold rule
--------------
grid = linspace(grid_min, grid_max, grid_points). The threshold is the smallest
grid point g such that P(agree|x) > zeta for every grid point x >= g; grid_max
if the posterior at grid_max is not above zeta; grid_min if all points are.
Published rule: n = #{x : r(x) > zeta}, threshold = grid[clip(G - n, 0, G-1)].
For a posterior that is increasing in c the points above zeta form a suffix of
the grid and both rules pick the same point; for a non-monotone posterior the
published count can land on a point whose posterior is below zeta, ours cannot.
"""

from __future__ import annotations

import math
from collections import deque
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "BetaMixtureThreshold",
    "beta_logpdf",
    "fit_beta_moments",
    "threshold_from_posterior",
    "published_threshold",
]


def _to_list(x) -> list:
    if hasattr(x, "tolist"):  # torch tensor / numpy array: one device sync
        x = x.tolist()
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def beta_logpdf(x, a: float, b: float) -> np.ndarray:
    """log Beta(x; a, b) for x in (0, 1)."""
    x = np.asarray(x, dtype=np.float64)
    log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    return (a - 1.0) * np.log(x) + (b - 1.0) * np.log1p(-x) - log_norm


def fit_beta_moments(x, w=None, min_var: float = 1e-6) -> Tuple[float, float]:
    """Weighted method-of-moments Beta fit, always finite and positive.

    The variance is clamped to [min_var, 0.999 * m(1-m)]: below, a constant
    class would divide by zero; above, alpha would be <= 0.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=np.float64)
    m = float(np.sum(w * x) / np.sum(w))
    v = float(np.sum(w * (x - m) ** 2) / np.sum(w))
    v = min(max(v, min_var), 0.999 * m * (1.0 - m))
    common = m * (1.0 - m) / v - 1.0
    return m * common, (1.0 - m) * common


def threshold_from_posterior(grid: np.ndarray, post: np.ndarray, zeta: float) -> float:
    """Smallest grid point from which the posterior stays above zeta (see module doc)."""
    above = np.asarray(post) > zeta
    if not above[-1]:
        return float(grid[-1])
    below = np.flatnonzero(~above)
    return float(grid[below[-1] + 1]) if below.size else float(grid[0])


# The published estimator's settings: the candidate grid, the agreement level zeta and the number of refits
# (the command line's --adapt_* defaults are these).
DEFAULTS = {"grid_min": 0.3, "grid_max": 0.9, "grid_points": 10, "zeta": 0.4, "max_updates": 300}


class BetaMixtureThreshold:
    """Adaptive threshold estimator (fixed version of upstream ``BetaMixture1D``).

    Args (published values as defaults):
        grid_min, grid_max, grid_points: threshold grid (0.3, 0.9, 10).
        zeta: posterior level P(agree|c) the threshold must exceed (0.4).
        max_updates: number of fits after which the threshold freezes (300 for
            T5, upstream used 100 for LongT5). Only real fits count.
        eps: confidences are clipped to [eps, 1 - eps] before fitting.
        init_threshold: lambda_0, returned until the first successful fit.
        window: keep only the most recent ``window`` pairs (None = unbounded).
        min_per_class: a fit needs this many samples of each class.
        min_var: variance floor for a class (zero-variance guard).
        explore_every: exploration period for ``should_explore`` (None = off).
    """

    def __init__(
        self,
        grid_min: float = DEFAULTS["grid_min"],
        grid_max: float = DEFAULTS["grid_max"],
        grid_points: int = DEFAULTS["grid_points"],
        zeta: float = DEFAULTS["zeta"],
        max_updates: int = DEFAULTS["max_updates"],
        eps: float = 1e-4,
        init_threshold: float = 0.9,
        window: Optional[int] = None,
        min_per_class: int = 10,
        min_var: float = 1e-6,
        explore_every: Optional[int] = None,
    ):
        if not grid_min <= grid_max or grid_points < 1:
            raise ValueError("need grid_min <= grid_max and grid_points >= 1")
        if window is not None and window < 1:
            raise ValueError("window must be None or >= 1")
        if explore_every is not None and explore_every < 1:
            raise ValueError("explore_every must be None or >= 1")
        self.grid_min, self.grid_max, self.grid_points = grid_min, grid_max, grid_points
        self.zeta, self.max_updates, self.eps = zeta, max_updates, eps
        self.init_threshold = init_threshold
        self.window, self.min_per_class, self.min_var = window, max(1, min_per_class), min_var
        self.explore_every = explore_every
        self.grid = np.linspace(grid_min, grid_max, grid_points)
        self._conf: deque = deque(maxlen=window)
        self._agree: deque = deque(maxlen=window)
        self._threshold = float(init_threshold)
        self.n_fits = 0
        self.alphas: Optional[Tuple[float, float]] = None  # (disagree, agree)
        self.betas: Optional[Tuple[float, float]] = None
        self.pi: Optional[Tuple[float, float]] = None
        self.history: List[float] = []

    # -- data -----------------------------------------------------------------
    def add(self, confidences, agree) -> None:
        """Append calibration pairs; non-finite confidences are dropped."""
        conf, ag = _to_list(confidences), _to_list(agree)
        if len(conf) != len(ag):
            raise ValueError(f"{len(conf)} confidences but {len(ag)} agree labels")
        for c, a in zip(conf, ag):
            c = float(c)
            if math.isfinite(c):
                self._conf.append(c)
                self._agree.append(bool(a))

    def __len__(self) -> int:
        return len(self._conf)

    @property
    def data(self) -> Tuple[np.ndarray, np.ndarray]:
        return np.array(self._conf, dtype=np.float64), np.array(self._agree, dtype=bool)

    @property
    def threshold(self) -> float:
        return self._threshold

    def should_explore(self, step: int) -> bool:
        """True on every ``explore_every``-th step (0-based step: steps k-1, 2k-1, ...).

        On such a step the engine takes the deep pass even if the shallow
        confidence is above threshold and records the pair (defect 4, module doc).
        """
        return self.explore_every is not None and (step + 1) % self.explore_every == 0

    # -- fit --------------------------------------------------------------------
    def fit(self) -> bool:
        """Fit on the stored pairs; False (state untouched) if the data is degenerate."""
        x, y = self.data
        n1 = int(y.sum())
        n0 = y.size - n1
        if n1 < self.min_per_class or n0 < self.min_per_class:
            return False
        x = np.clip(x, self.eps, 1.0 - self.eps)
        a0, b0 = fit_beta_moments(x[~y], min_var=self.min_var)
        a1, b1 = fit_beta_moments(x[y], min_var=self.min_var)
        self.alphas, self.betas = (a0, a1), (b0, b1)
        self.pi = (n0 / y.size, n1 / y.size)
        self.n_fits += 1
        return True

    def posterior(self, c) -> np.ndarray:
        """P(agree | c) under the fitted mixture (priors included)."""
        if self.alphas is None:
            raise RuntimeError("no fit yet")
        c = np.clip(np.asarray(c, dtype=np.float64), self.eps, 1.0 - self.eps)
        l0 = math.log(self.pi[0]) + beta_logpdf(c, self.alphas[0], self.betas[0])
        l1 = math.log(self.pi[1]) + beta_logpdf(c, self.alphas[1], self.betas[1])
        return 1.0 / (1.0 + np.exp(np.clip(l0 - l1, -700.0, 700.0)))

    def update(self) -> float:
        """Refit (while fewer than ``max_updates`` fits were made) and return the threshold."""
        if self.n_fits < self.max_updates and self.fit():
            self._threshold = threshold_from_posterior(
                self.grid, self.posterior(self.grid), self.zeta)
        self.history.append(self._threshold)
        return self._threshold


def published_threshold(
    conf: Sequence[float],
    agree: Sequence[bool],
    eps: float = 1e-4,
    lam_r: float = 0.8,
) -> float:
    """Upstream behaviour, defects included, for comparison in tests (with the published grid and zeta, DEFAULTS).

    Responsibilities = floored, renormalised ``(1 - lam_r) * onehot(y)``; moments
    without a variance floor; equal priors; count rule grid[clip(G - n, 0, G-1)].
    A NaN fit (zero pooled variance) compares False everywhere: grid_max.
    """
    x = np.clip(np.asarray(_to_list(conf), dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(_to_list(agree), dtype=bool)
    r = np.stack([(~y).astype(np.float64), y.astype(np.float64)]) * (1.0 - lam_r)
    r[r <= eps] = eps
    r /= r.sum(axis=0)
    params = []
    with np.errstate(all="ignore"):
        for w in r:
            m = np.sum(w * x) / np.sum(w)
            v = np.sum(w * (x - m) ** 2) / np.sum(w)
            a = m * (m * (1 - m) / v - 1)
            params.append((a, a * (1 - m) / m))
        grid_points, zeta = DEFAULTS["grid_points"], DEFAULTS["zeta"]
        grid = np.linspace(DEFAULTS["grid_min"], DEFAULTS["grid_max"], grid_points)
        pdf = []
        for a, b in params:
            try:
                pdf.append(np.exp(beta_logpdf(grid, a, b)))
            except ValueError:  # lgamma of NaN/inf/non-positive
                pdf.append(np.full_like(grid, np.nan))
        means = [a / (a + b) for a, b in params]
        k = 1 if means[1] > means[0] else 0
        post = pdf[k] / (pdf[k] + pdf[1 - k])
    n = int(np.sum(post > zeta))
    return float(grid[int(np.clip(grid_points - n, 0, grid_points - 1))])
