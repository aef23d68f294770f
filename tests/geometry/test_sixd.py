"""The 6D representation: round trip and Gram-Schmidt onto proper rotations."""

import numpy as np
from scipy.spatial.transform import Rotation

from toolkit.geometry import matrix_to_sixd, sixd_to_matrix


def test_round_trip():
    matrices = Rotation.random(1000, rng=11).as_matrix()
    sixd = matrix_to_sixd(matrices).numpy()
    np.testing.assert_array_equal(sixd[:, :3], matrices[:, :, 0])
    np.testing.assert_array_equal(sixd[:, 3:], matrices[:, :, 1])
    np.testing.assert_allclose(sixd_to_matrix(sixd).numpy(), matrices, atol=1e-12)


def test_arbitrary_inputs_become_proper_rotations():
    x = np.random.default_rng(12).normal(size=(1000, 6)) * 3
    m = sixd_to_matrix(x).numpy()
    np.testing.assert_allclose(m.transpose(0, 2, 1) @ m, np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    first = x[:, :3] / np.linalg.norm(x[:, :3], axis=1, keepdims=True)
    np.testing.assert_allclose(m[:, :, 0], first, atol=1e-12)
    # the second column stays in the plane of the two inputs
    np.testing.assert_allclose(np.einsum("ni,ni->n", m[:, :, 2], x[:, 3:]), 0.0, atol=1e-10)
