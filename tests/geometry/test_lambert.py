"""View directions and the Lambert equal-area projection."""

import numpy as np
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.geometry import lambert_hemisphere, lambert_projection, view_directions

N = 20000


def uniform_directions(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_view_direction_is_the_sample_axis_that_ends_up_along_the_beam():
    matrices = Rotation.random(100, rng=31).as_matrix()
    v = view_directions(matrices).numpy()
    np.testing.assert_array_equal(v, matrices[:, 2, :])
    np.testing.assert_allclose(
        np.einsum("nij,nj->ni", matrices, v), np.tile([0, 0, 1.0], (100, 1)), atol=1e-12
    )


def test_projection_formula_and_radius():
    v = uniform_directions(1000, seed=32)
    got = lambert_projection(v).numpy()
    expected = np.sqrt(2 / (1 + v[:, 2:])) * v[:, :2]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), np.sqrt(2 * (1 - v[:, 2])), rtol=1e-9)


def test_equal_area_on_uniform_directions():
    radius = np.linalg.norm(lambert_projection(uniform_directions(N, seed=33)).numpy(), axis=1)
    assert radius.max() <= 2 + 1e-12
    for r in (0.5, 1.0, 1.5, 1.9):
        p = r**2 / 4  # area fraction of the disc of radius 2
        assert abs(np.mean(radius < r) - p) < 4 * np.sqrt(p * (1 - p) / N)


def test_hemisphere_is_equal_area_on_the_sqrt2_disc_and_identifies_antipodes():
    v = uniform_directions(N, seed=34)
    xy = lambert_hemisphere(v).numpy()
    np.testing.assert_allclose(xy, lambert_hemisphere(-v).numpy(), atol=1e-12)
    radius = np.linalg.norm(xy, axis=1)
    assert radius.max() <= np.sqrt(2) + 1e-12
    for r in (0.4, 0.8, 1.2):
        p = r**2 / 2
        assert abs(np.mean(radius < r) - p) < 4 * np.sqrt(p * (1 - p) / N)


def test_poles_are_finite_with_finite_gradients():
    v = tf.constant([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 1e-4, -1.0 + 5e-9]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(v)
        xy = lambert_projection(v)
    grad = tape.gradient(xy, v).numpy()
    np.testing.assert_allclose(xy.numpy()[:2], [[0.0, 0.0], [2.0, 0.0]])
    np.testing.assert_allclose(np.linalg.norm(xy.numpy()[2]), 2.0, atol=1e-8)
    assert np.all(np.isfinite(grad))
