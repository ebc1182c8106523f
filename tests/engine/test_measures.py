"""The chaos, entropy and window measures against values known from theory and reference computations."""

import math

import numpy as np
import pytest

from consciousness.engine.measures import (
    active_rate,
    common_mode_figures,
    connectivity,
    correlation_matrix,
    covariance,
    higuchi_fd,
    higuchi_pooled,
    increment_sums,
    largest_lyapunov,
    mean_abs_correlation,
    mean_abs_offdiagonal,
    participation_ratio,
    recurrent_share,
    renormalise,
    shannon_entropy_normalized,
    spectral_spread,
    synchrony,
)
from consciousness.engine.window import sums_of, sums_slid, window_figures_of_sums


def logistic_orbit(n: int, x0: float = 0.1234) -> np.ndarray:
    x = np.empty(n)
    x[0] = x0
    for i in range(1, n):
        x[i] = 4.0 * x[i - 1] * (1.0 - x[i - 1])
    return x


def test_benettin_exponent_of_the_logistic_map_at_r4_is_ln2():
    advance = lambda x: 4.0 * x * (1.0 - x)  # noqa: E731
    tangent = lambda x, v: (4.0 - 8.0 * x) * v  # noqa: E731
    exponent = largest_lyapunov(advance, tangent, np.array([0.1234]), np.array([1.0]), steps=20_000, discard=100)
    assert exponent == pytest.approx(math.log(2), abs=0.02)


@pytest.mark.parametrize("scale", [0.5, 0.9, 1.3])
def test_benettin_exponent_of_a_linear_map_is_the_log_of_its_spectral_radius(scale):
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((6, 6))
    matrix *= scale / np.abs(np.linalg.eigvals(matrix)).max()
    x0 = np.zeros(6)  # a linear map's tangent dynamics do not depend on where it is
    exponent = largest_lyapunov(lambda x: matrix @ x, lambda x, v: matrix @ v, x0, rng.standard_normal(6), steps=4000, discard=200)
    assert exponent == pytest.approx(math.log(scale), abs=0.01)


def test_renormalise_returns_the_unit_vector_and_the_log_norm():
    v, log_norm = renormalise(np.array([3.0, 4.0]))
    assert np.allclose(v, [0.6, 0.8]) and log_norm == pytest.approx(math.log(5.0))
    with pytest.raises(ValueError):
        renormalise(np.zeros(3))


def test_higuchi_of_white_noise_is_two():
    noise = np.random.default_rng(7).standard_normal(2000)
    assert higuchi_fd(noise) == pytest.approx(2.0, abs=0.1)


def test_higuchi_of_a_sine_is_one():
    assert higuchi_fd(np.sin(np.linspace(0, 4 * np.pi, 1000))) == pytest.approx(1.0, abs=0.1)


def test_higuchi_of_brownian_motion_is_one_and_a_half():
    walk = np.cumsum(np.random.default_rng(8).standard_normal(4000))
    assert higuchi_fd(walk) == pytest.approx(1.5, abs=0.1)


def test_higuchi_of_a_flat_series_is_one():
    assert higuchi_fd(np.zeros(100)) == 1.0


def test_entropy_is_zero_for_one_bin_and_one_for_a_uniform_spread():
    one_bin = shannon_entropy_normalized(np.full(32, 0.42), 10)
    # +0.0, not -0.0: the stream would say "-0.0" where the history (SQLite keeps no sign on zero) says 0.0
    assert one_bin == 0.0 and math.copysign(1.0, one_bin) == 1.0
    assert shannon_entropy_normalized((np.arange(100) + 0.5) / 100, 10) == pytest.approx(1.0)
    assert shannon_entropy_normalized(np.array([0.0, 1.0]), 2) == pytest.approx(1.0)


def test_entropy_matches_numpy_histogram():
    values = np.random.default_rng(3).random(500)
    counts, _ = np.histogram(values, bins=8, range=(0.0, 1.0))
    p = counts[counts > 0] / counts.sum()
    assert shannon_entropy_normalized(values, 8) == pytest.approx(-(p * np.log(p)).sum() / math.log(8))


def test_correlation_handles_flat_units():
    samples = np.random.default_rng(4).random((50, 4))
    samples[:, 2] = 0.3
    corr = correlation_matrix(samples)
    assert np.all(np.isfinite(corr))
    assert corr[2, 2] == 1.0 and np.all(corr[2, [0, 1, 3]] == 0.0)
    assert np.allclose(corr[[0, 1, 3]][:, [0, 1, 3]], np.corrcoef(samples[:, [0, 1, 3]], rowvar=False))


@pytest.mark.parametrize(
    "series, expected",
    [
        (np.random.default_rng(7).standard_normal(2000), 2.0),
        (np.sin(np.linspace(0, 4 * np.pi, 1000)), 1.0),
        (np.cumsum(np.random.default_rng(8).standard_normal(4000)), 1.5),
    ],
    ids=["white noise", "sine", "brownian"],
)
def test_pooled_higuchi_gives_the_reference_dimensions(series, expected):
    assert higuchi_pooled(increment_sums(series, 10), series.size) == pytest.approx(expected, abs=0.1)


