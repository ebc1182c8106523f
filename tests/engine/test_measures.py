"""The chaos and entropy measures against values known from theory."""

import math

import numpy as np
import pytest

from consciousness.engine.measures import (
    correlation_matrix,
    higuchi_fd,
    lyapunov_rosenstein,
    mean_abs_offdiagonal,
    shannon_entropy_normalized,
    spectrum_figures,
)


def logistic_orbit(n: int, x0: float = 0.1234) -> np.ndarray:
    x = np.empty(n)
    x[0] = x0
    for i in range(1, n):
        x[i] = 4.0 * x[i - 1] * (1.0 - x[i - 1])
    return x


def test_lyapunov_of_the_logistic_map_is_ln2():
    assert lyapunov_rosenstein(logistic_orbit(2000), emb_dim=2, min_tsep=10, traj_len=5) == pytest.approx(math.log(2), abs=0.1)


def test_lyapunov_of_a_periodic_signal_is_near_zero():
    t = np.arange(2000)
    assert abs(lyapunov_rosenstein(np.sin(2 * np.pi * t / 37.3), emb_dim=3, min_tsep=40, traj_len=8)) < 0.1


def test_lyapunov_of_a_flat_or_short_series_is_zero():
    assert lyapunov_rosenstein(np.full(300, 0.5)) == 0.0
    assert lyapunov_rosenstein(np.arange(5.0)) == 0.0


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
    assert shannon_entropy_normalized(np.full(32, 0.42), 10) == 0.0
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


def test_spectrum_of_identical_units_is_fully_unified():
    base = np.random.default_rng(5).random(100)
    corr = correlation_matrix(np.stack([base] * 8, axis=1))
    unity, multi_state = spectrum_figures(corr)
    assert unity == pytest.approx(1.0)
    assert multi_state == pytest.approx(1 / 8)
    assert mean_abs_offdiagonal(corr) == pytest.approx(1.0)


def test_spectrum_of_independent_units_is_spread():
    unity, multi_state = spectrum_figures(np.eye(16))
    assert unity == pytest.approx(1 / 16)
    assert multi_state == pytest.approx(1.0)
