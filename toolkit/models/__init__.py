"""Models assembled from toolkit layers."""

from toolkit.models.ab_initio import AbInitio
from toolkit.models.conditional_vae import ConditionalVAE, dense_sampler, make_latent
from toolkit.models.orientation_estimator import OrientationEstimator

__all__ = ["AbInitio", "ConditionalVAE", "OrientationEstimator", "dense_sampler", "make_latent"]
