"""The Gaussian process of Bayesian optimisation: interpolation, variance, likelihood fit, gradients."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from archsearch.oracles.gp import GaussianProcess, _lml_and_grad, _squared_differences


def data(n: int = 25, d: int = 3, seed: int = 0, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d))
    y = np.sin(4 * x[:, 0]) + (x[:, 1] - 0.3) ** 2 + noise * rng.standard_normal(n)
    return x, y


def test_interpolates_noise_free_data():
    x, y = data()
    gp = GaussianProcess().fit(x, y, rng=np.random.default_rng(0))
    mean, var = gp.predict(x)
    assert np.max(np.abs(mean - y)) < 0.02 * np.std(y)
    assert gp.noise_variance < 1e-2


def test_variance_shrinks_at_observed_points():
    x, y = data(d=2)
    theta = np.log([0.1, 0.1, 1.0, 1e-6])  # short length scales: little is known between the points
    gp = GaussianProcess().fit(x, y, theta=theta, optimize=False)
    prior = gp.signal_variance * gp.y_std**2
    _, var_seen = gp.predict(x)
    _, var_far = gp.predict(np.array([[2.0, 2.0], [-1.0, 0.5]]))
    assert np.max(var_seen) < 1e-4 * prior
    assert np.min(var_far) > 0.99 * prior
    # with fitted hyperparameters too: lower at the data than anywhere else on average
    gp.fit(x, y, rng=np.random.default_rng(0))
    _, var_seen = gp.predict(x)
    _, var_grid = gp.predict(np.random.default_rng(1).random((200, 2)))
    assert np.mean(var_seen) < 0.5 * np.mean(var_grid)


def test_fit_improves_log_marginal_likelihood():
    x, y = data(noise=0.01)
    gp = GaussianProcess()
    gp.fit(x, y, optimize=False)
    before = gp.log_marginal_likelihood()
    gp.fit(x, y, rng=np.random.default_rng(0))
    after = gp.log_marginal_likelihood()
    assert after > before + 10
    # the irrelevant third input gets a longer length scale than the first
    assert gp.lengthscales[2] > gp.lengthscales[0]


def test_likelihood_gradient_matches_finite_differences():
    x, y = data(n=15, d=2, noise=0.05)
    gp = GaussianProcess().fit(x, y, optimize=False)
    sq = [_squared_differences(x)]
    theta = np.array([-0.5, 0.3, 0.2, -3.0])
    numeric = approx_fprime(theta, lambda t: _lml_and_grad(t, sq, gp.y)[0], 1e-6)
    assert np.allclose(_lml_and_grad(theta, sq, gp.y)[1], numeric, atol=1e-4)
    # a sum of two components: one on the first column, one on both
    sq2 = [_squared_differences(x[:, [0]]), _squared_differences(x)]
    theta2 = np.array([-0.2, 0.1, -0.4, -0.5, 0.3, -3.0])
    numeric2 = approx_fprime(theta2, lambda t: _lml_and_grad(t, sq2, gp.y)[0], 1e-6)
    assert np.allclose(_lml_and_grad(theta2, sq2, gp.y)[1], numeric2, atol=1e-4)


def test_input_gradients_match_finite_differences():
    x, y = data(n=20, d=3, noise=0.01)
    gp = GaussianProcess().fit(x, y, rng=np.random.default_rng(0))
    point = np.array([0.3, 0.6, 0.1])
    mean, var, dmean, dvar = gp.predict_with_gradient(point)
    m2, v2 = gp.predict(point[None])
    assert mean == pytest.approx(m2[0]) and var == pytest.approx(v2[0])
    assert np.allclose(dmean, approx_fprime(point, lambda p: gp.predict(p[None])[0][0], 1e-7), atol=1e-4)
    assert np.allclose(dvar, approx_fprime(point, lambda p: gp.predict(p[None])[1][0], 1e-7), atol=1e-5)


def test_sum_of_components_fits_and_has_right_input_gradients():
    x, y = data(n=20, d=3, noise=0.01)
    gp = GaussianProcess(components=[np.array([0, 1]), np.arange(3)]).fit(x, y, rng=np.random.default_rng(0))
    assert len(gp.theta) == 2 + 3 + 2 + 1
    point = np.array([0.3, 0.6, 0.1])
    mean, var, dmean, dvar = gp.predict_with_gradient(point)
    assert mean == pytest.approx(gp.predict(point[None])[0][0])
    assert np.allclose(dmean, approx_fprime(point, lambda p: gp.predict(p[None])[0][0], 1e-7), atol=1e-4)
    assert np.allclose(dvar, approx_fprime(point, lambda p: gp.predict(p[None])[1][0], 1e-7), atol=1e-5)
    assert np.max(np.abs(gp.predict(x)[0] - y)) < 0.1 * np.std(y)


def test_fantasies_collapse_variance_but_keep_the_mean():
    x, y = data()
    gp = GaussianProcess().fit(x, y, rng=np.random.default_rng(0))
    pending = np.array([[0.95, 0.95, 0.95]])
    mean, var = gp.predict(pending)
    believer = gp.with_fantasies(pending)
    mean2, var2 = believer.predict(pending)
    assert mean2[0] == pytest.approx(mean[0], abs=1e-3 * np.std(y))
    assert var2[0] < 0.1 * var[0]


def test_constant_outputs_and_single_point_do_not_crash():
    gp = GaussianProcess().fit(np.array([[0.5, 0.5]]), np.array([1.0]))
    mean, var = gp.predict(np.array([[0.5, 0.5], [0.0, 1.0]]))
    assert np.all(np.isfinite(mean)) and np.all(var > 0)
    gp = GaussianProcess().fit(np.random.default_rng(0).random((6, 2)), np.ones(6))
    mean, _ = gp.predict(np.array([[0.2, 0.2]]))
    assert mean[0] == pytest.approx(1.0)


def test_min_noise_is_the_least_noise_the_fit_may_find():
    # KerasTuner's alpha: noise-free data would be interpolated (noise ~1e-6); a floor keeps it smooth.
    x, y = data()
    gp = GaussianProcess(min_noise=0.05).fit(x, y, rng=np.random.default_rng(0))
    assert gp.noise_variance >= 0.05 * (1 - 1e-9)
    assert gp.with_fantasies(x[:2]).min_noise == 0.05


def test_the_bayesian_oracle_takes_kerastuner_alpha_and_refuses_a_bad_one():
    from archsearch.errors import ConfigError
    from archsearch.space.hyperparameters import HyperParameters
    from archsearch.oracles import BayesianOptimizationOracle
    from archsearch.oracles.driving import drive

    hp = HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = BayesianOptimizationOracle(hyperparameters=hp, objective="loss", max_trials=8, alpha=1e-3, beta=2.6,
                                        num_initial_points=3, seed=0)
    drive(oracle, lambda h: (h["x"] - 0.3) ** 2, max_asks=5)
    assert oracle.gp is not None and oracle.gp.min_noise == 1e-3 and oracle.gp.noise_variance >= 1e-3 * (1 - 1e-9)
    for bad in (0, -1.0, "lots", 0.9):
        with pytest.raises(ConfigError, match="alpha"):
            BayesianOptimizationOracle(hyperparameters=hp, objective="loss", alpha=bad)


def test_irrelevant_columns_keep_moderate_length_scales():
    # The length-scale prior is steep beyond ~3x its mode: a column the outputs do not depend on must not
    # get a length scale of tens (the former log-normal prior gave 26-37 here), which makes the posterior
    # mean a slope along it and sends the acquisition to a bound.
    rng = np.random.default_rng(0)
    x = rng.random((20, 6))
    y = np.sin(6 * x[:, 0]) + 0.5 * x[:, 1]
    gp = GaussianProcess().fit(x, y, rng=np.random.default_rng(0))
    assert gp.lengthscales[0] < 1.0
    assert np.all(gp.lengthscales[2:] < 5.0)


def test_posterior_objective_gradient_matches_finite_differences():
    # The fit maximises likelihood + log prior; both parts' gradients must be right (two components).
    x, y = data(n=15, d=3, noise=0.05)
    gp = GaussianProcess(components=[np.array([0, 1]), np.arange(3)]).fit(x, y, optimize=False)
    sq = [_squared_differences(x[:, c]) for c in gp._parts]
    theta = np.array([-0.2, 0.4, 0.1, -0.5, 0.3, -0.3, 0.2, -4.0])
    numeric = approx_fprime(theta, lambda t: gp._objective(t, sq)[0], 1e-6)
    assert np.allclose(gp._objective(theta, sq)[1], numeric, rtol=1e-4, atol=1e-4)
