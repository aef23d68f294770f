"""GaussianLatent: a diagonal Gaussian posterior with a standard normal prior, in TFP."""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from toolkit.layers.shapes import check_dim

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="toolkit")
class GaussianLatent(keras.layers.Layer):
    """Sample a latent code from a diagonal Gaussian whose parameters come from the layer before.

    The input holds `params_size(latent_dim)` numbers per example: the mean, then an
    unconstrained scale mapped through softplus. In training the layer returns a
    reparameterized sample; at inference it returns the mean, so predictions are
    deterministic. With `kl_weight > 0` it adds `kl_weight * KL(q(z|x) || N(0, I))`, averaged
    over the batch, with `add_loss`, which is what `model.fit` needs for a VAE.

    Args:
        latent_dim: size of the latent code. Default value: `15`.
        kl_weight: weight of the KL term added with `add_loss`; `0` adds none (a training
            loop that computes the KL itself from `distribution()` uses that).
            Default value: `1.0`.
        seed: seed of the sampling noise. Default value: `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> latent = GaussianLatent(latent_dim=2)
    >>> params = np.zeros((1, GaussianLatent.params_size(2)), "float32")
    >>> np.asarray(latent(params)).tolist()  # the mean at inference
    [[0.0, 0.0]]

    References:
        Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
    """

    def __init__(self, latent_dim: int = 15, kl_weight: float = 1.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(latent_dim) < 1:
            raise ValueError(f"GaussianLatent: `latent_dim` must be positive, got {latent_dim}.")
        if float(kl_weight) < 0:
            raise ValueError(f"GaussianLatent: `kl_weight` must be >= 0, got {kl_weight}.")
        self.latent_dim = int(latent_dim)
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def params_size(latent_dim: int) -> int:
        """Number of inputs the layer needs per example: a mean and a scale per dimension."""
        return 2 * int(latent_dim)

    def build(self, input_shape):
        check_dim(
            self,
            "params",
            input_shape,
            -1,
            self.params_size(self.latent_dim),
            f"parameters (2 * latent_dim, latent_dim={self.latent_dim})",
        )
        self.built = True

    def loc_and_scale(self, params):
        """The posterior mean and standard deviation, in float32 whatever the layer's policy."""
        params = ops.cast(params, "float32")
        loc = params[..., : self.latent_dim]
        scale = ops.softplus(params[..., self.latent_dim :]) + 1e-4
        return loc, scale

    def distribution(self, params) -> tfd.Distribution:
        """The posterior q(z | x) as a TFP distribution."""
        loc, scale = self.loc_and_scale(params)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=scale)

    def kl_divergence(self, params):
        """Per-example KL(q(z|x) || N(0, I)) in nats."""
        posterior = self.distribution(params)
        prior = tfd.MultivariateNormalDiag(loc=tf.zeros_like(posterior.loc))
        return tfd.kl_divergence(posterior, prior)

    def call(self, params, training=None, noise=None):
        loc, scale = self.loc_and_scale(params)
        if self.kl_weight:
            self.add_loss(self.kl_weight * ops.mean(self.kl_divergence(params)))
        if training:
            if noise is None:
                noise = keras.random.normal(ops.shape(loc), seed=self.seed_generator)
            z = loc + scale * ops.cast(noise, "float32")
        else:
            z = loc
        return ops.cast(z, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.latent_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "kl_weight": self.kl_weight, "seed": self.seed})
        return config
