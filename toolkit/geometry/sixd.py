"""The continuous 6D rotation representation of Zhou et al. (2019): two matrix columns."""

import tensorflow as tf
from tensorflow.types.experimental import TensorLike

from toolkit.geometry._utils import check_trailing_shape, to_float_tensor


def sixd_to_matrix(x: TensorLike) -> tf.Tensor:
    """Rotation matrices from 6D vectors by Gram-Schmidt (any two independent columns work).

    Args:
        x: `[..., 6]` = [first column (3), second column (3)]; need not be orthonormal.

    Returns:
        Proper rotation matrices `[..., 3, 3]` whose first column is x[:3] normalized and
        whose second column lies in the plane of both inputs; same dtype as `x`.

    Example:

    >>> import numpy as np
    >>> sixd_to_matrix([2.0, 0.0, 0.0, 1.0, 3.0, 0.0]).numpy()
    array([[1., 0., 0.],
           [0., 1., 0.],
           [0., 0., 1.]], dtype=float32)
    """
    x = to_float_tensor(x)
    check_trailing_shape(x, (6,), "x")
    b1 = tf.math.l2_normalize(x[..., :3], axis=-1)
    a2 = x[..., 3:]
    b2 = tf.math.l2_normalize(a2 - tf.reduce_sum(b1 * a2, -1, keepdims=True) * b1, axis=-1)
    b3 = tf.linalg.cross(b1, b2)  # right-handed, so det = +1
    return tf.stack([b1, b2, b3], axis=-1)


def matrix_to_sixd(matrix: TensorLike) -> tf.Tensor:
    """The 6D representation of rotation matrices: their first two columns, concatenated.

    Args:
        matrix: rotation matrices `[..., 3, 3]`.

    Returns:
        `[..., 6]` = [column 0, column 1], same dtype.

    Example:

    >>> import numpy as np
    >>> matrix_to_sixd(np.eye(3)).numpy()
    array([1., 0., 0., 0., 1., 0.])
    """
    m = to_float_tensor(matrix)
    check_trailing_shape(m, (3, 3), "matrix")
    return tf.concat([m[..., :, 0], m[..., :, 1]], axis=-1)
