"""Global pose alignment against rotations and mirrors built with scipy."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toolkit.geometry.alignment import MIRROR, align_poses, nearest_rotation

TRUE = Rotation.random(400, random_state=1).as_matrix()
TURN = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()


def noisy(rotations, degrees, seed):
    """Each rotation turned by `degrees` about a random axis (scipy's composition)."""
    axes = Rotation.random(len(rotations), random_state=seed).apply([0.0, 0.0, 1.0])
    return (Rotation.from_rotvec(np.radians(degrees) * axes) * Rotation.from_matrix(rotations)).as_matrix()


def test_a_known_rotation_of_the_set_is_recovered():
    result = align_poses(TRUE @ TURN, TRUE)
    assert result["hand"] == "same"
    np.testing.assert_allclose(result["rotation"], TURN, atol=1e-9)
    assert result["errors_deg"].max() < 1e-5
    assert np.median(result["mirrored"]["errors_deg"]) > 20  # the other hand fits no rotation


def test_the_mirror_image_set_is_recovered_in_the_mirrored_hand():
    predicted = MIRROR @ (TRUE @ TURN) @ MIRROR
    result = align_poses(predicted, TRUE)
    assert result["hand"] == "mirrored"
    np.testing.assert_allclose(result["rotation"], TURN, atol=1e-9)
    assert result["errors_deg"].max() < 1e-5 and np.median(result["same"]["errors_deg"]) > 20


def test_noise_and_wrong_poses_do_not_pull_the_fit():
    predicted = noisy(TRUE @ TURN, 2.0, seed=2)
    wrong = np.random.default_rng(3).choice(len(TRUE), size=120, replace=False)  # 30% lost
    predicted[wrong] = Rotation.random(len(wrong), random_state=4).as_matrix()
    result = align_poses(predicted, TRUE)
    kept = np.setdiff1d(np.arange(len(TRUE)), wrong)
    # 280 poses with 2 degrees of noise fix G to about 2 / sqrt(280) = 0.12 degrees.
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(result["rotation"].T @ TURN).as_rotvec()))
    assert angle < 0.3
    np.testing.assert_allclose(result["errors_deg"][kept], 2.0, atol=0.3)
    assert np.median(result["errors_deg"][wrong]) > 45


def test_nearest_rotation_is_the_polar_factor():
    matrix = TURN @ np.diag([3.0, 2.0, 0.5])  # symmetric positive stretch after a rotation
    np.testing.assert_allclose(nearest_rotation(matrix @ TURN.T @ TURN), TURN, atol=1e-12)
    assert np.linalg.det(nearest_rotation(-np.eye(3))) == pytest.approx(1.0)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[N, 3, 3\]"):
        align_poses(TRUE[:3], TRUE[:4])
