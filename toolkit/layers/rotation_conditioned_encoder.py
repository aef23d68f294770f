"""RotationConditionedEncoder: a shadow and its orientation (or any condition) to one feature vector."""

import keras
from keras import layers, ops

from toolkit.layers.cpd_dense import check_dense_cp, check_dense_rank, dense_or_cpd
from toolkit.layers.shapes import check_rank, fold_time, strided_stack, unfold_time


@keras.saving.register_keras_serializable(package="toolkit")
class RotationConditionedEncoder(keras.layers.Layer):
    """Convolutional encoder of an image, joined with a dense encoding of its condition.

    The condition is the orientation features of a shadow (see `OrientationEncoding`), a
    one-hot label for a class-conditional model, or absent for a plain VAE. Images may carry a
    time axis, `[batch, time, height, width, channels]` with a condition `[batch, time, width]`;
    each view is encoded independently and the output keeps the time axis.

    Args:
        filters: output channels of the stride-2 convolutions, one per downsampling step.
            Default value: `(32, 64)`.
        kernel_size: convolution kernel size. Default value: `3`.
        units: width of the output feature vector. Default value: `128`.
        condition_units: width of the dense encoding of the condition. Default value: `32`.
        activation: activation of every hidden layer. Default value: `"relu"`.
        dense_rank: `None` for a plain `Dense` output layer, or a positive integer to make
            `output_dense` (by far the largest) a `CPDDense` of that rank.
            Default value: `None`.
        dense_cp: `None`, or `{"output_dense": {"rank": R, "input_modes": [...],
            "output_modes": [...]}}` for a `CPDDense` of that rank and those modes (what
            `toolkit compress` writes); it takes precedence over `dense_rank`.
            Default value: `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> encoder = RotationConditionedEncoder(filters=(8,), units=16)
    >>> images = np.zeros((2, 5, 16, 16, 1), "float32")
    >>> orientation = np.zeros((2, 5, 6), "float32")
    >>> tuple(encoder(images, orientation).shape)
    (2, 5, 16)
    """

    #: The Dense sublayers that `dense_rank` or `dense_cp` make `CPDDense` (`toolkit compress` uses it).
    CPD_SUBLAYERS = ("output_dense",)

    def __init__(
        self,
        filters=(32, 64),
        kernel_size: int = 3,
        units: int = 128,
        condition_units: int = 32,
        activation="relu",
        dense_rank: int | None = None,
        dense_cp: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = tuple(int(f) for f in filters)
        if not filters or min(filters) < 1:
            raise ValueError(
                f"RotationConditionedEncoder: `filters` must be a non-empty list of positive "
                f"integers, got {list(filters)}."
            )
        for name, value in (("kernel_size", kernel_size), ("units", units)):
            if int(value) < 1:
                raise ValueError(f"RotationConditionedEncoder: `{name}` must be positive, got {value}.")
        if int(condition_units) < 0:
            raise ValueError(
                f"RotationConditionedEncoder: `condition_units` must be >= 0, got {condition_units}."
            )
        self.filters = filters
        self.kernel_size = int(kernel_size)
        self.units = int(units)
        self.condition_units = int(condition_units)
        self.activation = keras.activations.get(activation)
        self.dense_rank = check_dense_rank("RotationConditionedEncoder", dense_rank)
        self.dense_cp = check_dense_cp("RotationConditionedEncoder", dense_cp, self.CPD_SUBLAYERS)

    def build(self, images_shape, condition_shape=None):
        check_rank(self, "images", images_shape, (4, 5), "[batch, (time,) height, width, channels]")
        if condition_shape is not None:
            check_rank(
                self,
                "condition",
                condition_shape,
                (len(images_shape) - 2,),
                "one vector per image, the time axis matching `images`",
            )
        item_shape = (None,) + tuple(images_shape[-3:])
        self.convolutions, item_shape = strided_stack(
            layers.Conv2D, self.filters, self.kernel_size, self.activation, "conv", item_shape
        )
        features = item_shape[1] * item_shape[2] * item_shape[3]
        self.condition_dense = None
        if condition_shape is not None and self.condition_units:
            self.condition_dense = layers.Dense(
                self.condition_units, activation=self.activation, name="condition_dense"
            )
            self.condition_dense.build((None, condition_shape[-1]))
            features += self.condition_units
        elif condition_shape is not None:
            features += condition_shape[-1]
        self.output_dense = dense_or_cpd(
            "output_dense", self.units, self.activation, self.dense_rank, self.dense_cp
        )
        self.output_dense.build((None, features))
        self.built = True

    def call(self, images, condition=None):
        x, time = fold_time(images, 3)
        for conv in self.convolutions:
            x = conv(x)
        x = ops.reshape(x, (-1, x.shape[1] * x.shape[2] * x.shape[3]))
        if condition is not None:
            c, _ = fold_time(condition, 1)
            if self.condition_dense is not None:
                c = self.condition_dense(c)
            x = ops.concatenate([x, ops.cast(c, x.dtype)], axis=-1)
        return unfold_time(self.output_dense(x), time)

    def compute_output_shape(self, images_shape, condition_shape=None):
        return tuple(images_shape[:-3]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "kernel_size": self.kernel_size,
                "units": self.units,
                "condition_units": self.condition_units,
                "activation": keras.activations.serialize(self.activation),
                "dense_rank": self.dense_rank,
                "dense_cp": self.dense_cp,
            }
        )
        return config
