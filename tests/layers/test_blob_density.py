"""BlobDensity and the symmetric loss against hand-computed shadows."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.data.objects import letter_f
from toolkit.data.render import pixel_centers, render_shadows, render_volume
from toolkit.layers import BlobDensity
from toolkit.layers.blob_density import flip_in_plane, symmetric_squared_error


def rotations(count: int, seed: int) -> np.ndarray:
    return Rotation.random(count, random_state=seed).as_matrix().astype("float32")


def test_one_blob_casts_the_analytic_gaussian():
    """The projection of N3(c, s^2 I) turned by R is w / (2 pi s^2) exp(-|p - (R c)_xy|^2 / (2 s^2))."""
    density = BlobDensity(count=1, image_size=16, extent=1.0, radius=0.2, sigma=0.15, mass=2.0, seed=3)
    pose = rotations(1, 0)
    image = density(pose).numpy()[0]
    center = (pose[0] @ density.centers.numpy()[0])[:2]
    grid = pixel_centers(16, 1.0)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    expected = (
        2.0 / (2 * np.pi * 0.15**2) * np.exp(-((x - center[0]) ** 2 + (y - center[1]) ** 2) / (2 * 0.15**2))
    )
    np.testing.assert_allclose(image, expected, rtol=1e-4, atol=1e-4)


def test_the_flip_turns_the_shadow_half_a_turn():
    """Pixel i (from N // 2) goes to -i: index (N - i) mod N, the edge row and column wrapping round."""
    density = BlobDensity(count=8, image_size=16, extent=1.0, radius=0.2, sigma=0.08)
    pose = rotations(3, 1)
    shadow, flipped = density(pose).numpy(), density(flip_in_plane(tf.constant(pose))).numpy()
    turned = np.roll(shadow[:, ::-1, ::-1], 1, axis=(1, 2))
    np.testing.assert_allclose(flipped, turned, atol=1e-5)


def test_the_symmetric_loss_is_invariant_to_the_flip_it_names():
    density = BlobDensity(count=8, image_size=16, extent=1.0, radius=0.2, sigma=0.08)
    pose, target = tf.constant(rotations(6, 2)), density(tf.constant(rotations(6, 3)))
    shifts = tf.constant(np.random.default_rng(0).normal(0, 0.05, (6, 2)).astype("float32"))
    errors, chosen = symmetric_squared_error(density, pose, target, shifts)
    again, _ = symmetric_squared_error(density, flip_in_plane(pose), target, -shifts)
    np.testing.assert_allclose(errors.numpy(), again.numpy(), rtol=1e-6)
    plain = tf.reduce_sum(tf.square(density(pose, shifts) - target), axis=(1, 2))
    flipped = tf.reduce_sum(tf.square(density(flip_in_plane(pose), -shifts) - target), axis=(1, 2))
    np.testing.assert_allclose(errors.numpy(), np.minimum(plain, flipped), rtol=1e-6)
    picked = np.where((plain <= flipped).numpy()[:, None, None], pose.numpy(), flip_in_plane(pose).numpy())
    np.testing.assert_array_equal(chosen.numpy(), picked)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_with_known_poses_a_few_hundred_steps_learn_the_f():
    f = letter_f(size=1.0, thickness=0.25, blob_sigma=0.08)
    poses = rotations(256, 4)
    shadows = render_shadows(f, poses, 24, 0.75).numpy()
    density = BlobDensity(count=40, image_size=24, extent=0.75, radius=0.25, sigma=0.1)
    density.build((None, 3, 3))
    truth = render_volume(f, 24, 0.75)
    before = correlation(render_volume(density.sample(), 24, 0.75), truth)
    optimizer = keras.optimizers.Adam(0.02)

    @tf.function
    def step(r, x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(density(r) - x))
        optimizer.apply(tape.gradient(loss, density.trainable_variables), density.trainable_variables)
        return loss

    rng = np.random.default_rng(0)
    losses = [float(step(poses[i], shadows[i])) for i in (rng.integers(0, 256, 32) for _ in range(300))]
    after = correlation(render_volume(density.sample(), 24, 0.75), truth)
    assert np.mean(losses[-20:]) < 0.05 * np.mean(losses[:5])
    assert after > 0.95 > before


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match=r"BlobDensity: `extent` must be a positive number, got -1"):
        BlobDensity(count=3, image_size=8, extent=-1)
    config = BlobDensity(count=3, image_size=8, extent=1.0, seed=5).get_config()
    assert BlobDensity.from_config(config).get_config() == config
