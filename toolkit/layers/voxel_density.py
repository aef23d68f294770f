"""VoxelDensity: a learnable 3D map on a voxel grid, seen through the Fourier projector."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from toolkit.data.objects import BlobSample
from toolkit.data.projector import project_spectrum, volume_spectrum
from toolkit.data.render import render_volume


@keras.saving.register_keras_serializable(package="toolkit")
class VoxelDensity(keras.layers.Layer):
    """A density given by its value at every voxel of a `[size, size, size]` grid (z, y, x).

    Called on rotations `[batch, 3, 3]` (and optional in-plane shifts `[batch, 2]`, pixels), it
    returns their shadows `[batch, size, size]` by the Fourier slice theorem
    (`toolkit.data.projector`), differentiable in the map and the rotations, in the units of
    `toolkit.data.render.render_shadows` (mass per unit area). The map starts as the density of
    `count` random blobs (the start `BlobDensity` has with the same arguments), scaled to a
    peak of 1: a smooth start, and the error the map is trained by ignores its scale.

    Args:
        size: voxels (and shadow pixels) per side.
        extent: the map spans `[-extent, extent]` on each axis, in sample units.
        count, radius, sigma, seed: the random blobs of the start (see `BlobDensity`).
            Default values: `100`, `0.25`, `0.05`, `0`.
        rate: learning-rate multiplier of the voxels: they are stored divided by it. Default
            value: `1.0`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> density = VoxelDensity(size=8, extent=1.0, count=3)
    >>> tuple(density(np.eye(3, dtype="float32")[None]).shape)
    (1, 8, 8)
    >>> density.count_params()  # 8^3
    512
    """

    def __init__(
        self,
        size: int,
        extent: float,
        count: int = 100,
        radius: float = 0.25,
        sigma: float = 0.05,
        seed: int = 0,
        rate: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("size", size), ("count", count)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"VoxelDensity: `{name}` must be a positive integer, got {value!r}.")
        for name, value in (("extent", extent), ("radius", radius), ("sigma", sigma), ("rate", rate)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"VoxelDensity: `{name}` must be a positive number, got {value!r}.")
        self.size, self.extent, self.count = int(size), float(extent), int(count)
        self.radius, self.sigma, self.seed, self.rate = float(radius), float(sigma), int(seed), float(rate)

    @property
    def voxel_size(self) -> float:
        return 2.0 * self.extent / self.size

    def build(self, rotations_shape, translations_shape=None):
        rng = np.random.default_rng(self.seed)
        blobs = BlobSample(rng.normal(0.0, self.radius, (self.count, 3)), np.ones(self.count), self.sigma)
        start = render_volume(blobs, self.size, self.extent)
        self.values = self.add_weight(
            name="values",
            shape=(self.size,) * 3,
            initializer=keras.initializers.Constant(start / start.max() / self.rate),
        )

    def volume(self):
        """The map [size, size, size] (z, y, x) as a float32 tensor."""
        return self.rate * tf.cast(self.values, "float32")

    def spectrum(self):
        """The map's padded centred spectrum (`toolkit.data.projector.volume_spectrum`), read by slices."""
        return volume_spectrum(self.volume())

    def call(self, rotations, translations=None):
        images = project_spectrum(
            self.spectrum(), tf.cast(rotations, "float32"), self.size, self.voxel_size, translations
        )
        return tf.cast(images, self.compute_dtype)

    def as_map(self) -> np.ndarray:
        """The map as it stands, float32 [size, size, size]."""
        return self.volume().numpy()

    def compute_output_shape(self, rotations_shape, translations_shape=None):
        return (rotations_shape[0], self.size, self.size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "size": self.size,
                "extent": self.extent,
                "count": self.count,
                "radius": self.radius,
                "sigma": self.sigma,
                "seed": self.seed,
                "rate": self.rate,
            }
        )
        return config
