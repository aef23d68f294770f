"""AbInitio: a density and the poses of its shadows, learned together from unlabeled images.

Each training step searches every image's pose against the current density, then moves the
density toward the images at those poses, as stochastic-gradient ab initio methods do:

1. **Frequency marching.** Training runs through `stages`, each a comparison at one resolution:
   both sides are blurred by a Gaussian of `blur` pixels and sampled on a grid `downsample`
   times coarser. The blob density renders its blurred shadows exactly (a blob of width s
   blurred by b is a blob of width sqrt(s^2 + b^2)), and an image is blurred by two matrix
   products, so a coarse stage costs a fraction of a full-size one.
2. **Search.** The density's shadows at every rotation of an equal-volume SO(3) grid
   (`toolkit.geometry.grids`, level 2: 4,608 rotations about 15 degrees apart) are scored
   against the images in one matrix product, then the `candidates` best rotations are refined
   locally on a 3x3x3 stencil of small turns, `local_rounds` times, each stencil half as wide,
   and the best of them is kept.
3. **Assignment.** A stage with `temperature` > 0 weighs every grid rotation by a softmax of its
   error (soft, the way expectation-maximization weighs poses), which keeps the early density from
   committing to the poses of a wrong shape; a stage with 0 takes the searched pose alone (hard).
4. **Scale-free error.** Each image is compared with the density's shadow at its best scale
   (least squares, `|x|^2 - <x, p>^2 / |p|^2`), so neither the density's mass nor the images'
   normalization has to be learned first.

An image encoder with an orientation head learns, beside the density, to predict the pose that
the search found (never a true pose): it amortizes the search, and the exported `orientation`
signature is that encoder. Poses and density are defined up to one global rotation and a
mirror, so they are scored after a global alignment (`toolkit.geometry.alignment`).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from toolkit.data.render import pixel_centers, render_shadows
from toolkit.geometry import grids

EXTENT = 1.0  # the density lives in box units: the images span [-1, 1]


def blur_matrix(image_size: int, downsample: int, blur: float) -> np.ndarray:
    """[n, S]: image rows (or columns) blurred by `blur` pixels and read at n = S / downsample points.

    `W X W^T` is the image convolved with that Gaussian and read at the coarse grid's centres, which
    share pixel S // 2 as the origin.
    """
    if not blur > 0 or image_size % downsample:
        raise ValueError(
            f"AbInitio: each stage needs `blur` > 0 and a `downsample` dividing the image size "
            f"{image_size}, got blur {blur} and downsample {downsample}."
        )
    fine = pixel_centers(image_size, EXTENT)
    coarse = pixel_centers(image_size // downsample, EXTENT)
    width = blur * (fine[1] - fine[0])
    weights = np.exp(-0.5 * np.square((coarse[:, None] - fine[None, :]) / width))
    return (weights * (fine[1] - fine[0]) / (math.sqrt(2 * math.pi) * width)).astype(np.float32)


def stencil(step_degrees: float) -> np.ndarray:
    """27 small turns [27, 3, 3]: axis-angle vectors on a 3x3x3 cube of `step_degrees` spacing."""
    from scipy.spatial.transform import Rotation

    line = np.radians(step_degrees) * np.array([-1.0, 0.0, 1.0])
    vectors = np.stack(np.meshgrid(line, line, line, indexing="ij"), -1).reshape(-1, 3)
    return Rotation.from_rotvec(vectors).as_matrix().astype(np.float32)


def residuals(images, shadows):
    """`|x|^2 - <x, p>^2 / |p|^2` [B, M]: each image [B, K] against each shadow [M, K] at its best scale."""
    dot = tf.matmul(images, shadows, transpose_b=True)
    own = tf.reduce_sum(tf.square(shadows), -1)
    return tf.reduce_sum(tf.square(images), -1, keepdims=True) - tf.square(dot) / (own[None, :] + 1e-12)


def paired_residuals(images, shadows):
    """The same, pairwise: images [B, K] against shadows [B, J, K] -> [B, J]."""
    dot = tf.einsum("bk,bjk->bj", images, shadows)
    own = tf.reduce_sum(tf.square(shadows), -1)
    return tf.reduce_sum(tf.square(images), -1, keepdims=True) - tf.square(dot) / (own + 1e-12)


@keras.saving.register_keras_serializable(package="toolkit")
class AbInitio(keras.Model):
    """A blob density, its poses found by search, and an encoder that learns those poses.

    Args:
        density: a `BlobDensity` in box units (extent 1) with the images' size.
        encoder: maps images to features, e.g. `RotationConditionedEncoder`.
        head: maps features to rotation matrices, e.g. `OrientationHead`.
        image_size: pixels per side of the images.
        stages: each a dict of `downsample`, `blur` (pixels), `temperature` and `until`
            (the fraction of the training steps at which the stage ends); they run in the order
            of their `until`, the last to the end.
        total_steps: the run's optimizer steps, which the stages divide.
        search_level: level of the SO(3) grid searched. Default value: `2`.
        local_rounds: local refinements of the best grid rotations, on stencils of half the grid's
            step, then each half the last. Default value: `4`.
        candidates: grid rotations refined per image. Default value: `4`.
        orientation_weight: weight of the encoder's term. Default value: `1.0`.
        **kwargs: standard `keras.Model` arguments.

    Example:

    >>> from toolkit.layers import BlobDensity, OrientationHead, RotationConditionedEncoder
    >>> model = AbInitio(
    ...     BlobDensity(count=5, image_size=8, extent=EXTENT),
    ...     RotationConditionedEncoder(filters=(4,), units=8),
    ...     OrientationHead((8,)),
    ...     image_size=8,
    ...     stages=[{"downsample": 2, "blur": 1.0, "temperature": 0.0, "until": 1.0}],
    ...     total_steps=10,
    ...     search_level=1,
    ... )
    >>> terms = model.loss_terms({"images": np.ones((3, 8, 8, 1), "float32")})
    >>> tuple(terms["poses"].shape), tuple(terms["reconstruction"].shape)
    ((3, 3, 3), (3,))
    """

    def __init__(
        self,
        density,
        encoder,
        head,
        image_size: int,
        stages,
        total_steps: int,
        search_level: int = 2,
        local_rounds: int = 4,
        candidates: int = 4,
        orientation_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.density, self.encoder, self.head = density, encoder, head
        if not density.built:  # the model's call reaches the encoder only
            density.build((None, 3, 3))
        self.image_size, self.total_steps = int(image_size), int(total_steps)
        self.stages = sorted((dict(stage) for stage in stages), key=lambda stage: stage["until"])
        self.search_level, self.local_rounds = int(search_level), int(local_rounds)
        self.candidates = int(candidates)
        self.orientation_weight = float(orientation_weight)
        self.grid = tf.constant(grids.cell_rotations(search_level, *grids.full_grid(search_level)))
        first = grids.step_degrees(search_level) / 2
        self.stencils = [tf.constant(stencil(first / 2**r)) for r in range(self.local_rounds)]
        self.blurs = [
            tf.constant(blur_matrix(self.image_size, s["downsample"], s["blur"])) for s in self.stages
        ]
        self.boundaries = tf.constant([s["until"] * total_steps for s in self.stages[:-1]], tf.float32)

    @property
    def term_weights(self) -> dict:
        return {"reconstruction": 1.0, "orientation": self.orientation_weight}

    def call(self, inputs, training=None):
        """The encoder's poses [B, 3, 3] of images [B, S, S, 1]."""
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        return self.head(self.encoder(images))

    def stage_index(self, step):
        """The stage of a training step (0-based); the last stage when `step` is None."""
        if step is None:
            return tf.constant(len(self.stages) - 1, tf.int32)
        return tf.reduce_sum(tf.cast(tf.cast(step, tf.float32) >= self.boundaries, tf.int32))

    def shadows(self, rotations, stage: int):
        """The density's shadows, flattened [N, n * n], at a stage's blur and coarse grid."""
        spec = self.stages[stage]
        centers, masses, widths = self.density.blobs()
        blurred = tf.sqrt(tf.square(widths) + (spec["blur"] * 2.0 * EXTENT / self.image_size) ** 2)
        size = self.image_size // spec["downsample"]
        images = render_shadows((centers, masses, blurred), rotations, size, EXTENT)
        return tf.reshape(images, [tf.shape(images)[0], size * size])

    def coarse(self, images, stage: int):
        """Images [B, S, S] blurred and sampled on the stage's grid, flattened [B, n * n]."""
        blur = self.blurs[stage]
        low = tf.einsum("ij,bjk,lk->bil", blur, images, blur)
        return tf.reshape(low, [tf.shape(images)[0], -1])

    def search(self, images, stage: int):
        """Each coarse image's [B, K] best pose [B, 3, 3], without gradient.

        The `candidates` best grid rotations are each refined on the stencils, and the best of
        them is kept: a shadow's few near-equal grid rotations (its twins, for a thin sample)
        each get their own local search.
        """
        count = tf.shape(images)[0]
        grid_errors = residuals(images, self.shadows(self.grid, stage))
        top = tf.math.top_k(-grid_errors, k=self.candidates).indices
        poses = tf.gather(self.grid, top)  # [B, C, 3, 3]
        for turns in self.stencils:
            candidates = tf.einsum("jik,bckl->bcjil", turns, poses)  # [B, C, 27, 3, 3]
            shadows = self.shadows(tf.reshape(candidates, [-1, 3, 3]), stage)
            shadows = tf.reshape(shadows, [count, -1, tf.shape(shadows)[-1]])
            errors = tf.reshape(paired_residuals(images, shadows), [count, self.candidates, 27])
            poses = tf.gather(candidates, tf.argmin(errors, axis=2), batch_dims=2)
            best = tf.reduce_min(errors, axis=2)
        if not self.stencils:
            best = tf.gather(grid_errors, top, batch_dims=1)
        poses = tf.gather(poses, tf.argmin(best, axis=1), batch_dims=1)
        return tf.stop_gradient(poses)

    def stage_terms(self, images, stage: int):
        """(reconstruction [B], searched poses [B, 3, 3]) at one stage."""
        low = self.coarse(images, stage)
        temperature = self.stages[stage]["temperature"]
        if temperature > 0:
            errors = residuals(low, self.shadows(self.grid, stage))
            best = tf.reduce_min(errors, axis=1, keepdims=True)
            scale = temperature * tf.reduce_mean(best) + 1e-12
            weights = tf.stop_gradient(tf.nn.softmax(-(errors - best) / scale, axis=1))
            poses = tf.stop_gradient(tf.gather(self.grid, tf.argmin(errors, axis=1)))
            return tf.reduce_sum(weights * errors, axis=1), poses
        poses = self.search(tf.stop_gradient(low), stage)
        return paired_residuals(low, self.shadows(poses, stage)[:, None, :])[:, 0], poses

    def loss_terms(self, inputs, training=None) -> dict:
        """Per example: the density's scale-free error at its pose and the encoder's distance to that pose.

        `inputs["step"]` (one value per example, all equal) is the training step, which picks the
        stage; without it the last stage is used.
        """
        size = self.image_size
        images = tf.reshape(tf.cast(inputs["images"], "float32"), [-1, size, size])  # one view per example
        branches = [lambda s=s: self.stage_terms(images, s) for s in range(len(self.stages))]
        step = inputs["step"][0] if "step" in inputs else None
        reconstruction, poses = tf.switch_case(self.stage_index(step), branches)
        predicted = ops.reshape(ops.cast(self(inputs, training=training), "float32"), (-1, 3, 3))
        orientation = ops.sum(ops.square(predicted - poses), axis=(-2, -1))
        return {"reconstruction": reconstruction, "orientation": orientation, "poses": poses}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The weighted mean of the loss terms, for users' `model.fit` on dicts of images (and steps)."""
        terms = self.loss_terms(x, training=training)
        return ops.sum([weight * ops.mean(terms[name]) for name, weight in self.term_weights.items()])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **{
                    k: keras.saving.serialize_keras_object(getattr(self, k))
                    for k in ("density", "encoder", "head")
                },
                "image_size": self.image_size,
                "stages": self.stages,
                "total_steps": self.total_steps,
                "search_level": self.search_level,
                "local_rounds": self.local_rounds,
                "candidates": self.candidates,
                "orientation_weight": self.orientation_weight,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("density", "encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
