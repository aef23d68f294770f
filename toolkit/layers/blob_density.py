"""BlobDensity: a learnable 3D density of Gaussian blobs, seen through the exact shadow renderer."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from toolkit.data.objects import BlobSample
from toolkit.data.render import render_shadows, render_volume

#: Rotation by 180 degrees about the beam (z): its shadow is the shadow of R turned in plane.
IN_PLANE_FLIP = np.diag([-1.0, -1.0, 1.0]).astype(np.float32)


@keras.saving.register_keras_serializable(package="toolkit")
class BlobDensity(keras.layers.Layer):
    """A density `sum_k w_k N3(x; c_k, s_k^2 I)` with learnable centres, masses and widths.

    Called on rotations `[batch, 3, 3]` (and optional in-plane shifts `[batch, 2]`, sample
    units), it returns their exact parallel-beam shadows `[batch, image_size, image_size]`
    (`toolkit.data.render.render_shadows`), differentiable in the rotations, the shifts and
    every blob parameter. Masses and widths are stored as logarithms, so they stay positive.
    A step of ab initio costs a fifth of a 64^3 `VoxelDensity`'s on this CPU (the README's
    ab initio benchmark).

    Args:
        count: number of blobs.
        image_size: pixels per side of the shadows.
        extent: the shadows span `[-extent, extent]` in sample units.
        radius: the blobs start at normal positions of this standard deviation per axis.
            Default value: `0.25`.
        sigma: starting width of every blob. Default value: `0.05`.
        mass: starting total mass, spread evenly. Default value: `1.0`.
        seed: seed of the starting positions. Default value: `0`.
        rate: learning-rate multiplier of every blob parameter: each is stored divided by it, so
            an optimizer's step moves it `rate` times as far (a density beside a network that
            needs a smaller rate). Default value: `1.0`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> density = BlobDensity(count=5, image_size=16, extent=1.0)
    >>> tuple(density(np.eye(3, dtype="float32")[None]).shape)
    (1, 16, 16)
    >>> density.count_params()  # 5 x (3 + 1 + 1)
    25
    """

    def __init__(
        self,
        count: int,
        image_size: int,
        extent: float,
        radius: float = 0.25,
        sigma: float = 0.05,
        mass: float = 1.0,
        seed: int = 0,
        rate: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("count", count), ("image_size", image_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"BlobDensity: `{name}` must be a positive integer, got {value!r}.")
        positive = (("extent", extent), ("radius", radius), ("sigma", sigma), ("mass", mass), ("rate", rate))
        for name, value in positive:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"BlobDensity: `{name}` must be a positive number, got {value!r}.")
        self.count, self.image_size, self.extent = int(count), int(image_size), float(extent)
        self.radius, self.sigma, self.mass, self.seed = float(radius), float(sigma), float(mass), int(seed)
        self.rate = float(rate)

    def build(self, rotations_shape, translations_shape=None):
        start = np.random.default_rng(self.seed).normal(0.0, self.radius, (self.count, 3))
        self.centers = self.add_weight(
            name="centers", shape=(self.count, 3), initializer=keras.initializers.Constant(start / self.rate)
        )
        self.log_weights = self.add_weight(
            name="log_weights",
            shape=(self.count,),
            initializer=keras.initializers.Constant(math.log(self.mass / self.count) / self.rate),
        )
        self.log_sigmas = self.add_weight(
            name="log_sigmas",
            shape=(self.count,),
            initializer=keras.initializers.Constant(math.log(self.sigma) / self.rate),
        )

    def blobs(self):
        """`(centers [N, 3], masses [N], widths [N])` as float32 tensors."""
        centers, log_weights, log_sigmas = (
            self.rate * tf.cast(v, "float32") for v in (self.centers, self.log_weights, self.log_sigmas)
        )
        return centers, tf.exp(log_weights), tf.exp(log_sigmas)

    def call(self, rotations, translations=None):
        images = render_shadows(
            self.blobs(), tf.cast(rotations, "float32"), self.image_size, self.extent, translations
        )
        return tf.cast(images, self.compute_dtype)

    def set_blobs(self, centers, masses, widths) -> None:
        """Set the density to these blobs (e.g. a known sample)."""
        for variable, value in zip(
            (self.centers, self.log_weights, self.log_sigmas),
            (np.asarray(centers), np.log(masses), np.log(np.broadcast_to(widths, (self.count,)))),
            strict=True,
        ):
            variable.assign(np.asarray(value, np.float32) / self.rate)

    def sample(self) -> BlobSample:
        """The density as it stands, for `toolkit.data.render.render_volume` or a map."""
        return BlobSample(*(np.asarray(v.numpy(), np.float64) for v in self.blobs()))

    def as_map(self) -> np.ndarray:
        """The density on the shadows' grid, float32 [image_size, image_size, image_size] (z, y, x)."""
        return render_volume(self.sample(), self.image_size, self.extent)

    def compute_output_shape(self, rotations_shape, translations_shape=None):
        return (rotations_shape[0], self.image_size, self.image_size)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "count": self.count,
                "image_size": self.image_size,
                "extent": self.extent,
                "radius": self.radius,
                "sigma": self.sigma,
                "mass": self.mass,
                "seed": self.seed,
                "rate": self.rate,
            }
        )
        return config


def flip_in_plane(rotations):
    """Each pose turned 180 degrees about the beam: `diag(-1, -1, 1) R`, its shadow turned in plane."""
    return tf.linalg.matmul(tf.cast(IN_PLANE_FLIP, rotations.dtype), rotations)


def symmetric_squared_error(render, rotations, images, translations=None):
    """Per example, the smaller summed squared error of the shadow at R and at R flipped in plane.

    cryoAI's symmetric loss: an encoder that confuses a shadow with its 180-degree turn is not
    punished for it, so it is not pulled halfway between the two. The flip of a flip is the pose
    itself, so the loss is the same for R and for `flip_in_plane(R)`.

    Args:
        render: maps `(rotations, translations)` to shadows `[batch, H, W]` (e.g. a `BlobDensity`).
        rotations: `[batch, 3, 3]`.
        images: `[batch, H, W]` (a trailing channel axis of 1 is dropped).
        translations: in-plane shifts `[batch, 2]` or `None`; a flip turns them too.

    Returns:
        `(errors [batch], chosen [batch, 3, 3])`: the smaller error and the pose that gave it.
    """
    images = tf.cast(images, "float32")
    if images.shape.rank == 4:
        images = images[..., 0]
    flipped = flip_in_plane(rotations)
    turned = None if translations is None else -translations
    errors = [
        tf.reduce_sum(tf.square(tf.cast(render(r, t), "float32") - images), axis=(1, 2))
        for r, t in ((rotations, translations), (flipped, turned))
    ]
    keep = errors[0] <= errors[1]
    chosen = tf.where(keep[:, None, None], rotations, flipped)
    return tf.minimum(errors[0], errors[1]), chosen
