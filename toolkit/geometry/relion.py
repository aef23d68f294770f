"""RELION's (rot, tilt, psi) Euler angles, which describe the inverse of the pose matrix."""

import tensorflow as tf
from tensorflow.types.experimental import TensorLike

from toolkit.geometry._utils import to_float_tensor
from toolkit.geometry.euler import euler_to_matrix, matrix_to_euler


def relion_to_matrix(rot_tilt_psi_degrees: TensorLike) -> tf.Tensor:
    """Pose matrices R (x' = R x) from RELION angles: transpose of scipy's "ZYZ" matrix.

    Args:
        rot_tilt_psi_degrees: RELION `_rlnAngleRot`, `_rlnAngleTilt`, `_rlnAnglePsi` in
            degrees, `[..., 3]`.

    Returns:
        Rotation matrices `[..., 3, 3]` equal to
        `Rotation.from_euler("ZYZ", angles, degrees=True).as_matrix().T`.

    Example:

    >>> import numpy as np
    >>> np.round(relion_to_matrix([90.0, 0.0, 0.0]).numpy(), 3) + 0.0
    array([[ 0.,  1.,  0.],
           [-1.,  0.,  0.],
           [ 0.,  0.,  1.]], dtype=float32)
    """
    angles = to_float_tensor(rot_tilt_psi_degrees)
    return tf.linalg.matrix_transpose(euler_to_matrix(angles, "ZYZ", degrees=True))


def matrix_to_relion(matrix: TensorLike) -> tf.Tensor:
    """RELION (rot, tilt, psi) in degrees of pose matrices; inverse of `relion_to_matrix`.

    Args:
        matrix: rotation matrices `[..., 3, 3]`.

    Returns:
        Angles `[..., 3]` in degrees: rot and psi in [-180, 180), tilt in [0, 180].

    Example:

    >>> import numpy as np
    >>> np.round(matrix_to_relion(relion_to_matrix([10.0, 20.0, 30.0])).numpy(), 3)
    array([10., 20., 30.], dtype=float32)
    """
    m = to_float_tensor(matrix)
    return matrix_to_euler(tf.linalg.matrix_transpose(m), "ZYZ", degrees=True)
