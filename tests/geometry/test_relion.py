"""RELION angles: the pose matrix is the transpose of scipy's intrinsic ZYZ matrix."""

import numpy as np
from scipy.spatial.transform import Rotation

from toolkit.geometry import matrix_to_relion, relion_to_matrix


def test_relion_to_matrix_is_the_transpose_of_scipy_zyz():
    angles = Rotation.random(500, rng=41).as_euler("ZYZ", degrees=True)
    expected = Rotation.from_euler("ZYZ", angles, degrees=True).as_matrix().transpose(0, 2, 1)
    np.testing.assert_allclose(relion_to_matrix(angles).numpy(), expected, atol=1e-12)


def test_round_trip_in_relion_ranges():
    angles = Rotation.random(500, rng=42).as_euler("ZYZ", degrees=True)
    back = matrix_to_relion(relion_to_matrix(angles)).numpy()
    np.testing.assert_allclose(back, angles, atol=1e-8)
    assert np.all((back[:, 1] >= 0) & (back[:, 1] <= 180))
