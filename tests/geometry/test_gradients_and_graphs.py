"""Jacobians against finite differences (float64), and use inside tf.function / tf.data."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit import geometry

RNG = np.random.default_rng(51)
MATRICES = Rotation.random(3, rng=52).as_matrix()


def assert_jacobians_match(function, x: np.ndarray, tol: float = 1e-6) -> None:
    theoretical, numerical = tf.test.compute_gradient(function, [tf.constant(x, tf.float64)], delta=1e-6)
    assert np.all(np.isfinite(theoretical[0]))
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=tol)


@pytest.mark.parametrize("convention", ["ZYZ", "xyz", "YXY", "zxy"])
def test_euler_to_matrix_jacobian(convention):
    assert_jacobians_match(lambda a: geometry.euler_to_matrix(a, convention), RNG.uniform(-3, 3, (3, 3)))


@pytest.mark.parametrize("convention", ["ZYZ", "xyz", "YXY", "zxy"])
def test_matrix_to_euler_jacobian(convention):
    # Random rotations are away from gimbal lock and from the +-pi wrap of the outer angles.
    assert_jacobians_match(lambda m: geometry.matrix_to_euler(m, convention), MATRICES)


def test_quaternion_to_matrix_jacobian():
    assert_jacobians_match(geometry.quaternion_to_matrix, RNG.normal(size=(3, 4)))


def test_sixd_to_matrix_jacobian():
    assert_jacobians_match(geometry.sixd_to_matrix, RNG.normal(size=(3, 6)))


def test_geodesic_angle_jacobian():
    other = Rotation.random(3, rng=53).as_matrix()
    assert_jacobians_match(lambda m: geometry.geodesic_angle(m, other), MATRICES)


def test_matrix_to_euler_gradient_is_finite_at_exact_gimbal_lock():
    locked = tf.constant(Rotation.from_euler("ZYZ", [[0.3, 0.0, 0.2], [0.1, np.pi, 0.4]]).as_matrix())
    with tf.GradientTape() as tape:
        tape.watch(locked)
        angles = geometry.matrix_to_euler(locked, "ZYZ")
    assert np.all(np.isfinite(tape.gradient(angles, locked).numpy()))


def test_everything_runs_in_tf_function_with_unknown_batch_shape():
    spec = tf.TensorSpec([None, 3], tf.float32)

    @tf.function(input_signature=[spec])
    def pipeline(angles):
        m = geometry.euler_to_matrix(angles, "ZYZ")
        q = geometry.matrix_to_quaternion(m)
        back = geometry.quaternion_to_euler(q, "ZYZ")
        m6 = geometry.sixd_to_matrix(geometry.matrix_to_sixd(m))
        xy = geometry.lambert_hemisphere(geometry.view_directions(m6))
        return back, geometry.geodesic_angle(m, geometry.quaternion_to_matrix(q)), xy

    angles = Rotation.random(10, rng=54).as_euler("ZYZ").astype(np.float32)
    back, distance, xy = pipeline(angles)
    np.testing.assert_allclose(back.numpy(), angles, atol=1e-4)
    np.testing.assert_allclose(distance.numpy(), 0.0, atol=1e-3)
    assert xy.shape == (10, 2)


def test_tf_data_map():
    dataset = tf.data.Dataset.range(8).map(lambda i: geometry.random_rotations(2, seed=tf.stack([i, 0])))
    dataset = dataset.map(lambda m: (m, geometry.matrix_to_relion(m)))
    for m, angles in dataset.take(2):
        np.testing.assert_allclose(geometry.relion_to_matrix(angles).numpy(), m.numpy(), atol=1e-5)
