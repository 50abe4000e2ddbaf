import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from util.bmm import (BetaMixtureThreshold, beta_logpdf, fit_beta_moments,
                      published_threshold, threshold_from_posterior)

GRID = np.linspace(0.3, 0.9, 10)
REPO = Path(__file__).resolve().parents[1]


def true_posterior(grid, a1, b1, a0, b0, pi1):
    l1 = math.log(pi1) + beta_logpdf(grid, a1, b1)
    l0 = math.log(1 - pi1) + beta_logpdf(grid, a0, b0)
    return 1.0 / (1.0 + np.exp(l0 - l1))


def expected_threshold(a1, b1, a0, b0, pi1, zeta=0.4, margin=0.05):
    """Analytic answer of the rule; also checks no grid point sits within `margin`
    of zeta, so sampling noise cannot flip the expected answer."""
    post = true_posterior(GRID, a1, b1, a0, b0, pi1)
    assert np.all(np.abs(post - zeta) > margin), post
    return threshold_from_posterior(GRID, post, zeta)


def synth(n1, n0, a1=8, b1=1.5, a0=2, b0=3, seed=0):
    rng = np.random.default_rng(seed)
    c = np.r_[rng.beta(a1, b1, n1), rng.beta(a0, b0, n0)]
    y = np.r_[np.ones(n1, bool), np.zeros(n0, bool)]
    perm = rng.permutation(c.size)
    return c[perm], y[perm]


def test_beta_logpdf_matches_closed_form():
    # Beta(2, 3) pdf = 12 x (1-x)^2
    x = np.array([0.1, 0.5, 0.8])
    np.testing.assert_allclose(np.exp(beta_logpdf(x, 2, 3)), 12 * x * (1 - x) ** 2, rtol=1e-12)


def test_fit_recovers_parameters_and_bayes_threshold():
    c, y = synth(800, 200)
    m = BetaMixtureThreshold()
    m.add(c, y)
    thr = m.update()
    (a0, a1), (b0, b1) = m.alphas, m.betas
    assert a1 == pytest.approx(8, rel=0.15) and b1 == pytest.approx(1.5, rel=0.15)
    assert a0 == pytest.approx(2, rel=0.15) and b0 == pytest.approx(3, rel=0.15)
    assert m.pi == pytest.approx((0.2, 0.8))
    expected = expected_threshold(8, 1.5, 2, 3, pi1=0.8)
    assert thr == pytest.approx(expected)
    assert thr == pytest.approx(GRID[4])  # 0.567: P(agree|0.567)=0.51, P(agree|0.5)=0.28
    assert m.threshold == thr and m.history == [thr]
    # Equal priors (published) would put the threshold higher on the same data.
    assert published_threshold(c, y) > thr


def test_priors_matter_on_imbalanced_data():
    # 10% agree: the Bayes threshold is much higher than the equal-prior one.
    c, y = synth(200, 1800, seed=1)
    bayes = expected_threshold(8, 1.5, 2, 3, pi1=0.1)
    equal_prior = threshold_from_posterior(GRID, true_posterior(GRID, 8, 1.5, 2, 3, 0.5), 0.4)
    assert bayes != pytest.approx(equal_prior)
    m = BetaMixtureThreshold()
    m.add(c, y)
    assert m.update() == pytest.approx(bayes)  # 0.833
    pub = published_threshold(c, y)
    assert pub != pytest.approx(bayes) and pub < bayes


