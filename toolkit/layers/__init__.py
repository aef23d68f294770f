"""Composable Keras 3 layers for (conditional) VAEs of shadows and images.

Every layer is registered for Keras serialization under the package name ``toolkit``.
"""

from toolkit.layers.blob_density import BlobDensity
from toolkit.layers.cpd_dense import CPDDense
from toolkit.layers.gaussian_latent import GaussianLatent
from toolkit.layers.lstm_sampler import LSTMSampler
from toolkit.layers.orientation_encoding import OrientationEncoding
from toolkit.layers.orientation_head import OrientationHead
from toolkit.layers.projection_decoder import ProjectionDecoder
from toolkit.layers.rotation_conditioned_encoder import RotationConditionedEncoder
from toolkit.layers.voxel_density import VoxelDensity

__all__ = [
    "BlobDensity",
    "CPDDense",
    "GaussianLatent",
    "LSTMSampler",
    "OrientationEncoding",
    "OrientationHead",
    "ProjectionDecoder",
    "RotationConditionedEncoder",
    "VoxelDensity",
]
