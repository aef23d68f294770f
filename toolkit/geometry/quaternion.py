"""Unit quaternions (scalar-first w, x, y, z) and their conversion to and from matrices."""

import tensorflow as tf
from tensorflow.types.experimental import TensorLike

from toolkit.geometry._utils import (
    check_trailing_shape,
    matrix_from_rows,
    to_float_tensor,
)


def canonical_quaternion(q: tf.Tensor) -> tf.Tensor:
    """Flip the sign of `q` so that w >= 0 (q and -q are the same rotation).

    For w == 0 exactly (180-degree turns) the first nonzero of x, y, z is made positive,
    the same tie-break as scipy's `as_quat(canonical=True)`.
    """
    sign = tf.sign(q[..., 0])
    for index in (1, 2, 3):
        sign = tf.where(tf.equal(sign, 0), tf.sign(q[..., index]), sign)
    sign = tf.where(tf.equal(sign, 0), tf.ones_like(sign), sign)
    return q * sign[..., None]


def quaternion_to_matrix(q: TensorLike) -> tf.Tensor:
    """Rotation matrices of quaternions (normalized first, so any nonzero scale is fine).

    Args:
        q: quaternions, scalar-first (w, x, y, z), shape `[..., 4]`.

    Returns:
        Rotation matrices `[..., 3, 3]` acting on column vectors (x' = R x), same dtype.

    Example:

    >>> import numpy as np
    >>> q = [0.5, 0.0, 0.0, 0.5]  # 90 degrees about z, unnormalized
    >>> np.round(quaternion_to_matrix(q).numpy(), 3) + 0.0
    array([[ 0., -1.,  0.],
           [ 1.,  0.,  0.],
           [ 0.,  0.,  1.]], dtype=float32)
    """
    q = to_float_tensor(q)
    check_trailing_shape(q, (4,), "q")
    w, x, y, z = tf.unstack(tf.math.l2_normalize(q, axis=-1), axis=-1)
    return matrix_from_rows(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(matrix: TensorLike) -> tf.Tensor:
    """Unit quaternions of rotation matrices, canonical sign (w >= 0).

    Shepperd's method: every row of the 4x4 table below equals 4 * q_r * q, so each row is
    q up to scale; the row with the largest diagonal entry 4 * q_r**2 (always >= 1) is
    the best conditioned one. Choosing it needs no square root and stays exact for
    180-degree turns (where w = 0) and differentiable (no sqrt of 0 in any branch).

    Args:
        matrix: rotation matrices `[..., 3, 3]`.

    Returns:
        Quaternions `[..., 4]`, scalar-first (w, x, y, z), unit norm, w >= 0, same dtype.

    Example:

    >>> import numpy as np
    >>> flip_x = np.diag([1.0, -1.0, -1.0])  # 180 degrees about x
    >>> np.round(matrix_to_quaternion(flip_x).numpy(), 3) + 0.0
    array([0., 1., 0., 0.])
    """
    m = to_float_tensor(matrix)
    check_trailing_shape(m, (3, 3), "matrix")
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = [
        tf.unstack(row, axis=-1) for row in tf.unstack(m, axis=-2)
    ]
    trace = m00 + m11 + m22
    table = matrix_from_rows(
        [
            [1 + trace, m21 - m12, m02 - m20, m10 - m01],
            [m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20],
            [m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21],
            [m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22],
        ]
    )
    best = tf.one_hot(tf.argmax(tf.linalg.diag_part(table), axis=-1), 4, dtype=m.dtype)
    q = tf.reduce_sum(best[..., :, None] * table, axis=-2)
    return canonical_quaternion(tf.math.l2_normalize(q, axis=-1))


def quaternion_multiply(a: TensorLike, b: TensorLike) -> tf.Tensor:
    """Hamilton product a * b (the rotation b followed by a), scalar-first, broadcasting.

    Args:
        a: quaternions `[..., 4]`.
        b: quaternions `[..., 4]`, broadcastable against `a`.

    Returns:
        The products `[..., 4]` (not renormalized, no sign canonicalization).

    Example:

    >>> import numpy as np
    >>> i, j = [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]
    >>> quaternion_multiply(i, j).numpy()  # i * j = k
    array([0., 0., 0., 1.], dtype=float32)
    """
    a = to_float_tensor(a)
    b = to_float_tensor(b, dtype_hint=a.dtype)
    check_trailing_shape(a, (4,), "a")
    check_trailing_shape(b, (4,), "b")
    aw, ax, ay, az = tf.unstack(a, axis=-1)
    bw, bx, by, bz = tf.unstack(b, axis=-1)
    return tf.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quaternion_conjugate(q: TensorLike) -> tf.Tensor:
    """Conjugate (w, -x, -y, -z): the inverse rotation for unit quaternions.

    Args:
        q: quaternions `[..., 4]`, scalar-first.

    Returns:
        Conjugated quaternions `[..., 4]`, same dtype.

    Example:

    >>> quaternion_conjugate([1.0, 2.0, 3.0, 4.0]).numpy()
    array([ 1., -2., -3., -4.], dtype=float32)
    """
    q = to_float_tensor(q)
    check_trailing_shape(q, (4,), "q")
    return q * tf.constant([1.0, -1.0, -1.0, -1.0], q.dtype)
