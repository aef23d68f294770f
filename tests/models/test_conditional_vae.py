"""ConditionalVAE loss terms against hand-computed Gaussian, Bernoulli and KL formulas.

Config and `.keras` round trips, SavedModel, the MirroredStrategy step, mixed precision, XLA
and a `model.fit` step are checked for the `shadow_vae` and `digit_vae` goldens by the
conformance suite (tests/layers/test_conformance.py).
"""

import math

import keras
import numpy as np
import pytest

from toolkit.layers import LSTMSampler, OrientationEncoding, ProjectionDecoder, RotationConditionedEncoder
from toolkit.models import ConditionalVAE, make_latent


def shadow_model(likelihood="gaussian", beta=1.0):
    keras.utils.set_random_seed(0)
    return ConditionalVAE(
        RotationConditionedEncoder(filters=(4,), units=8, condition_units=4),
        LSTMSampler(latent_dim=3, units=4),
        make_latent(3, seed=0),
        ProjectionDecoder(image_size=8, filters=(4,), units=8, condition_units=4),
        OrientationEncoding("euler"),
        likelihood=likelihood,
        likelihood_scale=0.2,
        beta=beta,
    )


def inputs():
    rng = np.random.default_rng(0)
    return {
        "images": rng.random((5, 2, 8, 8, 1)).astype("float32"),
        "condition": rng.uniform(-3, 3, (5, 2, 3)).astype("float32"),
    }


def test_gaussian_reconstruction_and_kl_match_the_formulas():
    model, batch = shadow_model(), inputs()
    terms = model.loss_terms(batch, training=False)
    loc, scale = (t.numpy() for t in model.encode(batch))
    mean = model.decode(loc, batch["condition"]).numpy()
    s = 0.2
    nll = (0.5 * ((batch["images"] - mean) / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)).sum(
        axis=(1, 2, 3, 4)
    )
    kl = 0.5 * (loc**2 + scale**2 - 1 - 2 * np.log(scale)).sum(axis=1)
    np.testing.assert_allclose(terms["reconstruction"].numpy(), nll, rtol=1e-5)
    np.testing.assert_allclose(terms["kl"].numpy(), kl, rtol=1e-5, atol=1e-6)


def test_bernoulli_reconstruction_is_the_binary_cross_entropy():
    model, batch = shadow_model("bernoulli"), inputs()
    terms = model.loss_terms(batch, training=False)
    loc, _ = model.encode(batch)
    p = model.decode(loc, batch["condition"]).numpy()
    x = batch["images"]
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3, 4))
    np.testing.assert_allclose(terms["reconstruction"].numpy(), bce, rtol=1e-4)


def test_training_samples_with_the_given_noise():
    model, batch = shadow_model(), inputs()
    zero = model.loss_terms({**batch, "latent_noise": np.zeros((5, 3), "float32")}, training=True)
    mean = model.loss_terms(batch, training=False)
    np.testing.assert_allclose(zero["reconstruction"].numpy(), mean["reconstruction"].numpy(), rtol=1e-6)
    noisy = model.loss_terms({**batch, "latent_noise": np.ones((5, 3), "float32")}, training=True)
    assert not np.allclose(noisy["reconstruction"].numpy(), mean["reconstruction"].numpy())


def test_model_fit_minimizes_the_beta_weighted_negative_elbo():
    model, batch = shadow_model(beta=0.5), inputs()
    terms = model.loss_terms(batch, training=False)
    expected = float(np.mean(terms["reconstruction"].numpy() + 0.5 * terms["kl"].numpy()))
    np.testing.assert_allclose(float(model.compute_loss(batch, training=False)), expected, rtol=1e-5)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(batch, epochs=5, batch_size=5, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"likelihood": "poisson"}, "`likelihood` must be one of"),
        ({"beta": -1.0}, "`beta` must be >= 0, got -1.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConditionalVAE(None, None, None, None, **kwargs)
