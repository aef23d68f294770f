"""Geodesic angle against scipy's magnitude of the relative rotation."""

import numpy as np
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.geometry import geodesic_angle


def test_matches_scipy_magnitude():
    r1, r2 = Rotation.random(1000, rng=21), Rotation.random(1000, rng=22)
    got = geodesic_angle(r1.as_matrix(), r2.as_matrix()).numpy()
    np.testing.assert_allclose(got, (r1.inv() * r2).magnitude(), atol=1e-12)
    degrees = geodesic_angle(r1.as_matrix(), r2.as_matrix(), degrees=True).numpy()
    np.testing.assert_allclose(degrees, np.degrees(got), atol=1e-9)


def test_accurate_near_zero_and_pi_where_arccos_is_not():
    base = Rotation.random(200, rng=23)
    axes = Rotation.random(200, rng=24).apply([1.0, 0.0, 0.0])
    for angle in (1e-9, 1e-5, np.pi - 1e-7, np.pi):
        other = Rotation.from_rotvec(angle * axes) * base
        got = geodesic_angle(base.as_matrix(), other.as_matrix()).numpy()
        np.testing.assert_allclose(got, angle, rtol=1e-6, atol=1e-12)


def test_broadcasts_and_keeps_float32():
    r = Rotation.random(6, rng=25).as_matrix().astype(np.float32).reshape(2, 3, 3, 3)
    got = geodesic_angle(r, np.eye(3, dtype=np.float32))
    assert got.shape == (2, 3) and got.dtype == tf.float32


def test_gradient_is_finite_at_identical_rotations_and_zero_at_exact_identity():
    r = tf.constant(np.concatenate([np.eye(3)[None], Rotation.random(4, rng=26).as_matrix()]))
    with tf.GradientTape() as tape:
        tape.watch(r)
        angle = tf.reduce_sum(geodesic_angle(r, r))
    grad = tape.gradient(angle, r).numpy()
    assert np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[0], 0.0)
