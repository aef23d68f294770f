"""render_shadows against truths computed independently in numpy/scipy."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.integrate import simpson
from scipy.spatial.transform import Rotation

from toolkit.data.objects import BlobSample, letter_f
from toolkit.data.render import pixel_centers, pixel_size, render_shadows, render_volume

EYE = np.eye(3, dtype=np.float32)[None]


def z_turn(degrees: float) -> np.ndarray:
    """scipy's rotation about the beam (z) axis, float32 [1, 3, 3]."""
    matrix = Rotation.from_euler("z", degrees, degrees=True).as_matrix()
    return matrix.astype(np.float32)[None]


def random_rotations(n: int, seed: int) -> np.ndarray:
    return Rotation.random(n, rng=np.random.default_rng(seed)).as_matrix().astype(np.float32)


def gaussian_image(centers, weights, sigma, size, extent):
    """Hand-written projected-Gaussian formula on pixel centres (rows = y, cols = x)."""
    axis = (np.arange(size) - size // 2) * (2 * extent / size)  # pixel N // 2 at 0, as in RELION
    y, x = np.meshgrid(axis, axis, indexing="ij")
    image = np.zeros((size, size))
    for (cx, cy, _), w in zip(centers, weights):
        r2 = (x - cx) ** 2 + (y - cy) ** 2
        image += w / (2 * np.pi * sigma**2) * np.exp(-r2 / (2 * sigma**2))
    return image


def test_pixel_grid():
    assert pixel_size(8, 2.0) == 0.5
    centers = pixel_centers(5, 1.0)
    np.testing.assert_allclose(centers, [-0.8, -0.4, 0.0, 0.4, 0.8], atol=1e-15)
    assert np.array_equal(centers, -centers[::-1])
    np.testing.assert_allclose(pixel_centers(4, 1.0), [-1.0, -0.5, 0.0, 0.5], atol=1e-15)


@pytest.mark.parametrize(
    "centers, weights",
    [
        ([[0.1, -0.2, 0.3]], [2.0]),
        ([[0.1, -0.2, 0.3], [-0.25, 0.15, -0.4]], [2.0, 0.5]),
    ],
)
def test_identity_matches_gaussian_formula(centers, weights):
    sample = BlobSample(centers, weights, 0.1)
    image = render_shadows(sample, EYE, 32, 0.8).numpy()[0]
    expected = gaussian_image(centers, weights, 0.1, 32, 0.8)
    assert np.abs(image - expected).max() <= 1e-6 * expected.max()


def test_translation_moves_the_blob():
    sample = BlobSample([[0.1, -0.2, 0.3]], [1.0], 0.1)
    image = render_shadows(sample, EYE, 32, 0.8, translations=[[0.15, -0.05]]).numpy()[0]
    expected = gaussian_image([[0.25, -0.25, 0.0]], [1.0], 0.1, 32, 0.8)
    assert np.abs(image - expected).max() <= 1e-6 * expected.max()


def test_mass_is_conserved_under_rotation():
    sample = letter_f()
    images = render_shadows(sample, random_rotations(50, seed=0), 64, 0.9).numpy()
    masses = images.sum(axis=(1, 2), dtype=np.float64) * pixel_size(64, 0.9) ** 2
    np.testing.assert_allclose(masses, sample.total_mass, rtol=1e-4)


@pytest.fixture(scope="module")
def f_sample():
    return letter_f()


@pytest.mark.parametrize("degrees, k", [(180, 2), (90, -1), (-90, 1)])
def test_turn_about_beam_rotates_image(f_sample, degrees, k):
    # x' = Rz(+90) x maps (x, y) -> (-y, x): with row <-> y (row 0 = lowest y) that is
    # a clockwise quarter turn of the array as printed, i.e. np.rot90(k=-1). Pixel N // 2 is
    # the origin, so an odd size keeps the turned grid on the same pixels.
    start = random_rotations(1, seed=3)
    turned = z_turn(degrees) @ start
    base, image = render_shadows(f_sample, np.concatenate([start, turned]), 41, 0.75).numpy()
    tol = 1e-5 * base.max()
    np.testing.assert_allclose(image, np.rot90(base, k), atol=tol)
    # The opposite turn (or no turn) must not pass, so the check can discriminate.
    assert np.abs(image - np.rot90(base, k + 2)).max() > 0.1 * base.max()


def test_matches_brute_force_line_integral(f_sample):
    size, extent, sigma = 24, 0.75, f_sample.sigma
    rotation = random_rotations(1, seed=7)
    image = render_shadows(f_sample, rotation, size, extent).numpy()[0].astype(np.float64)

    moved = f_sample.centers.astype(np.float64) @ rotation[0].T.astype(np.float64)
    axis = (np.arange(size) - size // 2) * (2 * extent / size)
    z = np.linspace(-1.2, 1.2, 481)  # step sigma / 10, covering all blobs by > 10 sigma
    y, x, zz = np.meshgrid(axis, axis, z, indexing="ij")
    density = np.zeros_like(zz)
    norm = (2 * np.pi * sigma**2) ** -1.5
    for (cx, cy, cz), w in zip(moved, f_sample.weights):
        density += w * norm * np.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (zz - cz) ** 2) / (2 * sigma**2))
    truth = simpson(density, x=z, axis=-1)
    assert np.abs(image - truth).max() / truth.max() < 1e-3


def test_volume_projection_matches_identity_shadow(f_sample):
    volume = render_volume(f_sample, 32, 0.75)
    projected = volume.sum(axis=0, dtype=np.float64) * pixel_size(32, 0.75)
    image = render_shadows(f_sample, EYE, 32, 0.75).numpy()[0]
    assert np.abs(projected - image).max() <= 1e-5 * image.max()


def test_runs_in_tf_data_and_tf_function(f_sample):
    rotations = tf.constant(random_rotations(4, seed=1))
    eager = render_shadows(f_sample, rotations, 16, 0.75).numpy()

    dataset = tf.data.Dataset.range(4).map(
        lambda i: render_shadows(f_sample, rotations[i][None], 16, 0.75)[0]
    )
    np.testing.assert_allclose(np.stack(list(dataset.as_numpy_iterator())), eager, atol=1e-6)

    sample_tensors = tuple(tf.constant(v) for v in (f_sample.centers, f_sample.weights, f_sample.sigma))

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32)])
    def render(r):
        return render_shadows(sample_tensors, r, 16, 0.75)

    np.testing.assert_allclose(render(rotations).numpy(), eager, atol=1e-6)
    assert render(rotations[:1]).shape == (1, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 0}, "got 0"),
        ({"image_size": 2.5}, "got 2.5"),
        ({"extent": -1.0}, "got -1.0"),
        ({"rotations": np.eye(3)}, r"got \(3, 3\)"),
        ({"translations": np.zeros((1, 3))}, r"got \(1, 3\)"),
        ({"sample": ([[0.0, 0.0, 0.0]], [1.0], -0.5)}, "got -0.5"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    args = {
        "sample": BlobSample([[0.0, 0.0, 0.0]], [1.0], 0.1),
        "rotations": EYE,
        "image_size": 8,
        "extent": 1.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        render_shadows(**args)
