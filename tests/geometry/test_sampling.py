"""Haar-uniform sampling: a statistical test that can fail, and seeding."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from toolkit.geometry import euler_to_matrix, random_quaternions, random_rotations

N = 20000


def rotation_angle_cdf(theta: np.ndarray) -> np.ndarray:
    """CDF of the rotation angle of a Haar rotation, whose density is (1 - cos t) / pi."""
    return (theta - np.sin(theta)) / np.pi


def rotation_angles(matrices: np.ndarray) -> np.ndarray:
    cos = (np.trace(matrices, axis1=-2, axis2=-1) - 1) / 2
    return np.arccos(np.clip(cos, -1.0, 1.0))


def test_rotation_angle_follows_the_haar_law_and_mean_matrix_is_zero():
    matrices = random_rotations(N, seed=2024, dtype=tf.float64).numpy()
    assert stats.kstest(rotation_angles(matrices), rotation_angle_cdf).pvalue > 1e-3
    # each entry has variance 1/3 under the Haar measure
    assert np.abs(matrices.mean(axis=0)).max() < 5 * np.sqrt(1 / 3 / N)
    np.testing.assert_allclose(np.linalg.det(matrices), 1.0, atol=1e-12)


def test_the_uniformity_test_rejects_uniform_euler_angles():
    # Uniform Euler angles are the classic non-uniform sampler: the test must see that.
    angles = np.random.default_rng(0).uniform([-np.pi, 0, -np.pi], [np.pi, np.pi, np.pi], (N, 3))
    matrices = euler_to_matrix(angles, "ZYZ").numpy()
    assert stats.kstest(rotation_angles(matrices), rotation_angle_cdf).pvalue < 1e-6


def test_seeded_draws_are_deterministic_and_seed_dependent():
    a = random_rotations(50, seed=5).numpy()
    np.testing.assert_array_equal(a, random_rotations(50, seed=5).numpy())
    assert not np.allclose(a, random_rotations(50, seed=6).numpy())
    np.testing.assert_array_equal(
        random_quaternions(50, seed=5).numpy(),
        random_quaternions(50, seed=tf.constant([5, 0])).numpy(),
    )


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_quaternions_are_unit_canonical_and_typed(dtype):
    q = random_quaternions(1000, seed=3, dtype=dtype)
    assert q.dtype == dtype and q.shape == (1000, 4)
    np.testing.assert_allclose(np.linalg.norm(q.numpy(), axis=1), 1.0, rtol=1e-6)
    assert np.all(q.numpy()[:, 0] >= 0)
    assert random_rotations(7, dtype=dtype).shape == (7, 3, 3)  # unseeded path