def test_pooled_higuchi_agrees_with_higuchi_on_short_windows():
    rng = np.random.default_rng(9)
    for series in (rng.standard_normal(256), np.cumsum(rng.standard_normal(256)), 0.5 + 0.1 * np.sin(np.arange(256) / 9.0)):
        assert higuchi_pooled(increment_sums(series, 10), 256) == pytest.approx(higuchi_fd(series, 10), abs=0.03)


def test_pooled_higuchi_of_a_flat_series_is_one():
    assert higuchi_pooled(increment_sums(np.full(100, 0.3), 10), 100) == 1.0


def test_covariance_matches_numpy():
    samples = np.random.default_rng(10).random((80, 5))
    assert np.allclose(covariance(samples), np.cov(samples, rowvar=False, bias=True))


def test_mean_abs_correlation_matches_the_correlation_matrix():
    samples = np.random.default_rng(11).random((60, 7))
    samples[:, 3] = 0.2  # a flat unit counts 0
    assert mean_abs_correlation(covariance(samples)) == pytest.approx(mean_abs_offdiagonal(correlation_matrix(samples)))
    assert connectivity(samples) == pytest.approx(mean_abs_offdiagonal(correlation_matrix(samples)))


def test_synchrony_is_one_for_identical_units_and_small_for_independent_ones():
    rng = np.random.default_rng(12)
    base = rng.random(500)
    assert synchrony(covariance(np.stack([base] * 8, axis=1))) == pytest.approx(1.0)
    assert synchrony(covariance(rng.random((5000, 16)))) == pytest.approx(1 / 16, abs=0.01)


def test_participation_ratio_counts_the_modes_in_use():
    assert participation_ratio(np.eye(10)) == pytest.approx(10.0)
    assert participation_ratio(np.diag([1.0, 1.0, 1.0, 0, 0])) == pytest.approx(3.0)


def test_spectral_spread_ignores_the_common_mode():
    rng = np.random.default_rng(13)
    independent = rng.standard_normal((20000, 9))
    # independent units use every mode but the common one equally: spread 1
    assert spectral_spread(covariance(independent)) == pytest.approx(1.0, abs=0.02)
    # adding a strong common drive changes nothing once the population-mean mode is projected out
    common = independent + 5.0 * rng.standard_normal((20000, 1))
    assert spectral_spread(covariance(common)) == pytest.approx(spectral_spread(covariance(independent)), abs=0.02)
    # two groups moving in opposition use a single mode: nothing to spread over
    signal = rng.standard_normal(20000)[:, None]
    assert spectral_spread(covariance(np.hstack([signal, signal, -signal, -signal]))) == 0.0


def test_recurrent_share_is_the_recurrent_part_of_the_input_power():
    assert recurrent_share(np.array([3.0, 4.0]), 0.0, np.zeros(2)) == 1.0
    assert recurrent_share(np.array([1.0, 1.0]), 1.0, np.zeros(2)) == pytest.approx(0.5)
    assert recurrent_share(np.zeros(2), 0.0, np.array([1.0, 0.0])) == 0.0
    assert recurrent_share(np.zeros(2), 0.0, np.zeros(2)) == 0.0


def test_active_rate_is_the_mean_rate_of_the_units_above_half():
    assert active_rate(np.array([0.1, 0.6, 0.8])) == pytest.approx(0.7)
    assert active_rate(np.array([0.1, 0.2])) == 0.0


@pytest.mark.parametrize("common", [0.0, 0.5, 3.0])
def test_common_mode_figures_equal_synchrony_and_spectral_spread_of_the_covariance(common):
    rng = np.random.default_rng(5)
    samples = rng.random((400, 12)) + common * rng.standard_normal((400, 1))  # a shared signal of some weight
    population_mean = samples.mean(axis=1)
    residual = covariance(samples - population_mean[:, None])  # P C P: the rates less each tick's mean
    unity, spread = common_mode_figures(residual, float(population_mean.var()))
    cov = covariance(samples)
    assert unity == pytest.approx(synchrony(cov), abs=1e-12)
    assert spread == pytest.approx(spectral_spread(cov), abs=1e-12)


def test_running_window_sums_equal_the_sums_of_the_windows():
    rng = np.random.default_rng(6)
    rates = rng.random((300, 8))
    sums = sums_of(rates[:256], 64)
    for t in range(256, 300):
        sums = sums_slid(sums, rates[t], float(rates[t].mean()), rates[[t - 256, t - 64]])
    assert np.allclose(sums, sums_of(rates[44:300], 64), atol=1e-9)
    connectivity_now, unity, spread = window_figures_of_sums(sums, 256, 64)
    assert connectivity_now == pytest.approx(connectivity(rates[44:300]), abs=1e-9)
    assert unity == pytest.approx(synchrony(covariance(rates[-64:])), abs=1e-9)
    assert spread == pytest.approx(spectral_spread(covariance(rates[-64:])), abs=1e-9)
