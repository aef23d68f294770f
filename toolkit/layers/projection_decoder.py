"""ProjectionDecoder: a latent code and an orientation (or any condition) to a shadow."""

import keras
from keras import layers, ops

from toolkit.layers.cpd_dense import check_dense_cp, check_dense_rank, dense_or_cpd
from toolkit.layers.shapes import check_rank, fold_time, strided_stack, unfold_time


@keras.saving.register_keras_serializable(package="toolkit")
class ProjectionDecoder(keras.layers.Layer):
    """Decode a latent code, joined with a condition, into an image through transposed convolutions.

    With a condition `[batch, time, width]` the same latent code is decoded at every step,
    giving `[batch, time, height, width, channels]`: one sample seen from several
    orientations.

    Args:
        image_size: height and width of the output; divisible by `2 ** len(filters)`.
        channels: output channels. Default value: `1`.
        filters: channels of the stride-2 transposed convolutions, one per upsampling step.
            Default value: `(64, 32)`.
        kernel_size: convolution kernel size. Default value: `3`.
        units: width of the dense layer before the convolutions. Default value: `128`.
        condition_units: width of the dense encoding of the condition. Default value: `32`.
        activation: activation of the hidden layers. Default value: `"relu"`.
        output_activation: activation of the output image, e.g. `"sigmoid"` for Bernoulli
            pixels. Default value: `None` (linear).
        dense_rank: `None` for plain `Dense` layers, or a positive integer to make the two
            large ones, `hidden_dense` and `grid_dense`, `CPDDense` layers of that rank.
            Default value: `None`.
        dense_cp: `None`, or per sublayer (`hidden_dense`, `grid_dense`) a mapping
            `{"rank": R, "input_modes": [...], "output_modes": [...]}` for a `CPDDense` of that
            rank and those modes (what `toolkit compress` writes); a sublayer it names takes
            it over `dense_rank`. Default value: `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> decoder = ProjectionDecoder(image_size=16, filters=(8,), units=16)
    >>> latent = np.zeros((2, 4), "float32")
    >>> orientation = np.zeros((2, 3, 6), "float32")
    >>> tuple(decoder(latent, orientation).shape)
    (2, 3, 16, 16, 1)
    """

    #: The Dense sublayers that `dense_rank` or `dense_cp` make `CPDDense` (`toolkit compress` uses it).
    CPD_SUBLAYERS = ("hidden_dense", "grid_dense")

    def __init__(
        self,
        image_size: int,
        channels: int = 1,
        filters=(64, 32),
        kernel_size: int = 3,
        units: int = 128,
        condition_units: int = 32,
        activation="relu",
        output_activation=None,
        dense_rank: int | None = None,
        dense_cp: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        filters = tuple(int(f) for f in filters)
        if min(filters, default=1) < 1:
            raise ValueError(f"ProjectionDecoder: `filters` must be positive integers, got {list(filters)}.")
        for name, value in (("channels", channels), ("kernel_size", kernel_size), ("units", units)):
            if int(value) < 1:
                raise ValueError(f"ProjectionDecoder: `{name}` must be positive, got {value}.")
        if int(condition_units) < 0:
            raise ValueError(f"ProjectionDecoder: `condition_units` must be >= 0, got {condition_units}.")
        step = 2 ** len(filters)
        if int(image_size) < step or int(image_size) % step:
            raise ValueError(
                f"ProjectionDecoder: `image_size` must be a positive multiple of 2 ** len(filters) "
                f"= {step}, got {image_size}."
            )
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.filters = filters
        self.kernel_size = int(kernel_size)
        self.units = int(units)
        self.condition_units = int(condition_units)
        self.activation = keras.activations.get(activation)
        self.output_activation = keras.activations.get(output_activation)
        self.start_size = self.image_size // step
        self.dense_rank = check_dense_rank("ProjectionDecoder", dense_rank)
        self.dense_cp = check_dense_cp("ProjectionDecoder", dense_cp, self.CPD_SUBLAYERS)

    def build(self, latent_shape, condition_shape=None):
        check_rank(self, "latent", latent_shape, (2,), "[batch, latent_dim]")
        features = latent_shape[-1]
        self.condition_dense = None
        if condition_shape is not None:
            check_rank(self, "condition", condition_shape, (2, 3), "[batch, (time,) width]")
            if self.condition_units:
                self.condition_dense = layers.Dense(
                    self.condition_units, activation=self.activation, name="condition_dense"
                )
                self.condition_dense.build((None, condition_shape[-1]))
                features += self.condition_units
            else:
                features += condition_shape[-1]
        first = self.filters[0] if self.filters else self.channels
        self.hidden_dense = self._dense(self.units, "hidden_dense")
        self.hidden_dense.build((None, features))
        self.grid_dense = self._dense(self.start_size * self.start_size * first, "grid_dense")
        self.grid_dense.build((None, self.units))
        shape = (None, self.start_size, self.start_size, first)
        self.deconvolutions, shape = strided_stack(
            layers.Conv2DTranspose, self.filters, self.kernel_size, self.activation, "deconv", shape
        )
        # A stride-1 transposed convolution computes the same family of maps as a Conv2D, and
        # its backward pass to a one-channel image is about 1.6x faster on CPU.
        self.output_conv = layers.Conv2DTranspose(
            self.channels,
            self.kernel_size,
            padding="same",
            activation=self.output_activation,
            name="output_conv",
        )
        self.output_conv.build(shape)
        self.built = True

    def _dense(self, units: int, name: str) -> keras.layers.Layer:
        return dense_or_cpd(name, units, self.activation, self.dense_rank, self.dense_cp)

    def call(self, latent, condition=None):
        time = None
        x = latent
        if condition is not None:
            if len(condition.shape) == 3:
                steps = condition.shape[1] if condition.shape[1] is not None else ops.shape(condition)[1]
                x = ops.repeat(ops.expand_dims(latent, 1), steps, axis=1)
                x, time = fold_time(x, 1)
                condition, _ = fold_time(condition, 1)
            c = self.condition_dense(condition) if self.condition_dense is not None else condition
            x = ops.concatenate([x, ops.cast(c, x.dtype)], axis=-1)
        x = self.grid_dense(self.hidden_dense(x))
        x = ops.reshape(x, (-1, self.start_size, self.start_size, x.shape[-1] // self.start_size**2))
        for deconv in self.deconvolutions:
            x = deconv(x)
        return unfold_time(self.output_conv(x), time)

    def compute_output_shape(self, latent_shape, condition_shape=None):
        prefix = (latent_shape[0],)
        if condition_shape is not None and len(condition_shape) == 3:
            prefix += (condition_shape[1],)
        return prefix + (self.image_size, self.image_size, self.channels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "channels": self.channels,
                "filters": list(self.filters),
                "kernel_size": self.kernel_size,
                "units": self.units,
                "condition_units": self.condition_units,
                "activation": keras.activations.serialize(self.activation),
                "output_activation": keras.activations.serialize(self.output_activation),
                "dense_rank": self.dense_rank,
                "dense_cp": self.dense_cp,
            }
        )
        return config
