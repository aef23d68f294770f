"""LSTMSampler: an LSTM over a sequence of per-view features that outputs latent parameters."""

import keras
from keras import layers

from toolkit.layers.gaussian_latent import GaussianLatent
from toolkit.layers.shapes import check_rank


@keras.saving.register_keras_serializable(package="toolkit")
class LSTMSampler(keras.layers.Layer):
    """Read a sequence of view encodings with an LSTM; output the parameters of the latent.

    As in the poster's Fig. 4, the LSTM updates its state after each shadow of the sequence
    and the last state is mapped to the `GaussianLatent` parameters (mean and scale), so one
    latent code describes the whole sequence. With `return_sequences=True` every step gets
    its own parameters.

    Args:
        latent_dim: size of the latent code the output parameterizes. Default value: `15`.
        units: LSTM state size. Default value: `64`.
        return_sequences: one output per step instead of one per sequence.
            Default value: `False`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Input: `[batch, time, features]`. Output: `[batch, 2 * latent_dim]` (or with a time axis).

    Example:

    >>> import numpy as np
    >>> sampler = LSTMSampler(latent_dim=3, units=8)
    >>> tuple(sampler(np.zeros((2, 4, 5), "float32")).shape)
    (2, 6)
    """

    def __init__(self, latent_dim: int = 15, units: int = 64, return_sequences: bool = False, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("latent_dim", latent_dim), ("units", units)):
            if int(value) < 1:
                raise ValueError(f"LSTMSampler: `{name}` must be positive, got {value}.")
        self.latent_dim = int(latent_dim)
        self.units = int(units)
        self.return_sequences = bool(return_sequences)

    def build(self, input_shape):
        check_rank(self, "inputs", input_shape, (3,), "[batch, time, features]")
        self.lstm = layers.LSTM(self.units, return_sequences=self.return_sequences, name="lstm")
        self.lstm.build(input_shape)
        self.params_dense = layers.Dense(GaussianLatent.params_size(self.latent_dim), name="params")
        self.params_dense.build((None, self.units))
        self.built = True

    def call(self, inputs):
        return self.params_dense(self.lstm(inputs))

    def compute_output_shape(self, input_shape):
        prefix = tuple(input_shape[:2]) if self.return_sequences else (input_shape[0],)
        return prefix + (GaussianLatent.params_size(self.latent_dim),)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"latent_dim": self.latent_dim, "units": self.units, "return_sequences": self.return_sequences}
        )
        return config
