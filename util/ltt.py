"""Learn then Test (Angelopoulos, Bates, Candes, Jordan, Lei 2021, "Learn then Test: Calibrating Predictive
Algorithms to Achieve Risk Control"), as CALM calibrates its exit thresholds (Schuster et al. 2022, Sec. 4).

Each candidate threshold lambda_j is a null hypothesis H_j: R(lambda_j) > epsilon, where R is the expected loss
(in [0, 1]) of the early-exit output against the full model's (or the task metric's drop). A valid p-value for
H_j from n i.i.d. calibration losses is the Hoeffding-Bentkus one (LTT Sec. 3.1, after Bates et al. 2021, RCPS,
Sec. 3.1.2 / Prop. 5):

    p_HB = min( exp(-n h1(min(R_hat, eps), eps)),  e * P(Binomial(n, eps) <= ceil(n R_hat)) ),
    h1(a, b) = a log(a / b) + (1 - a) log((1 - a) / (1 - b)).

Fixed-sequence testing (LTT Sec. 4, Prop. 2 / Algorithm 1 with a fixed graph; CALM Sec. 4.2) orders the
thresholds from the most conservative (fewest exits) to the least, rejects H_j while p_j <= delta and stops at
the first p_j > delta; every rejected threshold then has R <= epsilon, jointly, with probability >= 1 - delta
(family-wise error control), so the most efficient rejected one is chosen. None rejected: no threshold is
certified and the full model stays.

The letters follow the issue: epsilon is the tolerated risk, delta the allowed failure probability (CALM's paper
names them the other way round: delta the tolerance, epsilon the confidence level).
"""

import math


def h1(a: float, b: float) -> float:
    """The Bernoulli KL divergence KL(a || b) (0 log 0 = 0)."""
    t = a * math.log(a / b) if a > 0 else 0.0
    return t + ((1 - a) * math.log((1 - a) / (1 - b)) if a < 1 else 0.0)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), summed in log space (no scipy)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    logs = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
            + (n - i) * math.log1p(-p) for i in range(k + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(x - top) for x in logs))


def hoeffding_pvalue(risk: float, n: int, eps: float) -> float:
    return math.exp(-n * h1(min(risk, eps), eps))


def bentkus_pvalue(risk: float, n: int, eps: float) -> float:
    # the 1e-9 keeps n * risk from rounding up past an integer it equals (n R_hat counts losses of 1)
    return min(1.0, math.e * binom_cdf(math.ceil(n * risk - 1e-9), n, eps))


def hb_pvalue(risk: float, n: int, eps: float) -> float:
    """Hoeffding-Bentkus p-value of H: R > eps, from the mean `risk` of n losses in [0, 1]."""
    return min(hoeffding_pvalue(risk, n, eps), bentkus_pvalue(risk, n, eps))


def fixed_sequence(pvalues: list, delta: float) -> int:
    """How many hypotheses, in the given order, fixed-sequence testing rejects: the longest prefix with every
    p-value <= delta (so the valid thresholds are the first that many)."""
    k = 0
    while k < len(pvalues) and pvalues[k] <= delta:
        k += 1
    return k


def learn_then_test(losses_by_threshold: list, eps: float, delta: float) -> dict:
    """losses_by_threshold: one list of per-example losses in [0, 1] per threshold, ordered from the most
    conservative. Returns the empirical risks, p-values, how many are valid and the chosen index (None: none)."""
    n = len(losses_by_threshold[0])
    if not 0 < eps < 1 or not 0 < delta < 1:
        raise ValueError(f"epsilon and delta must be in (0, 1), got {eps} and {delta}")
    if n == 0 or any(len(ls) != n for ls in losses_by_threshold):
        raise ValueError("every threshold needs a loss for each of the same n > 0 examples")
    if any(not 0 <= x <= 1 for ls in losses_by_threshold for x in ls):
        raise ValueError("losses must lie in [0, 1] (the p-values assume bounded losses)")
    risks = [sum(ls) / n for ls in losses_by_threshold]
    pvals = [hb_pvalue(r, n, eps) for r in risks]
    k = fixed_sequence(pvals, delta)
    return {"n": n, "risks": risks, "pvalues": pvals, "valid": k, "chosen": k - 1 if k else None}
