"""Models assembled from toolkit layers."""

from toolkit.models.conditional_vae import ConditionalVAE, dense_sampler, make_latent
from toolkit.models.orientation_estimator import OrientationEstimator

__all__ = ["ConditionalVAE", "OrientationEstimator", "dense_sampler", "make_latent"]
