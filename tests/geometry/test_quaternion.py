"""Quaternion conversions and algebra against scipy (scipy's quaternions are scalar-last)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.geometry import (
    matrix_to_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_matrix,
)

ROTATIONS = Rotation.random(1000, rng=99)


def scalar_first(rotation: Rotation) -> np.ndarray:
    return rotation.as_quat(canonical=True)[..., [3, 0, 1, 2]]


def test_quaternion_to_matrix_matches_scipy_and_normalizes():
    q = scalar_first(ROTATIONS) * np.random.default_rng(0).uniform(0.1, 5.0, (1000, 1))
    np.testing.assert_allclose(quaternion_to_matrix(q).numpy(), ROTATIONS.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(-q).numpy(), ROTATIONS.as_matrix(), atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_to_quaternion_matches_scipy_canonical(dtype):
    got = matrix_to_quaternion(ROTATIONS.as_matrix().astype(dtype))
    assert got.dtype == tf.as_dtype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got.numpy(), scalar_first(ROTATIONS), atol=tol)
    assert np.all(got.numpy()[:, 0] >= 0)


def test_matrix_to_quaternion_is_exact_for_180_degree_turns():
    axes = np.random.default_rng(3).normal(size=(500, 3))
    axes = np.concatenate([np.eye(3), -np.eye(3), axes / np.linalg.norm(axes, axis=1, keepdims=True)])
    turns = Rotation.from_rotvec(np.pi * axes)
    got = matrix_to_quaternion(turns.as_matrix()).numpy()
    expected = scalar_first(turns)
    # w is 0 up to rounding, so the sign of the whole quaternion is a free choice.
    sign = np.sign(np.sum(got * expected, axis=1, keepdims=True))
    np.testing.assert_allclose(got, sign * expected, atol=1e-12)
    np.testing.assert_allclose(np.abs(got[:, 0]), 0.0, atol=1e-12)
    # exact half turns about +-x, +-y, +-z (2 n n^T - I): w is exactly 0 and the
    # tie-break makes the first nonzero component positive, as scipy's canonical form
    exact = 2 * np.einsum("ni,nj->nij", axes[:6], axes[:6]) - np.eye(3)
    expected_exact = np.concatenate([np.zeros((6, 1)), np.tile(np.eye(3), (2, 1))], axis=1)
    np.testing.assert_array_equal(matrix_to_quaternion(exact).numpy(), expected_exact)
    np.testing.assert_allclose(quaternion_to_matrix(got).numpy(), turns.as_matrix(), atol=1e-12)


def test_quaternion_round_trip_near_identity():
    small = Rotation.from_rotvec(np.random.default_rng(5).normal(size=(100, 3)) * 1e-8)
    got = matrix_to_quaternion(small.as_matrix()).numpy()
    np.testing.assert_allclose(got, scalar_first(small), atol=1e-15)


def test_multiply_matches_scipy_composition_and_conjugate_inverts():
    a, b = ROTATIONS[:500], ROTATIONS[500:]
    product = quaternion_multiply(scalar_first(a), scalar_first(b))
    np.testing.assert_allclose(quaternion_to_matrix(product).numpy(), (a * b).as_matrix(), atol=1e-12)
    q = scalar_first(a)
    identity = quaternion_multiply(q, quaternion_conjugate(q)).numpy()
    np.testing.assert_allclose(identity, np.tile([1.0, 0, 0, 0], (500, 1)), atol=1e-12)


def test_multiply_broadcasts():
    q = scalar_first(ROTATIONS[:6]).reshape(2, 3, 4)
    assert quaternion_multiply(q, [1.0, 0.0, 0.0, 0.0]).shape == (2, 3, 4)
