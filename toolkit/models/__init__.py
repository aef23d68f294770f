"""Models assembled from toolkit layers."""

from toolkit.models.conditional_vae import ConditionalVAE, make_latent

__all__ = ["ConditionalVAE", "make_latent"]
