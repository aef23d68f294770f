"""ConditionalVAE: encoder, sampler, Gaussian latent and decoder, optionally conditioned."""

import math

import keras
from keras import ops

from toolkit.layers.gaussian_latent import GaussianLatent

LIKELIHOODS = ("gaussian", "bernoulli")


@keras.saving.register_keras_serializable(package="toolkit")
class ConditionalVAE(keras.Model):
    """A (conditional) VAE assembled from toolkit layers.

    Inputs are a dict with `"images"` (`[batch, (time,) height, width, channels]`) and, for a
    conditional model, `"condition"` (orientations in the representation of
    `condition_encoding`, or one-hot labels). The encoder reads every image with its
    condition, the sampler turns the per-image features into the latent parameters (an LSTM
    over the sequence, as in the poster's Fig. 4, or a Dense layer), `GaussianLatent` samples
    the code and the decoder renders each image again from the code and its condition.

    Args:
        encoder: maps `(images, condition)` to features, e.g. `RotationConditionedEncoder`.
        sampler: maps features to `GaussianLatent.params_size(latent_dim)` parameters.
        latent: the `GaussianLatent` layer (its `kl_weight` should be 0: this model adds
            `beta * KL` itself).
        decoder: maps `(latent, condition)` to images, e.g. `ProjectionDecoder`.
        condition_encoding: layer applied to the raw condition first, or `None`.
            Default value: `None`.
        likelihood: `"gaussian"` (fixed scale) or `"bernoulli"` (decoder outputs logits).
            Default value: `"gaussian"`.
        likelihood_scale: standard deviation of the Gaussian likelihood. Default value: `0.1`.
        beta: weight of the KL term. Default value: `1.0`.
        **kwargs: standard `keras.Model` arguments.
    """

    def __init__(
        self,
        encoder,
        sampler,
        latent,
        decoder,
        condition_encoding=None,
        likelihood: str = "gaussian",
        likelihood_scale: float = 0.1,
        beta: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(
                f"ConditionalVAE: `likelihood` must be one of {LIKELIHOODS}, got {likelihood!r}."
            )
        if not likelihood_scale > 0:
            raise ValueError(f"ConditionalVAE: `likelihood_scale` must be positive, got {likelihood_scale}.")
        if beta < 0:
            raise ValueError(f"ConditionalVAE: `beta` must be >= 0, got {beta}.")
        self.encoder = encoder
        self.sampler = sampler
        self.latent = latent
        self.decoder = decoder
        self.condition_encoding = condition_encoding
        self.likelihood = likelihood
        self.likelihood_scale = float(likelihood_scale)
        self.beta = float(beta)

    @property
    def term_weights(self) -> dict:
        """Weight of each per-example loss term in the training objective."""
        return {"reconstruction": 1.0, "kl": self.beta}

    def _condition(self, inputs):
        condition = inputs.get("condition") if isinstance(inputs, dict) else None
        if condition is not None and self.condition_encoding is not None:
            condition = self.condition_encoding(condition)
        return condition

    def latent_params(self, inputs):
        """The latent parameters for a batch of inputs (a dict with images and condition)."""
        features = self.encoder(inputs["images"], self._condition(inputs))
        return self.sampler(features)

    def encode(self, inputs):
        """Posterior mean and standard deviation of the latent code."""
        return self.latent.loc_and_scale(self.latent_params(inputs))

    def decode(self, latent, condition=None):
        """Mean image(s) for latent codes and raw conditions (probabilities for Bernoulli)."""
        output = self._decode_raw(latent, condition)
        return ops.sigmoid(output) if self.likelihood == "bernoulli" else output

    def _decode_raw(self, latent, condition):
        if condition is not None and self.condition_encoding is not None:
            condition = self.condition_encoding(condition)
        return self.decoder(latent, condition)

    def call(self, inputs, training=None):
        z = self.latent(self.latent_params(inputs), training=training)
        return self.decode(z, inputs.get("condition"))

    def loss_terms(self, inputs, training=None):
        """Per-example reconstruction negative log-likelihood and KL, both in nats.

        A sequence of views counts as one example: its terms are summed over views and pixels.
        `inputs["latent_noise"]`, when present, is the standard normal noise of the sample.
        Returns a dict with `"reconstruction"` and `"kl"` (each `[batch]`) and `"mean"`, the
        decoded mean images.
        """
        params = self.latent_params(inputs)
        z = self.latent(params, training=training, noise=inputs.get("latent_noise"))
        output = ops.cast(self._decode_raw(z, inputs.get("condition")), "float32")
        images = ops.cast(inputs["images"], "float32")
        if self.likelihood == "gaussian":
            scale = self.likelihood_scale
            per_pixel = (
                0.5 * ops.square((images - output) / scale) + math.log(scale) + 0.5 * math.log(2 * math.pi)
            )
            mean = output
        else:
            per_pixel = ops.binary_crossentropy(images, output, from_logits=True)
            mean = ops.sigmoid(output)
        axes = tuple(range(1, len(per_pixel.shape)))
        return {
            "reconstruction": ops.sum(per_pixel, axis=axes),
            "kl": self.latent.kl_divergence(params),
            "mean": mean,
        }

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The negative ELBO (with `beta`), averaged over the batch, for users' `model.fit`."""
        terms = self.loss_terms(x, training=training)
        return ops.mean(terms["reconstruction"] + self.beta * terms["kl"])

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update(
            {
                "encoder": serialize(self.encoder),
                "sampler": serialize(self.sampler),
                "latent": serialize(self.latent),
                "decoder": serialize(self.decoder),
                "condition_encoding": serialize(self.condition_encoding),
                "likelihood": self.likelihood,
                "likelihood_scale": self.likelihood_scale,
                "beta": self.beta,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "sampler", "latent", "decoder", "condition_encoding"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def dense_sampler(latent_dim: int, use_bias: bool = True, name: str = "sampler") -> keras.layers.Dense:
    """A Dense layer out to the parameters of a `GaussianLatent` of `latent_dim` (no sequence)."""
    return keras.layers.Dense(GaussianLatent.params_size(latent_dim), use_bias=use_bias, name=name)


def make_latent(latent_dim: int, seed=None) -> GaussianLatent:
    """A `GaussianLatent` for `ConditionalVAE`, which adds the KL term itself."""
    return GaussianLatent(latent_dim=latent_dim, kl_weight=0.0, seed=seed, name="latent")
