"""AbInitio: the blurred comparison against analytic Gaussians, the search against known poses, the
scale-free residual against numpy's least squares, and learning a density from unlabeled shadows."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.data.objects import letter_f
from toolkit.data.render import pixel_centers, render_shadows, render_volume
from toolkit.geometry.alignment import align_poses
from toolkit.layers import BlobDensity, OrientationHead, RotationConditionedEncoder
from toolkit.models.ab_initio import EXTENT, AbInitio, blur_matrix, paired_residuals, residuals, stencil
from toolkit.reconstruction.align import align_map

SIZE = 32


def f_in_box_units():
    """The F scaled into box units (its sample spans +-0.75, the box +-1), as an image grid sees it."""
    f = letter_f(size=1.0, thickness=0.25, blob_sigma=0.06)
    scale = EXTENT / 0.75
    return f.centers * scale, np.asarray(f.weights), np.full(len(f.centers), f.sigma * scale)


def model(stages, count=40, local_rounds=4, seed=0, total_steps=100):
    keras.utils.set_random_seed(seed)
    return AbInitio(
        density=BlobDensity(count=count, image_size=SIZE, extent=EXTENT, radius=0.07, sigma=0.1, seed=seed),
        encoder=RotationConditionedEncoder(filters=(4,), units=8),
        head=OrientationHead((8,)),
        image_size=SIZE,
        stages=stages,
        total_steps=total_steps,
        local_rounds=local_rounds,
    )


def test_the_blur_matrix_turns_a_gaussian_into_the_wider_gaussian_on_the_coarse_grid():
    # A 2D Gaussian of width s convolved with one of width b is the Gaussian of width sqrt(s^2 + b^2),
    # of the same mass: written out here on the coarse grid's centres.
    s, blur_pixels, downsample = 0.08, 2.0, 2
    fine = render_shadows(([[0.1, -0.05, 0.0]], [1.0], s), np.eye(3, dtype="float32")[None], SIZE, EXTENT)
    matrix = blur_matrix(SIZE, downsample, blur_pixels)
    coarse = matrix @ fine.numpy()[0] @ matrix.T
    width = math.hypot(s, blur_pixels * 2 * EXTENT / SIZE)
    x = pixel_centers(SIZE // downsample, EXTENT)
    expected = np.exp(-0.5 * ((x[None, :] - 0.1) ** 2 + (x[:, None] + 0.05) ** 2) / width**2)
    np.testing.assert_allclose(coarse, expected / (2 * math.pi * width**2), atol=2e-3 * expected.max())


def test_the_scale_free_residual_is_numpys_least_squares_residual():
    rng = np.random.default_rng(0)
    images, shadows = rng.normal(size=(5, 30)), rng.normal(size=(7, 30))
    expected = np.array([[np.linalg.lstsq(p[:, None], x, rcond=None)[1][0] for p in shadows] for x in images])
    found = residuals(images.astype("float32"), shadows.astype("float32"))
    np.testing.assert_allclose(found, expected, rtol=1e-4)
    paired = paired_residuals(images.astype("float32"), np.stack([shadows] * 5).astype("float32"))
    np.testing.assert_allclose(paired, expected, rtol=1e-4)


def test_the_stencil_turns_by_the_grid_of_small_angles():
    angles = np.degrees(Rotation.from_matrix(stencil(2.0)).magnitude())
    nonzero = np.sort(np.unique(np.round(angles, 6)))
    np.testing.assert_allclose(nonzero, [0.0, 2.0, 2.0 * math.sqrt(2), 2.0 * math.sqrt(3)], rtol=1e-5)
    assert len(angles) == 27


def test_the_search_finds_true_poses_on_the_true_density():
    stages = [{"downsample": 1, "blur": 0.5, "temperature": 0.0, "until": 1.0}]
    net = model(stages, count=len(f_in_box_units()[0]))
    centers, weights, sigmas = f_in_box_units()
    net.density.set_blobs(centers, weights, sigmas)
    true = Rotation.random(24, rng=1).as_matrix().astype("float32")
    images = render_shadows((centers, weights, sigmas), true, SIZE, EXTENT)
    poses = net.search(net.coarse(images, 0), 0)
    errors = np.degrees((Rotation.from_matrix(poses.numpy()).inv() * Rotation.from_matrix(true)).magnitude())
    # Level 2 (about 15 degrees), then stencils of 5, 2.5 and 1.25 degrees.
    assert np.median(errors) < 2.0, errors


def test_a_few_hundred_steps_learn_the_f_from_shadows_without_poses():
    stages = [
        {"downsample": 2, "blur": 3.0, "temperature": 0.3, "until": 0.3},
        {"downsample": 2, "blur": 2.0, "temperature": 0.0, "until": 0.7},
        {"downsample": 1, "blur": 1.0, "temperature": 0.0, "until": 1.0},
    ]
    steps = 300
    net = model(stages, count=60, total_steps=steps)
    centers, weights, sigmas = f_in_box_units()
    true = Rotation.random(2000, rng=2).as_matrix().astype("float32")
    images = render_shadows((centers, weights, sigmas), true, SIZE, EXTENT).numpy()[..., None]
    optimizer = keras.optimizers.Adam(0.01)
    start = net.density.sample()
    variables = net.density.trainable_variables

    @tf.function
    def step(batch, index):
        inputs = {"images": batch, "step": tf.fill([len(batch)], index)}
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(net.loss_terms(inputs, training=True)["reconstruction"])
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    rng = np.random.default_rng(0)
    losses = [
        float(step(images[rng.integers(0, len(images), 64)], tf.constant(float(i)))) for i in range(steps)
    ]
    # Each stage compares at its own resolution, so the loss falls within a stage, not across them.
    assert np.mean(losses[:10]) > 10 * np.mean(losses[80:90])
    assert np.mean(losses[210:220]) > 1.5 * np.mean(losses[-10:])

    truth = render_volume(type(start)(centers, weights, sigmas), SIZE, EXTENT)
    learned = align_map(render_volume(net.density.sample(), SIZE, EXTENT), truth, search_box=16)
    at_random = align_map(render_volume(start, SIZE, EXTENT), truth, search_box=16)
    assert learned.correlation > 0.9 and learned.correlation > at_random.correlation + 0.2

    held_out = Rotation.random(64, rng=3).as_matrix().astype("float32")
    shadows = render_shadows((centers, weights, sigmas), held_out, SIZE, EXTENT)
    poses = net.search(net.coarse(shadows, 2), 2)
    aligned = align_poses(poses.numpy(), held_out)
    assert np.median(aligned["errors_deg"]) < 5.0


@pytest.mark.parametrize("stages", [[{"downsample": 1, "blur": 1.0, "temperature": 0.0, "until": 1.0}]])
def test_the_model_round_trips_its_config(stages):
    net = model(stages)
    again = AbInitio.from_config(net.get_config())
    assert again.stages == net.stages and again.image_size == SIZE and again.density.count == 40


@pytest.mark.parametrize("stage", [{"downsample": 2, "blur": 0.0}, {"downsample": 5, "blur": 1.0}])
def test_a_stage_without_blur_or_with_a_downsample_not_dividing_the_size_is_refused(stage):
    with pytest.raises(ValueError, match=f"got blur {stage['blur']} and downsample {stage['downsample']}"):
        model([{**stage, "temperature": 0.0, "until": 1.0}])
