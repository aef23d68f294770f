"""OrientationHead: features to a rotation matrix through the continuous 6D representation."""

import keras
from keras import layers, ops

from toolkit.geometry import sixd_to_matrix


@keras.saving.register_keras_serializable(package="toolkit")
class OrientationHead(keras.layers.Layer):
    """Predict a rotation matrix from a feature vector.

    A Dense layer outputs 6 numbers, the first two columns of the matrix up to scale, and
    Gram-Schmidt turns them into a proper rotation. Unlike Euler angles or quaternions this
    map is continuous, so a network can regress any orientation without flips
    (Zhou et al. 2019).

    Args:
        hidden_units: widths of Dense layers before the 6D output. Default value: `(64,)`.
        activation: activation of the hidden layers. Default value: `"relu"`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input: `[..., features]`. Output: `[..., 3, 3]` rotation matrices.

    Example:

    >>> import numpy as np
    >>> head = OrientationHead(hidden_units=(8,))
    >>> matrices = np.asarray(head(np.ones((2, 5), "float32")))
    >>> matrices.shape, bool(np.allclose(np.linalg.det(matrices), 1.0, atol=1e-5))
    ((2, 3, 3), True)

    References:
        Zhou, Barnes, Lu, Yang & Li, "On the Continuity of Rotation Representations in
        Neural Networks", CVPR 2019.
    """

    def __init__(self, hidden_units=(64,), activation="relu", **kwargs):
        super().__init__(**kwargs)
        hidden_units = tuple(int(u) for u in hidden_units)
        if min(hidden_units, default=1) < 1:
            raise ValueError(
                f"OrientationHead: `hidden_units` must be positive integers, got {list(hidden_units)}."
            )
        self.hidden_units = hidden_units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"OrientationHead: `inputs` must have rank >= 2 ([..., features]), got {input_shape}."
            )
        width = input_shape[-1]
        self.hidden = []
        for index, units in enumerate(self.hidden_units):
            dense = layers.Dense(units, activation=self.activation, name=f"hidden_{index}")
            dense.build((None, width))
            self.hidden.append(dense)
            width = units
        self.sixd = layers.Dense(6, name="sixd")
        self.sixd.build((None, width))
        self.built = True

    def call(self, inputs):
        x = inputs
        for dense in self.hidden:
            x = dense(x)
        # Gram-Schmidt in float32 whatever the policy: normalization is fragile in half precision.
        matrices = sixd_to_matrix(ops.cast(self.sixd(x), "float32"))
        return ops.cast(matrices, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (3, 3)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_units": list(self.hidden_units),
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