def test_published_count_rule_vs_suffix_rule_on_non_monotone_posterior():
    post = np.array([0.9, 0.9, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    n = int(np.sum(post > 0.4))
    assert GRID[int(np.clip(10 - n, 0, 9))] == pytest.approx(GRID[2])  # published: posterior 0.1
    assert threshold_from_posterior(GRID, post, 0.4) == pytest.approx(GRID[4])
    assert threshold_from_posterior(GRID, np.full(10, 0.9), 0.4) == pytest.approx(0.3)
    assert threshold_from_posterior(GRID, np.full(10, 0.1), 0.4) == pytest.approx(0.9)
    assert threshold_from_posterior(GRID, np.r_[np.full(9, 0.9), 0.1], 0.4) == pytest.approx(0.9)


def test_single_class_keeps_previous_threshold():
    rng = np.random.default_rng(0)
    c = rng.beta(8, 1.5, 300)
    m = BetaMixtureThreshold(init_threshold=0.77)
    m.add(c, np.ones(300, bool))
    assert m.update() == 0.77 and m.n_fits == 0 and m.alphas is None
    # published: identical components, r == 0.5 everywhere -> locks at grid_min
    assert published_threshold(c, np.ones(300, bool)) == pytest.approx(0.3)
    # after a good fit, a later degenerate window keeps the fitted value
    m2 = BetaMixtureThreshold(window=50)
    c2, y2 = synth(800, 200)
    m2.add(c2, y2)
    fitted = m2.update()
    m2.add(rng.beta(8, 1.5, 50), np.ones(50, bool))
    assert m2.update() == fitted and m2.n_fits == 1


def test_min_per_class():
    c, y = synth(30, 4)
    m = BetaMixtureThreshold(min_per_class=5, init_threshold=0.5)
    m.add(c, y)
    assert m.update() == 0.5 and m.n_fits == 0
    m.add([0.2], [False])
    m.update()
    assert m.n_fits == 1


@pytest.mark.parametrize("const", [0.2, 0.0, 1.0])
def test_zero_variance_class_gives_finite_threshold(const):
    rng = np.random.default_rng(0)
    m = BetaMixtureThreshold()
    m.add(rng.beta(8, 1.5, 100), [True] * 100)
    m.add([const] * 50, [False] * 50)
    thr = m.update()
    assert math.isfinite(thr) and thr in GRID and m.n_fits == 1
    assert all(math.isfinite(v) and v > 0 for v in m.alphas + m.betas)
    assert np.all(np.isfinite(m.posterior(GRID)))


def test_both_classes_constant():
    m = BetaMixtureThreshold()
    m.add([0.95] * 20 + [0.95] * 20, [True] * 20 + [False] * 20)
    assert math.isfinite(m.update())


def test_max_updates_caps_fits_and_history():
    m = BetaMixtureThreshold(max_updates=3)
    for seed in range(5):
        c, y = synth(80, 20, seed=seed)
        m.add(c, y)
        m.update()
    assert m.n_fits == 3 and len(m.history) == 5
    frozen = m.threshold
    m.add([0.95] * 5000, [False] * 5000)  # would push the threshold to grid_max
    assert m.update() == frozen and m.history[-1] == frozen


def test_window_keeps_last_n():
    m = BetaMixtureThreshold(window=5)
    m.add([0.1, 0.2, 0.3], [True, False, True])
    m.add([0.4, 0.5, 0.6, 0.7, 0.8], [False] * 5)
    c, y = m.data
    np.testing.assert_allclose(c, [0.4, 0.5, 0.6, 0.7, 0.8])
    assert not y.any() and len(m) == 5
    unbounded = BetaMixtureThreshold()
    unbounded.add(np.linspace(0, 1, 1000), [True] * 1000)
    assert len(unbounded) == 1000


def test_explore_schedule():
    assert not any(BetaMixtureThreshold().should_explore(s) for s in range(100))
    m = BetaMixtureThreshold(explore_every=3)
    assert [s for s in range(10) if m.should_explore(s)] == [2, 5, 8]
    with pytest.raises(ValueError):
        BetaMixtureThreshold(explore_every=0)


def test_add_accepts_torch_and_validates():
    torch = pytest.importorskip("torch")
    m = BetaMixtureThreshold()
    m.add(torch.tensor([0.5, 0.9, float("nan")]), torch.tensor([True, False, True]))
    m.add(0.3, False)
    c, y = m.data
    np.testing.assert_allclose(c, [0.5, 0.9, 0.3])
    assert y.tolist() == [True, False, False]
    with pytest.raises(ValueError):
        m.add([0.1, 0.2], [True])


def test_never_nan_on_random_small_datasets():
    rng = np.random.default_rng(1234)
    for _ in range(400):
        n = int(rng.integers(0, 25))
        kind = rng.integers(0, 4)
        if kind == 0:
            c = rng.random(n)
        elif kind == 1:
            c = rng.choice([0.0, 1.0, 0.5], n)
        elif kind == 2:
            c = np.full(n, rng.random())
        else:
            c = rng.beta(rng.uniform(0.05, 20), rng.uniform(0.05, 20), n)
        y = rng.random(n) < rng.random()
        m = BetaMixtureThreshold(min_per_class=int(rng.integers(1, 4)),
                                 window=None if rng.random() < 0.5 else int(rng.integers(1, 20)))
        m.add(c, y)
        thr = m.update()
        assert math.isfinite(thr) and 0.3 - 1e-12 <= thr <= 0.9 + 1e-12
        if m.alphas is not None:
            assert np.all(np.isfinite(m.posterior(np.linspace(0, 1, 11))))


def test_fit_beta_moments_finite_at_extremes():
    for x in ([0.5] * 10, [1e-4] * 5 + [1 - 1e-4] * 5, [1 - 1e-4] * 10):
        a, b = fit_beta_moments(np.array(x))
        assert math.isfinite(a) and math.isfinite(b) and a > 0 and b > 0


def test_import_does_not_pull_matplotlib_or_scipy():
    code = ("import sys, util.bmm; bad = [m for m in ('matplotlib', 'scipy', 'torch') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
