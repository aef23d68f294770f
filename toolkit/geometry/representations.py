"""Orientation representations a model can be conditioned on, and their widths.

One table serves the data (which turns rotation matrices into features) and the layers
(which check the width of what they are given): Euler angles (radians, 3), unit quaternions
(scalar first, 4), the 6D representation (first two matrix columns, 6) and the flattened
matrix (row-major, 9).
"""

from __future__ import annotations

import tensorflow as tf

from toolkit.geometry.euler import matrix_to_euler
from toolkit.geometry.quaternion import matrix_to_quaternion
from toolkit.geometry.sixd import matrix_to_sixd

#: Width of the orientation features of each representation.
REPRESENTATION_WIDTHS = {"euler": 3, "quaternion": 4, "sixd": 6, "matrix": 9}


def orientation_features(rotations, representation: str, convention: str = "ZYZ") -> tf.Tensor:
    """Rotation matrices `[..., 3, 3]` as `[..., width]` features of `representation`.

    >>> import numpy as np
    >>> orientation_features(np.eye(3, dtype="float32")[None], "sixd").numpy().tolist()
    [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]
    """
    if representation == "euler":
        return matrix_to_euler(rotations, convention)
    if representation == "quaternion":
        return matrix_to_quaternion(rotations)
    if representation == "sixd":
        return matrix_to_sixd(rotations)
    if representation == "matrix":
        rotations = tf.convert_to_tensor(rotations)
        return tf.reshape(rotations, tf.concat([tf.shape(rotations)[:-2], [9]], 0))
    raise ValueError(
        f"unknown orientation representation {representation!r}; expected one of "
        f"{', '.join(REPRESENTATION_WIDTHS)}"
    )
