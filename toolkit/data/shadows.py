"""Seeded tf.data pipelines of shadow sequences: T shadows of one sample at T orientations.

Every batch is a pure function of (seed, stream, batch index): the same recipe gives the same
data on every run, a resumed run continues the same order, and the validation stream never
shares a random draw with the training stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from toolkit import geometry
from toolkit.data.ctf import apply_ctf, ctf_2d
from toolkit.data.map_sample import MapSample
from toolkit.data.objects import BlobSample
from toolkit.data.render import project_sample
from toolkit.geometry.representations import orientation_features

TRAIN_STREAM, VALIDATION_STREAM, SCALE_STREAM, SIMULATE_STREAM = 1, 2, 3, 4
CTF_DRAW, SHIFT_DRAW = 11, 12  # folded into a batch's seed for its defocus and shift draws


def batch_seed(seed: int, stream: int, index) -> tf.Tensor:
    """A stateless seed pair for one batch of one stream."""
    base = tf.constant([seed, stream], tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))


@dataclass(frozen=True)
class OrientationSampler:
    """Draws rotation matrices: Haar-uniform, or Euler angles uniform within ranges (degrees)."""

    kind: str = "haar"
    convention: str = "ZYZ"
    ranges: tuple = ((0.0, 360.0), (0.0, 180.0), (0.0, 360.0))

    def __call__(self, count, seed) -> tf.Tensor:
        if self.kind == "haar":
            q = tf.random.stateless_normal([count, 4], seed=seed)
            return geometry.quaternion_to_matrix(q)
        low = tf.constant([r[0] for r in self.ranges], tf.float32)
        high = tf.constant([r[1] for r in self.ranges], tf.float32)
        angles = low + (high - low) * tf.random.stateless_uniform([count, 3], seed=seed)
        return geometry.euler_to_matrix(angles, self.convention, degrees=True)


@dataclass(frozen=True)
class CTFDraws:
    """A microscope whose defocus varies from shadow to shadow, as between cryo-EM micrographs.

    The mean defocus is uniform in `[defocus_min, defocus_max]`, the astigmatism
    `defocus_u - defocus_v` uniform in `[0, astigmatism]` at a uniform azimuth; all lengths in
    Angstrom, `voltage` in kV, `spherical_aberration` in mm (RELION's units).
    """

    defocus_min: float = 5000.0
    defocus_max: float = 10000.0
    astigmatism: float = 0.0
    voltage: float = 300.0
    spherical_aberration: float = 2.7
    amplitude_contrast: float = 0.1
    b_factor: float = 0.0

    def defocus(self, count, seed) -> tf.Tensor:
        """`[count, 3]`: defocus_u, defocus_v (Angstrom) and the azimuth of u (degrees)."""
        draws = tf.random.stateless_uniform([count, 3], seed=seed)
        mean = self.defocus_min + (self.defocus_max - self.defocus_min) * draws[:, 0]
        half = 0.5 * self.astigmatism * draws[:, 1]
        return tf.stack([mean + half, mean - half, 180.0 * draws[:, 2]], axis=-1)

    def transfer(self, defocus, image_size: int, pixel_size: float) -> tf.Tensor:
        """The CTF `[N, S, S]` of each row of `defocus` on the unshifted FFT grid."""
        return ctf_2d(
            image_size,
            pixel_size,
            defocus[:, 0],
            defocus[:, 1],
            defocus[:, 2],
            voltage=self.voltage,
            spherical_aberration=self.spherical_aberration,
            amplitude_contrast=self.amplitude_contrast,
            b_factor=self.b_factor,
        )

    def apply(self, images, defocus, pixel_size: float) -> tf.Tensor:
        """Images `[N, S, S]` seen through the CTF of each row of `defocus`."""
        return apply_ctf(images, self.transfer(defocus, images.shape[-1], pixel_size))


@dataclass(frozen=True)
class ShadowData:
    """Everything needed to draw shadow sequences of one sample.

    Intensities are divided by `intensity_scale` (the largest pixel over a fixed set of
    views), so shadows lie roughly in [0, 1] whatever the sample's units.
    """

    sample: BlobSample | MapSample
    image_size: int
    extent: float
    sequence_length: int
    orientations: OrientationSampler
    representation: str = "euler"
    convention: str = "ZYZ"
    snr: float | None = None
    seed: int = 0
    intensity_scale: float = 1.0
    pixel_size: float = 2.0
    ctf: CTFDraws | None = None
    shift: float = 0.0

    @classmethod
    def create(cls, **kwargs) -> ShadowData:
        """Build the data description and measure its intensity scale."""
        data = cls(**kwargs)
        views = geometry.quaternion_to_matrix(
            tf.random.stateless_normal([1024, 4], seed=batch_seed(data.seed, SCALE_STREAM, 0))
        )
        peak = max(  # in chunks: an atomic model has thousands of blobs
            float(tf.reduce_max(project_sample(data.sample, chunk, data.image_size, data.extent)))
            for chunk in tf.split(views, 8)
        )
        return cls(**{**kwargs, "intensity_scale": peak})

    def batch(self, size: int, stream: int, index) -> dict:
        """One batch: images `[B, T, S, S, 1]`, condition `[B, T, K]`, rotations `[B, T, 3, 3]`.

        With a CTF the batch also holds `defocus` `[B, T, 3]` (see `CTFDraws.defocus`) and the
        CTF itself, `ctf` `[B, T, S, S]` on the unshifted FFT grid; the noise is added after the
        CTF, as a detector adds it. With a `shift` it holds `shifts` `[B, T, 2]`: where each
        particle's centre lies, (x, y) in pixels from pixel S // 2.
        """
        seed = batch_seed(self.seed, stream, index)
        count = size * self.sequence_length
        shape = [size, self.sequence_length]
        rotations = self.orientations(count, seed)
        extra, translations = {}, None
        if self.shift > 0:
            shifts = self.shift * tf.random.stateless_normal(
                [count, 2], seed=tf.random.experimental.stateless_fold_in(seed, SHIFT_DRAW)
            )
            translations = shifts * (2.0 * self.extent / self.image_size)  # pixels to sample units
            extra["shifts"] = tf.reshape(shifts, shape + [2])
        images = project_sample(self.sample, rotations, self.image_size, self.extent, translations)
        images = images / self.intensity_scale
        if self.ctf is not None:
            defocus = self.ctf.defocus(count, tf.random.experimental.stateless_fold_in(seed, CTF_DRAW))
            transfer = self.ctf.transfer(defocus, self.image_size, self.pixel_size)
            images = apply_ctf(images, transfer)
            extra["defocus"] = tf.reshape(defocus, shape + [3])
            extra["ctf"] = tf.reshape(transfer, shape + [self.image_size, self.image_size])
        if self.snr is not None:
            # sigma = std(signal) / sqrt(SNR), per image, as cryo-EM benchmarks define it.
            std = tf.math.reduce_std(images, axis=[1, 2], keepdims=True)
            noise = tf.random.stateless_normal(tf.shape(images), seed=tf.reverse(seed, [0]))
            images = images + noise * std / np.sqrt(self.snr)
        rotations = tf.reshape(rotations, shape + [3, 3])
        return {
            "images": tf.reshape(images, shape + [self.image_size, self.image_size, 1]),
            "condition": orientation_features(rotations, self.representation, self.convention),
            "rotations": rotations,
            **extra,
        }

    def train_dataset(self, batch_size: int, start_batch: int = 0, num_batches: int | None = None):
        """Training batches from `start_batch` on, rendered on the fly inside tf.data."""
        stop = None if num_batches is None else start_batch + num_batches
        indices = tf.data.Dataset.range(start_batch, stop if stop is not None else np.iinfo(np.int64).max)
        dataset = indices.map(
            lambda i: self.batch(batch_size, TRAIN_STREAM, i),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return dataset.prefetch(tf.data.AUTOTUNE)

    def validation_set(self, count: int, batch_size: int = 256) -> dict:
        """The fixed validation sequences as numpy arrays (a separate random stream)."""
        return self.draw(count, VALIDATION_STREAM, batch_size)

    def draw(self, count: int, stream: int, batch_size: int = 256) -> dict:
        """`count` sequences of one random stream as numpy arrays, drawn `batch_size` at a time."""
        parts = [
            self.batch(min(batch_size, count - start), stream, start // batch_size)
            for start in range(0, count, batch_size)
        ]
        return {key: np.concatenate([p[key].numpy() for p in parts]) for key in parts[0]}
