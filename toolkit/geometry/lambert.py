"""Viewing directions and their Lambert azimuthal equal-area map, for orientation plots."""

import tensorflow as tf
from tensorflow.types.experimental import TensorLike

from toolkit.geometry._utils import check_trailing_shape, to_float_tensor


def view_directions(matrix: TensorLike) -> tf.Tensor:
    """Beam direction in the sample frame: R^T e_z, the third row of R.

    The project's convention: a sample point x is rotated to x' = R x and projected along
    +z onto the x-y detector plane.

    Args:
        matrix: rotation matrices `[..., 3, 3]`.

    Returns:
        Unit vectors `[..., 3]`, same dtype.

    Example:

    >>> import numpy as np
    >>> view_directions(np.eye(3)).numpy()
    array([0., 0., 1.])
    """
    m = to_float_tensor(matrix)
    check_trailing_shape(m, (3, 3), "matrix")
    return m[..., 2, :]


def lambert_projection(directions: TensorLike) -> tf.Tensor:
    """Lambert azimuthal equal-area projection centred at +z: the sphere onto a disc of radius 2.

    (X, Y) = sqrt(2 / (1 + z)) * (x, y). Equal areas on the sphere get equal areas on
    the disc, so uniform directions fill it uniformly. On the southern half the
    equivalent form sqrt(2 (1 - z)) * (x, y) / |(x, y)| is used, which stays accurate
    up to the -z pole; the pole itself (a whole circle in the limit) goes to (2, 0).
    Values and gradients are finite everywhere.

    Args:
        directions: unit vectors `[..., 3]`.

    Returns:
        Disc coordinates `[..., 2]`, same dtype.

    Example:

    >>> import numpy as np
    >>> v = [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]
    >>> np.round(lambert_projection(v).numpy(), 3)
    array([[0.   , 0.   ],
           [1.414, 0.   ],
           [2.   , 0.   ]], dtype=float32)
    """
    v = to_float_tensor(directions)
    check_trailing_shape(v, (3,), "directions")
    x, y, z = tf.unstack(v, axis=-1)
    xy = tf.stack([x, y], axis=-1)
    north = z >= 0
    # Each branch clamps its denominator (harmless where the branch is used), so the branch
    # tf.where drops stays finite: its inf/NaN would otherwise leak into the gradient.
    scale_north = tf.sqrt(2 / tf.maximum(1 + z, 1.0))
    pole = tf.reduce_all(tf.equal(xy, 0), axis=-1)
    xy_safe = tf.where(pole[..., None], tf.constant([1.0, 0.0], v.dtype), xy)
    scale_south = tf.sqrt(2 * tf.maximum(1 - z, 1.0)) / tf.norm(xy_safe, axis=-1)
    return tf.where(north[..., None], scale_north[..., None] * xy, scale_south[..., None] * xy_safe)


def lambert_hemisphere(directions: TensorLike) -> tf.Tensor:
    """Lambert projection of axial data: v and -v are identified by flipping v to z >= 0.

    Maps the upper hemisphere onto the disc of radius sqrt(2), still equal-area.

    Args:
        directions: unit vectors `[..., 3]`.

    Returns:
        Disc coordinates `[..., 2]` with radius <= sqrt(2), same dtype.

    Example:

    >>> import numpy as np
    >>> np.round(lambert_hemisphere([[0.0, 0.0, -1.0], [0.0, -1.0, 0.0]]).numpy(), 3) + 0.0
    array([[ 0.   ,  0.   ],
           [ 0.   , -1.414]], dtype=float32)
    """
    v = to_float_tensor(directions)
    check_trailing_shape(v, (3,), "directions")
    v = tf.where(v[..., 2:3] < 0, -v, v)
    return lambert_projection(v)
