"""Held-out metrics: ELBO, reconstruction error, SSIM through the posterior and the prior mean."""

from __future__ import annotations

import functools
import weakref

import numpy as np
import tensorflow as tf


def compiled_per_model(function):
    """`function(model, *args)` run as one tf.function per model.

    One tf.function taking the model as an argument would retrace for every new model, and
    could not create the variables of a model not yet built after its first trace.
    """
    functions = weakref.WeakKeyDictionary()

    @functools.wraps(function)
    def call(model, *args):
        if model not in functions:
            owner = weakref.ref(model)  # the compiled function must not keep its model alive
            functions[model] = tf.function(lambda *a: function(owner(), *a), reduce_retracing=True)
        return functions[model](*args)

    return call


def batches(arrays: dict, size: int):
    """Slices of a dict of equal-length arrays."""
    count = len(next(iter(arrays.values())))
    for start in range(0, count, size):
        yield {k: v[start : start + size] for k, v in arrays.items()}


def images_2d(x) -> tf.Tensor:
    """Fold any (batch, time) prefix so images are [N, H, W, C]."""
    x = tf.convert_to_tensor(x, tf.float32)
    return tf.reshape(x, [-1] + x.shape[-3:].as_list())


def evaluate(model, validation: dict, batch_size: int = 256, max_val: float = 1.0) -> dict:
    """Validation metrics of a ConditionalVAE, averaged over examples (a sequence is one example).

    `val_elbo` is the ELBO in nats per example (beta = 1, higher is better); `val_mse` and
    `val_ssim` compare the images with their reconstruction through the posterior mean;
    for conditional models `val_ssim_prior` decodes the prior mean with the true condition.
    """
    inputs = {k: v for k, v in validation.items() if k in ("images", "condition")}
    sums = {"reconstruction": 0.0, "kl": 0.0, "mse": 0.0, "ssim": 0.0, "ssim_prior": 0.0}
    count = 0
    for batch in batches(inputs, batch_size):
        terms = loss_terms(model, batch)
        truth, mean = images_2d(batch["images"]), images_2d(terms["mean"])
        n = len(batch["images"])
        per_image = n and truth.shape[0] // n
        sums["reconstruction"] += float(tf.reduce_sum(terms["reconstruction"]))
        sums["kl"] += float(tf.reduce_sum(terms["kl"]))
        sums["mse"] += (
            float(tf.reduce_mean(tf.square(truth - mean), axis=[1, 2, 3]).numpy().sum()) / per_image
        )
        sums["ssim"] += float(tf.reduce_sum(tf.image.ssim(truth, mean, max_val))) / per_image
        if "condition" in batch:
            prior = images_2d(decode_prior(model, batch["condition"]))
            sums["ssim_prior"] += float(tf.reduce_sum(tf.image.ssim(truth, prior, max_val))) / per_image
        count += n
    out = {
        "val_elbo": -(sums["reconstruction"] + sums["kl"]) / count,
        "val_reconstruction": sums["reconstruction"] / count,
        "val_kl": sums["kl"] / count,
        "val_mse": sums["mse"] / count,
        "val_ssim": sums["ssim"] / count,
    }
    if "condition" in inputs:
        out["val_ssim_prior"] = sums["ssim_prior"] / count
    return out


@compiled_per_model
def loss_terms(model, batch):
    return model.loss_terms(batch, training=False)


@compiled_per_model
def decode_prior(model, condition):
    latent = tf.zeros([tf.shape(condition)[0], model.latent.latent_dim])
    return model.decode(latent, condition)


def reconstruct(model, inputs: dict) -> np.ndarray:
    """Posterior-mean reconstructions (decoded means) of a batch, as numpy."""
    return loss_terms(model, {k: v for k, v in inputs.items() if k in ("images", "condition")})[
        "mean"
    ].numpy()


@compiled_per_model
def predict_rotations(model, images):
    return model(images, training=False)


def orientation_errors(predicted, true) -> np.ndarray:
    """Geodesic angles in degrees between predicted and true rotation matrices `[..., 3, 3]`."""
    from toolkit.geometry import geodesic_angle

    return (
        geodesic_angle(tf.cast(predicted, tf.float64), tf.cast(true, tf.float64), degrees=True)
        .numpy()
        .ravel()
    )


def evaluate_orientation(model, validation: dict, batch_size: int = 256) -> dict:
    """Validation metrics of an OrientationEstimator: geodesic error statistics in degrees."""
    errors = np.concatenate(
        [
            orientation_errors(predict_rotations(model, batch["images"]), batch["rotations"])
            for batch in batches({k: validation[k] for k in ("images", "rotations")}, batch_size)
        ]
    )
    return {
        "val_median_error_deg": float(np.median(errors)),
        "val_mean_error_deg": float(np.mean(errors)),
        **{f"val_within_{limit}_deg": float(np.mean(errors < limit)) for limit in (5, 10, 15)},
    }


def validation_metrics(model, validation: dict) -> dict:
    """The held-out metrics of any toolkit model."""
    if hasattr(model, "decode"):
        return evaluate(model, validation)
    return evaluate_orientation(model, validation)
