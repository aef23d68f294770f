"""Metrics and figures of a VAE on labelled digits: how the latent space organises them.

The conditional-VAE task calls `digit_metrics` for `summary.json` and `write_digit_figures`
for `figures/` when its data has labels. The kNN accuracy is measured as published k-NN tables
of 2-D embeddings measure it: the classifier is fitted on the training digits' latent means and
scored on the held-out digits' (leave-one-out on the held-out means when no training digits are
given).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.analysis.latent import knn_accuracy, latent_means, pca_2d, silhouette_score
from toolkit.data.mnist import NUM_CLASSES
from toolkit.figures import plots

SWEEP = np.linspace(-2.0, 2.0, 9)
SAMPLE_SEED = 0


def digit_metrics(model, validation: dict, metrics: dict, training: dict | None = None) -> dict:
    """Summary entries of a VAE trained on labelled digits.

    Args:
        model: the trained `ConditionalVAE`.
        validation: the validation set of the run's DataBundle (`images`, `labels`, and
            `condition` for a conditional model).
        metrics: the last epoch's metrics (with `val_elbo`), or empty when no epoch ran.
        training: the labelled training digits in the same form, the 5-NN classifier's
            reference. Default value: `None` (leave-one-out on the validation means).

    Returns:
        `val_neg_elbo` (nats per held-out digit, when `val_elbo` is known), `knn5_accuracy`
        (5-NN digit accuracy of the validation latent means against the training digits'
        means) and `silhouette` (of the validation means, grouped by digit). For a
        conditional model the label is an input, so low values mean the latent code holds
        style rather than digit identity.
    """
    means = latent_means(model, validation)
    labels = np.asarray(validation["labels"])
    reference = {}
    if training is not None:
        reference = {
            "reference_points": latent_means(model, training),
            "reference_labels": np.asarray(training["labels"]),
        }
    out = {
        "knn5_accuracy": knn_accuracy(means, labels, k=5, **reference),
        "silhouette": silhouette_score(means, labels),
    }
    if "val_elbo" in metrics:
        out["val_neg_elbo"] = -float(metrics["val_elbo"])
    return out


def decode(model, latent: np.ndarray, digits: np.ndarray | None) -> np.ndarray:
    """Mean images (probabilities for Bernoulli pixels) of latent codes, with one-hot digits if given.

    Args:
        model: a `ConditionalVAE`.
        latent: `[N, latent_dim]` codes.
        digits: `[N]` digit of each code for a conditional model, else `None`.
    """
    condition = None if digits is None else tf.one_hot(digits, NUM_CLASSES)
    return np.asarray(model.decode(tf.constant(latent, tf.float32), condition))


def prior_draws(count: int, latent_dim: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """`count` seeded standard-normal latent codes, so figures are the same run after run."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def sweep_dimension(means: np.ndarray) -> int:
    """The latent dimension whose validation means vary most: sweeping an unused one shows nothing."""
    return int(np.argmax(means.var(axis=0)))


def write_digit_figures(figures: Path, model, validation: dict) -> None:
    """Latent clusters, samples from the prior and, for a conditional model, sweeps and class samples.

    Args:
        figures: the run's figures directory.
        model: the trained `ConditionalVAE`.
        validation: the validation set of the run's DataBundle.
    """
    conditional = "condition" in validation
    latent_dim = model.latent.latent_dim
    means = latent_means(model, validation)
    labels = np.asarray(validation["labels"])
    if latent_dim == 2:
        shown, axes, names = means, "latent means", ("$z_1$", "$z_2$")
    else:  # PCA to 2D (a 1-D code is padded with zeros)
        shown, axes, names = pca_2d(means), f"PCA of the {latent_dim}-D latent means", ("PC 1", "PC 2")
    plots.latent_clusters(shown, labels, figures / "latent_clusters.png", f"held-out digits: {axes}", names)
    draws = prior_draws(64, latent_dim)
    digits = np.arange(64) % NUM_CLASSES if conditional else None
    title = "samples from the prior" + (" (digit = index mod 10, row by row)" if conditional else "")
    plots.image_grid(decode(model, draws, digits), figures / "prior_samples.png", title, columns=8)
    if not conditional:
        return
    dimension = sweep_dimension(means)
    codes = np.zeros((NUM_CLASSES, len(SWEEP), latent_dim), np.float32)
    codes[:, :, dimension] = SWEEP
    images = decode(model, codes.reshape(-1, latent_dim), np.repeat(np.arange(NUM_CLASSES), len(SWEEP)))
    plots.latent_sweep(
        images.reshape((NUM_CLASSES, len(SWEEP)) + images.shape[1:]),
        figures / "latent_sweep.png",
        SWEEP,
        dimension,
    )
    styles = prior_draws(8, latent_dim, SAMPLE_SEED + 1)  # one style per column, shared by every digit
    codes = np.tile(styles, (NUM_CLASSES, 1))
    images = decode(model, codes, np.repeat(np.arange(NUM_CLASSES), len(styles)))
    grid = images.reshape((NUM_CLASSES, len(styles)) + images.shape[1:])
    plots.class_samples(grid, figures / "class_samples.png")


__all__ = ["digit_metrics", "write_digit_figures"]
