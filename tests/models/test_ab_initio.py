"""AbInitio: the blurred comparison against analytic Gaussians, the search against known poses, the
scale-free residual against numpy's least squares, and learning a density from unlabeled shadows."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.data.ctf import apply_ctf, ctf_2d
from toolkit.data.objects import BlobSample, letter_f
from toolkit.data.render import pixel_centers, render_shadows, render_volume
from toolkit.geometry.alignment import align_poses
from toolkit.layers import BlobDensity, OrientationHead, RotationConditionedEncoder, VoxelDensity
from toolkit.models.ab_initio import (
    EXTENT,
    AbInitio,
    _parseval,
    blur_matrix,
    cropped_spectra,
    cross_matrix,
    ctf_weights,
    paired_residuals,
    residuals,
    shift_spectra,
    spectra,
    stencil,
    turned,
)
from toolkit.reconstruction.align import align_map

SIZE = 32


def f_in_box_units():
    """The F scaled into box units (its sample spans +-0.75, the box +-1), as an image grid sees it."""
    f = letter_f(size=1.0, thickness=0.25, blob_sigma=0.06)
    scale = EXTENT / 0.75
    return f.centers * scale, np.asarray(f.weights), np.full(len(f.centers), f.sigma * scale)


def model(stages, count=40, local_rounds=4, seed=0, total_steps=100, max_shift=0.0, candidates=4):
    keras.utils.set_random_seed(seed)
    return AbInitio(
        density=BlobDensity(count=count, image_size=SIZE, extent=EXTENT, radius=0.07, sigma=0.1, seed=seed),
        encoder=RotationConditionedEncoder(filters=(4,), units=8),
        head=OrientationHead((8,)),
        image_size=SIZE,
        stages=stages,
        total_steps=total_steps,
        local_rounds=local_rounds,
        max_shift=max_shift,
        candidates=candidates,
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
    paired = paired_residuals(images[:, None].astype("float32"), np.stack([shadows] * 5).astype("float32"))
    np.testing.assert_allclose(paired, expected, rtol=1e-4)


def test_the_fourier_residual_with_a_ctf_is_the_least_squares_residual_of_the_ctf_filtered_shadows():
    # The CTF applied in real space by a full complex FFT (apply_ctf), then numpy's least squares on
    # pixels, against the model's comparison of rfft coefficients weighted by the same CTF.
    rng = np.random.default_rng(4)
    images, shadows = rng.normal(size=(3, 16, 16)), rng.normal(size=(5, 16, 16))
    ctf = ctf_2d(16, 4.0, [9000.0, 12000.0, 15000.0], [8000.0, 11000.0, 15000.0], [30.0, 0.0, 75.0]).numpy()
    filtered = np.stack([apply_ctf(shadows, c).numpy() for c in ctf])  # [3, 5, 16, 16]
    expected = np.array(
        [
            [
                np.linalg.lstsq(filtered[b, m].reshape(-1, 1), images[b].ravel(), rcond=None)[1][0]
                for m in range(5)
            ]
            for b in range(3)
        ]
    )
    weights = ctf_weights(tf.constant(ctf), 16)
    found = residuals(spectra(images.astype("float32")), spectra(shadows.astype("float32")), weights)
    np.testing.assert_allclose(found, expected, rtol=1e-3)
    paired = paired_residuals(
        spectra(images.astype("float32"))[:, None], spectra(shadows.astype("float32")), weights[:, None]
    )
    np.testing.assert_allclose(paired, expected, rtol=1e-3)


def test_a_coarse_grids_ctf_weights_are_the_fine_ctf_at_the_same_frequencies():
    fine = ctf_2d(32, 2.0, 9000.0, 8000.0, 30.0)
    coarse = ctf_2d(16, 4.0, 9000.0, 8000.0, 30.0)  # the same field, pixels twice as large
    found = ctf_weights(fine[None], 16).numpy().reshape(16, 2, 9)
    # ctf_2d averages +k and -k on a grid's Nyquist row and column (astigmatism makes them differ),
    # where the coarse grid's -8 cycles are the fine grid's exact -8: compared inside them.
    expected = coarse.numpy()[:8, :8]
    np.testing.assert_allclose(found[:8, 0, :8], expected, atol=1e-5)
    np.testing.assert_allclose(found[:8, 1, :8], expected, atol=1e-5)
    np.testing.assert_allclose(found[9:, 0, :8], coarse.numpy()[9:, :8], atol=1e-5)


def test_a_subpixel_shift_of_the_spectra_is_scipys_fourier_shift():
    from scipy.ndimage import fourier_shift

    # Two pixels wide, so the Nyquist coefficients, which no subpixel shift keeps real, are negligible.
    blob = ([[0.05, -0.1, 0.0]], [1.0], 0.25)
    image = render_shadows(blob, np.eye(3, dtype="float32")[None], 16, EXTENT)[0]
    moved = np.real(np.fft.ifft2(fourier_shift(np.fft.fft2(image.numpy()), (0.7, -1.3))))  # (rows, columns)
    back = shift_spectra(spectra(moved[None].astype("float32")), tf.constant([[[-1.3, 0.7]]]), 16)[:, 0]
    np.testing.assert_allclose(back, spectra(image[None]), atol=2e-4 * float(tf.reduce_max(image)))


def test_the_search_finds_poses_and_shifts_through_a_ctf_on_the_true_density():
    stages = [{"downsample": 2, "blur": 1.0, "temperature": 0.0, "until": 1.0}]
    # A grid rotation is scored at whole-pixel shifts only, so more of them are refined.
    net = model(stages, count=len(f_in_box_units()[0]), max_shift=4.0, candidates=16)
    centers, weights, sigmas = f_in_box_units()
    net.density.set_blobs(centers, weights, sigmas)
    true = Rotation.random(24, rng=5).as_matrix().astype("float32")
    shifts = np.random.default_rng(5).uniform(-3, 3, size=(24, 2)).astype("float32")  # pixels
    images = render_shadows((centers, weights, sigmas), true, SIZE, EXTENT, shifts * 2 * EXTENT / SIZE)
    defocus = np.random.default_rng(6).uniform(6000, 9000, size=24)
    ctf = ctf_2d(SIZE, 4.0, defocus, defocus - 200, 20.0)
    terms = net.loss_terms({"images": apply_ctf(images, ctf)[..., None], "ctf": ctf})
    errors = np.degrees(
        (Rotation.from_matrix(terms["poses"].numpy()).inv() * Rotation.from_matrix(true)).magnitude()
    )
    assert np.median(errors) < 2.0, errors
    assert np.median(np.abs(terms["shifts"].numpy() - shifts)) < 0.25, terms["shifts"].numpy() - shifts
    # The same images compared without their CTF find worse poses: the CTF is used, not ignored.
    blind = net.loss_terms({"images": apply_ctf(images, ctf)[..., None]})
    blind_errors = np.degrees(
        (Rotation.from_matrix(blind["poses"].numpy()).inv() * Rotation.from_matrix(true)).magnitude()
    )
    assert np.median(blind_errors) > 2 * np.median(errors)


def test_with_shifts_searched_a_shift_head_learns_the_searched_shifts():
    stages = [{"downsample": 2, "blur": 1.0, "temperature": 0.0, "until": 1.0}]
    net = model(stages, count=len(f_in_box_units()[0]), max_shift=4.0)
    net.density.set_blobs(*f_in_box_units())
    shifts = np.random.default_rng(8).uniform(-3, 3, size=(16, 2)).astype("float32")
    true = Rotation.random(16, rng=8).as_matrix().astype("float32")
    images = render_shadows(f_in_box_units(), true, SIZE, EXTENT, shifts * 2 * EXTENT / SIZE)[..., None]
    assert set(net.term_weights) == {"reconstruction", "orientation", "shift"}
    net.encode({"images": images})  # builds the encoder and the head
    optimizer = keras.optimizers.Adam(0.01)
    variables = net.shift_head.trainable_variables + net.encoder.trainable_variables
    losses = []
    for _ in range(60):
        with tf.GradientTape() as tape:
            terms = net.loss_terms({"images": images})
            loss = tf.reduce_mean(terms["shift"])
        optimizer.apply(tape.gradient(loss, variables), variables)
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0], losses
    _, predicted = net.encode({"images": images})
    np.testing.assert_allclose(np.reshape(predicted, (-1, 2)), terms["shifts"], atol=1.0)


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
    poses, _ = net.search(net.density_state(), net.coarse(images, 0), 0)
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
    poses, _ = net.search(net.density_state(), net.coarse(shadows, 2), 2)
    aligned = align_poses(poses.numpy(), held_out)
    assert np.median(aligned["errors_deg"]) < 5.0


@pytest.mark.parametrize("max_shift", [0.0, 3.0])
def test_the_model_round_trips_its_config(max_shift):
    net = model([{"downsample": 1, "blur": 1.0, "temperature": 0.0, "until": 1.0}], max_shift=max_shift)
    again = AbInitio.from_config(net.get_config())
    assert again.stages == net.stages and again.image_size == SIZE and again.density.count == 40
    assert again.max_shift == max_shift and (again.shift_head is None) == (max_shift == 0)


@pytest.mark.parametrize("stage", [{"downsample": 2, "blur": 0.0}, {"downsample": 5, "blur": 1.0}])
def test_a_stage_without_blur_or_with_a_downsample_not_dividing_the_size_is_refused(stage):
    with pytest.raises(ValueError, match=f"got blur {stage['blur']} and downsample {stage['downsample']}"):
        model([{**stage, "temperature": 0.0, "until": 1.0}])


def test_the_encoder_only_comparison_trains_the_encoder_through_the_renderer_with_the_symmetric_loss():
    stages = [{"downsample": 2, "blur": 1.0, "temperature": 0.0, "until": 1.0}]
    keras.utils.set_random_seed(0)
    net = AbInitio(
        density=BlobDensity(count=5, image_size=SIZE, extent=EXTENT, radius=0.2, sigma=0.1, seed=0),
        encoder=RotationConditionedEncoder(filters=(4,), units=8),
        head=OrientationHead((8,)),
        image_size=SIZE,
        stages=stages,
        total_steps=10,
        poses="encoder",
    )
    images = render_shadows(
        f_in_box_units(), Rotation.random(6, rng=7).as_matrix().astype("float32"), SIZE, EXTENT
    )
    inputs = {"images": images[..., None]}
    with tf.GradientTape() as tape:
        terms = net.loss_terms(inputs)
        loss = tf.reduce_mean(terms["reconstruction"])
    gradients = tape.gradient(loss, net.encoder.trainable_variables + net.density.trainable_variables)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in gradients)
    # The symmetric loss is invariant to the flip it names: a pose and its half turn in plane score
    # alike, though their shadows differ.
    predicted = tf.reshape(net(inputs), [-1, 3, 3])
    half_turn = Rotation.from_rotvec([0.0, 0.0, math.pi]).as_matrix().astype("float32")
    own = net.stage_terms(images, 0, None, predicted)[0]
    turned = net.stage_terms(images, 0, None, half_turn @ predicted)[0]
    np.testing.assert_allclose(own, turned, rtol=1e-5)
    shadows = [net.shadows(net.density_state(), pose, 0) for pose in (predicted, half_turn @ predicted)]
    assert float(tf.reduce_max(tf.abs(shadows[0] - shadows[1]))) > 0.1 * float(tf.reduce_max(shadows[0]))


def voxel_model(stage, max_shift=0.0, candidates=8):
    return AbInitio(
        density=VoxelDensity(size=SIZE, extent=EXTENT, count=10),
        encoder=RotationConditionedEncoder(filters=(4,), units=8),
        head=OrientationHead((8,)),
        image_size=SIZE,
        stages=[{**stage, "temperature": 0.0, "until": 1.0}],
        total_steps=10,
        max_shift=max_shift,
        candidates=candidates,
    )


def test_fourier_cropping_keeps_the_pixels_dot_products_and_matches_the_blurred_coarse_grid():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, SIZE, SIZE)).astype("float32")
    whole = cropped_spectra(np.stack([a, b]), SIZE, _parseval(SIZE).astype("float32")).numpy()
    assert float(whole[0] @ whole[1]) == pytest.approx(float(np.sum(a * b)), rel=1e-4)
    # A smooth shadow blurred by 3 pixels: cropped to half the frequencies, it is the shadow read on
    # the grid 2 times coarser (blurred by two matrix products, tested against the analytic
    # Gaussian above), up to what that reading aliases.
    net = voxel_model({"downsample": 2, "blur": 3.0})
    shadow = render_shadows(
        f_in_box_units(), Rotation.random(1, rng=4).as_matrix().astype("float32"), SIZE, EXTENT
    )
    cropped = net.coarse(shadow, 0).numpy()[0]
    matrix = blur_matrix(SIZE, 2, 3.0)
    read = spectra(np.einsum("ij,jk,lk->il", matrix, shadow.numpy()[0], matrix)[None]).numpy()[0]
    # The coarse grid's origin is its pixel n // 2, the crop's its pixel 0: compare magnitudes.
    half = len(read) // 2
    magnitude = [np.hypot(v[:half].reshape(16, -1), v[half:].reshape(16, -1)) for v in (cropped, read)]
    np.testing.assert_allclose(magnitude[0], magnitude[1], atol=0.02 * magnitude[1].max())


def test_a_voxel_density_of_the_f_casts_the_exact_shadows_and_its_search_finds_true_poses():
    net = voxel_model({"downsample": 2, "blur": 1.0})
    net.density.values.assign(render_volume(BlobSample(*f_in_box_units()), SIZE, EXTENT))
    true = Rotation.random(24, rng=1).as_matrix().astype("float32")
    images = render_shadows(f_in_box_units(), true, SIZE, EXTENT)  # the blobs' exact shadows
    low, shadows = net.coarse(images, 0), net.shadows(net.density_state(), true, 0)
    cosine = np.sum(low * shadows, -1) / np.linalg.norm(low, axis=-1) / np.linalg.norm(shadows, axis=-1)
    assert cosine.min() > 0.999
    poses, _ = net.search(net.density_state(), low, 0)
    errors = np.degrees((Rotation.from_matrix(poses.numpy()).inv() * Rotation.from_matrix(true)).magnitude())
    assert np.median(errors) < 2.0, errors


def test_a_voxel_densitys_shadow_moves_with_its_shift_and_its_loss_reaches_the_voxels():
    net = voxel_model({"downsample": 2, "blur": 1.0}, max_shift=4.0)
    net.density.values.assign(render_volume(BlobSample(*f_in_box_units()), SIZE, EXTENT))
    pose = Rotation.random(1, rng=5).as_matrix().astype("float32")
    shift = np.array([[2.0, -1.0]], "float32")  # pixels of the 32-pixel images
    moved = render_shadows(f_in_box_units(), pose, SIZE, EXTENT, shift * 2 * EXTENT / SIZE)
    at_shift = net.shadows(net.density_state(), pose, 0, True, shift / 2)  # in the stage's pixels
    unmoved = net.shadows(net.density_state(), pose, 0, True)
    low = net.coarse(moved, 0)
    assert float(paired_residuals(low, at_shift)[0]) < 0.01 * float(paired_residuals(low, unmoved)[0])
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(net.loss_terms({"images": moved[..., None]})["reconstruction"])
    gradient = tape.gradient(loss, net.density.values)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0


def test_a_model_with_a_voxel_density_round_trips_its_config():
    net = voxel_model({"downsample": 2, "blur": 1.0})
    again = AbInitio.from_config(net.get_config())
    assert isinstance(again.density, VoxelDensity) and again.voxels and again.density.size == SIZE


@pytest.mark.parametrize("kind", ["blobs", "voxels"])
def test_a_stage_searching_on_a_coarser_grid_finds_poses_and_shifts_in_the_images_pixels(kind):
    stage = {"downsample": 1, "search_downsample": 2, "blur": 1.0}
    # 16 candidates: a grid rotation is scored at whole pixels of the coarse grid's shifts only.
    if kind == "voxels":
        net = voxel_model(stage, max_shift=4.0, candidates=16)
        net.density.values.assign(render_volume(BlobSample(*f_in_box_units()), SIZE, EXTENT))
    else:
        net = model(
            [{**stage, "temperature": 0.0, "until": 1.0}],
            count=len(f_in_box_units()[0]),
            max_shift=4.0,
            candidates=16,
        )
        net.density.set_blobs(*f_in_box_units())
    assert net.size(0) == SIZE and net.size(1) == SIZE // 2  # the stage's comparison, its search's
    true = Rotation.random(16, rng=6).as_matrix().astype("float32")
    shifts = np.random.default_rng(6).uniform(-3, 3, size=(16, 2)).astype("float32")
    images = render_shadows(f_in_box_units(), true, SIZE, EXTENT, shifts * 2 * EXTENT / SIZE)
    _, poses, found = net.stage_terms(images, 0)
    errors = np.degrees((Rotation.from_matrix(poses.numpy()).inv() * Rotation.from_matrix(true)).magnitude())
    assert np.median(errors) < 2.0, errors
    assert np.median(np.linalg.norm(found - shifts, axis=1)) < 0.5, found - shifts


def test_the_cross_matrix_and_the_turn_are_scipys():
    vectors = np.random.default_rng(9).normal(size=(5, 3)).astype("float32")
    u = np.random.default_rng(10).normal(size=(5, 3)).astype("float32")
    np.testing.assert_allclose(
        cross_matrix(vectors) @ u[..., None], np.cross(vectors, u)[..., None], atol=1e-5
    )
    start = Rotation.random(5, rng=11)
    expected = (Rotation.from_rotvec(vectors) * start).as_matrix()
    np.testing.assert_allclose(turned(vectors, start.as_matrix().astype("float32")), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["blobs", "voxels"])
def test_gradient_steps_on_the_poses_bring_them_closer_to_the_truth(kind):
    stage = {"downsample": 1, "blur": 0.5}
    if kind == "voxels":
        net = voxel_model(stage)
        net.density.values.assign(render_volume(BlobSample(*f_in_box_units()), SIZE, EXTENT))
    else:
        net = model([{**stage, "temperature": 0.0, "until": 1.0}], count=len(f_in_box_units()[0]))
        net.density.set_blobs(*f_in_box_units())
    net.pose_steps, net.first_turn = 12, math.radians(2.0)
    true = Rotation.random(16, rng=12)
    images = render_shadows(f_in_box_units(), true.as_matrix().astype("float32"), SIZE, EXTENT)
    # Each pose 3 degrees off about a random axis.
    axes = np.random.default_rng(12).normal(size=(16, 3))
    start = Rotation.from_rotvec(np.radians(3.0) * axes / np.linalg.norm(axes, axis=1, keepdims=True)) * true
    low = net.coarse(images, 0)
    poses = start.as_matrix().astype("float32")
    errors = paired_residuals(low, net.shadows(net.density_state(), poses, 0, net.voxels))
    polished = net.polish(net.density_state(), low, 0, None, poses, None, errors)
    after = np.degrees((Rotation.from_matrix(polished.numpy()).inv() * true).magnitude())
    assert np.median(after) < 1.0 and after.max() < 3.0, after


def test_gradient_steps_on_the_poses_run_inside_a_compiled_training_step_and_round_trip():
    net = model([{"downsample": 2, "blur": 1.0, "temperature": 0.0, "until": 1.0}], count=10)
    net.pose_steps = 2
    assert AbInitio.from_config(net.get_config()).pose_steps == 2
    images = render_shadows(
        f_in_box_units(), Rotation.random(4, rng=13).as_matrix().astype("float32"), SIZE, EXTENT
    )

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(net.loss_terms({"images": batch})["reconstruction"])
        return tape.gradient(loss, net.density.trainable_variables)

    gradients = step(images[..., None])
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in gradients)
