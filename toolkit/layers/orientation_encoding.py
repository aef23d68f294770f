"""OrientationEncoding: turn an orientation in some representation into features for a network."""

import keras
from keras import ops

from toolkit.geometry.representations import REPRESENTATION_WIDTHS


@keras.saving.register_keras_serializable(package="toolkit")
class OrientationEncoding(keras.layers.Layer):
    """Features of an orientation given as Euler angles, a quaternion, a 6D vector or a matrix.

    Euler angles (radians) become their sines and cosines, which removes the 2*pi wrap but
    keeps the gimbal-lock ambiguity the poster observed as "flips". Quaternions are made
    sign-canonical (w >= 0). Matrices (flattened row-major, width 9) and the 6D
    representation (first two matrix columns) are continuous and pass through unchanged.

    Args:
        representation: one of `"euler"`, `"quaternion"`, `"sixd"`, `"matrix"`.
            Default value: `"euler"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input: `[..., width]` with width 3, 4, 6 or 9 according to `representation`.
    Output: `[..., 6]` for Euler angles, else `[..., width]`.

    Example:

    >>> import numpy as np
    >>> layer = OrientationEncoding("euler")
    >>> np.round(np.asarray(layer(np.zeros((1, 3), "float32"))), 3).tolist()
    [[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, representation: str = "euler", **kwargs):
        super().__init__(**kwargs)
        if representation not in REPRESENTATION_WIDTHS:
            raise ValueError(
                f"OrientationEncoding: `representation` must be one of "
                f"{sorted(REPRESENTATION_WIDTHS)}, got {representation!r}."
            )
        self.representation = representation
        self.width = REPRESENTATION_WIDTHS[representation]

    def build(self, input_shape):
        check_orientation_width(self, "orientation", input_shape, self.representation)
        self.built = True

    def call(self, orientation):
        if self.representation == "euler":
            return ops.concatenate([ops.sin(orientation), ops.cos(orientation)], axis=-1)
        if self.representation == "quaternion":
            sign = ops.where(orientation[..., :1] < 0, -1.0, 1.0)
            return orientation * ops.cast(sign, orientation.dtype)
        return orientation

    def compute_output_shape(self, input_shape):
        width = 6 if self.representation == "euler" else self.width
        return tuple(input_shape[:-1]) + (width,)

    def get_config(self):
        config = super().get_config()
        config.update({"representation": self.representation})
        return config


def check_orientation_width(layer, argument: str, shape, representation: str) -> None:
    """Raise a ValueError naming the layer when `shape[-1]` does not fit `representation`."""
    expected = REPRESENTATION_WIDTHS[representation]
    if shape[-1] is not None and shape[-1] != expected:
        raise ValueError(
            f"{type(layer).__name__}: `{argument}` must have last dimension {expected} for "
            f"representation {representation!r}, got shape {tuple(shape)}."
        )
