"""Euler angle conversions against scipy.spatial.transform.Rotation, all 24 conventions."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.geometry import (
    CONVENTIONS,
    euler_to_matrix,
    euler_to_quaternion,
    matrix_to_euler,
    quaternion_to_euler,
)

PROPER = [c for c in CONVENTIONS if c[0] == c[2]]
TAIT_BRYAN = [c for c in CONVENTIONS if c[0] != c[2]]
ROTATIONS = Rotation.random(1000, rng=1234)


def wrapped_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest angle difference modulo 2*pi (scipy and we may differ by 2*pi at +-pi)."""
    return float(np.abs((a - b + np.pi) % (2 * np.pi) - np.pi).max())


def test_there_are_12_proper_and_12_tait_bryan_conventions():
    assert len(PROPER) == 12 and len(TAIT_BRYAN) == 12 and len(set(CONVENTIONS)) == 24


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_euler_to_matrix_matches_scipy(convention):
    angles = ROTATIONS.as_euler(convention)
    got = euler_to_matrix(angles, convention)
    assert got.dtype == tf.float64 and got.shape == (1000, 3, 3)
    np.testing.assert_allclose(got.numpy(), ROTATIONS.as_matrix(), atol=1e-12)
    got32 = euler_to_matrix(angles.astype(np.float32), convention)
    assert got32.dtype == tf.float32
    np.testing.assert_allclose(got32.numpy(), ROTATIONS.as_matrix(), atol=1e-5)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_matrix_to_euler_matches_scipy_angles_and_ranges(convention):
    expected = ROTATIONS.as_euler(convention)
    got = matrix_to_euler(ROTATIONS.as_matrix(), convention).numpy()
    assert wrapped_error(got, expected) < 1e-9
    rebuilt = Rotation.from_euler(convention, got).as_matrix()
    np.testing.assert_allclose(rebuilt, ROTATIONS.as_matrix(), atol=1e-12)
    assert np.all(np.abs(got[:, [0, 2]]) <= np.pi)
    if convention in PROPER:
        assert np.all((got[:, 1] >= 0) & (got[:, 1] <= np.pi))
    else:
        assert np.all(np.abs(got[:, 1]) <= np.pi / 2)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_matrix_to_euler_float32_rebuilds_the_matrix(convention):
    got = matrix_to_euler(ROTATIONS.as_matrix().astype(np.float32), convention)
    assert got.dtype == tf.float32
    rebuilt = Rotation.from_euler(convention, got.numpy().astype(np.float64)).as_matrix()
    np.testing.assert_allclose(rebuilt, ROTATIONS.as_matrix(), atol=2e-5)


def near_lock_angles(convention: str, distance: float) -> np.ndarray:
    """Angles whose middle one is `distance` rad from each singular value of `convention`."""
    singular = [0.0, np.pi] if convention in PROPER else [np.pi / 2, -np.pi / 2]
    outer = np.random.default_rng(7).uniform(-np.pi, np.pi, size=(2, 50, 2))
    blocks = []
    for value, pair in zip(singular, outer):
        middle = value - np.sign(value) * distance if value else distance
        blocks.append(np.stack([pair[:, 0], np.full(50, middle), pair[:, 1]], axis=-1))
    return np.concatenate(blocks)


@pytest.mark.parametrize("distance", [1e-3, 1e-6])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_matrix_to_euler_near_gimbal_lock_rebuilds_the_matrix(convention, distance):
    matrices = Rotation.from_euler(convention, near_lock_angles(convention, distance)).as_matrix()
    got = matrix_to_euler(matrices, convention).numpy()
    rebuilt = Rotation.from_euler(convention, got).as_matrix()
    np.testing.assert_allclose(rebuilt, matrices, atol=1e-9)
    expected = Rotation.from_matrix(matrices).as_euler(convention)
    np.testing.assert_allclose(rebuilt, Rotation.from_euler(convention, expected).as_matrix(), atol=1e-9)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_matrix_to_euler_at_exact_gimbal_lock_sets_third_angle_to_zero(convention):
    matrices = Rotation.from_euler(convention, near_lock_angles(convention, 0.0)).as_matrix()
    got = matrix_to_euler(matrices, convention).numpy()
    expected = Rotation.from_matrix(matrices).as_euler(convention, suppress_warnings=True)
    assert np.all(got[:, 2] == 0)
    assert wrapped_error(got, expected) < 1e-9
    rebuilt = Rotation.from_euler(convention, got).as_matrix()
    np.testing.assert_allclose(rebuilt, matrices, atol=1e-12)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_euler_quaternion_conversions_match_scipy(convention):
    angles = ROTATIONS.as_euler(convention)
    q = euler_to_quaternion(angles, convention).numpy()
    expected = ROTATIONS.as_quat(canonical=True)[:, [3, 0, 1, 2]]  # scipy is scalar-last
    np.testing.assert_allclose(q, expected, atol=1e-12)
    assert wrapped_error(quaternion_to_euler(-3.0 * q, convention).numpy(), angles) < 1e-9


def test_degrees_flag():
    angles = np.array([[30.0, 40.0, -50.0], [170.0, 5.0, 100.0]])
    expected = Rotation.from_euler("zxz", angles, degrees=True)
    got = euler_to_matrix(angles, "zxz", degrees=True).numpy()
    np.testing.assert_allclose(got, expected.as_matrix(), atol=1e-12)
    back = matrix_to_euler(got, "zxz", degrees=True).numpy()
    np.testing.assert_allclose(back, angles, atol=1e-9)


def test_lists_default_to_float32_and_leading_shapes_are_kept():
    assert euler_to_matrix([0.1, 0.2, 0.3]).dtype == tf.float32
    angles = np.zeros((2, 5, 4, 3))
    assert euler_to_matrix(angles, "XYZ").shape == (2, 5, 4, 3, 3)
    assert matrix_to_euler(np.zeros((2, 5, 4, 3, 3)) + np.eye(3), "xyz").shape == (
        2,
        5,
        4,
        3,
    )


@pytest.mark.parametrize("bad", ["abc", "ZZY", "XyZ", "zyzz", "zy", "", "xx y"])
def test_bad_convention_raises_with_the_string_in_the_message(bad):
    for function in (euler_to_matrix, euler_to_quaternion):
        with pytest.raises(ValueError, match=f"Unknown Euler convention '{bad}'"):
            function([0.0, 0.0, 0.0], bad)
    with pytest.raises(ValueError, match=f"'{bad}'"):
        matrix_to_euler(np.eye(3), bad)


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="angles"):
        euler_to_matrix([0.0, 0.0])
