"""The map projectors against the Gaussian's analytic projection, the exact blob renderer and each other."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toolkit.data import projector
from toolkit.data.objects import BlobSample, letter_f
from toolkit.data.render import pixel_size, render_shadows, render_volume


def rotations(n, seed):
    return Rotation.random(n, rng=np.random.default_rng(seed)).as_matrix().astype(np.float32)


def correlation(a, b):
    a, b = (np.reshape(x, (len(x), -1)) for x in (a, b))
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))


def test_fourier_projection_of_a_gaussian_is_the_analytic_2d_gaussian():
    size, sigma = 32, 2.5  # in voxels
    c = np.arange(size) - size // 2
    centre = np.array([3.0, -2.0, 1.5])  # x, y, z voxels from voxel size // 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    volume = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / (2 * sigma**2))
    pose = rotations(1, seed=4)
    moved = pose[0].astype(np.float64) @ centre
    yy, xx = np.meshgrid(c, c, indexing="ij")
    # The line integral of exp(-r^2 / 2 s^2) along z is sqrt(2 pi) s exp(-(x^2 + y^2) / 2 s^2).
    truth = (
        np.sqrt(2 * np.pi) * sigma * np.exp(-((xx - moved[0]) ** 2 + (yy - moved[1]) ** 2) / (2 * sigma**2))
    )
    image = projector.project(volume.astype(np.float32), pose).numpy()[0]
    assert np.abs(image - truth).max() < 0.03 * truth.max()
    assert correlation(image[None], truth[None])[0] > 0.999


@pytest.fixture(scope="module")
def f_volume():
    sample, size, extent = letter_f(), 48, 0.75
    return sample, size, extent, render_volume(sample, size, extent)


def test_fourier_projection_matches_the_exact_blob_renderer(f_volume):
    sample, size, extent, volume = f_volume
    poses = rotations(12, seed=0)
    exact = render_shadows(sample, poses, size, extent).numpy()
    image = projector.project(volume, poses, voxel_size=pixel_size(size, extent)).numpy()
    assert correlation(image, exact).min() >= 0.99
    assert np.abs(image - exact).max() < 0.05 * exact.max()
    # Without padding and gridding correction the box edges are damped: a real, measurable loss.
    plain = projector.spectra_to_images(
        projector.slice_spectrum(projector.volume_spectrum(volume, pad=1, correct=False), poses, size)
    ).numpy() * pixel_size(size, extent)
    assert np.abs(plain - exact).max() > 2 * np.abs(image - exact).max()


def test_real_space_projector_agrees(f_volume):
    sample, size, extent, volume = f_volume
    poses = rotations(3, seed=1)
    exact = render_shadows(sample, poses, size, extent).numpy()
    rays = projector.project_real_space(volume, poses, voxel_size=pixel_size(size, extent)).numpy()
    fourier = projector.project(volume, poses, voxel_size=pixel_size(size, extent)).numpy()
    assert correlation(rays, exact).min() >= 0.999
    assert correlation(rays, fourier).min() >= 0.99


def test_insert_is_the_adjoint_of_slice():
    rng = np.random.default_rng(2)
    padded, size, poses = 16, 8, rotations(3, seed=2)
    spectrum = (rng.normal(size=[padded] * 3) + 1j * rng.normal(size=[padded] * 3)).astype(np.complex64)
    slices = (rng.normal(size=(3, size, size)) + 1j * rng.normal(size=(3, size, size))).astype(np.complex64)
    forward = projector.slice_spectrum(spectrum, poses, size).numpy()
    back = projector.insert_slices(slices, poses, padded).numpy()
    np.testing.assert_allclose(np.vdot(slices, forward), np.vdot(back, spectrum), rtol=1e-4)


def test_identity_pose_of_a_single_voxel_lands_on_its_pixel():
    volume = np.zeros((8, 8, 8), np.float32)
    volume[1, 2, 6] = 1.0  # z, y, x: the point (x, y, z) = (2, -2, -3) voxels from the centre
    image = projector.project(volume, np.eye(3, dtype=np.float32)[None]).numpy()[0]
    assert np.unravel_index(np.argmax(image), image.shape) == (2, 6)


def test_projection_is_differentiable_in_map_and_pose():
    import tensorflow as tf

    sample = BlobSample([[0.2, 0.0, 0.1]], [1.0], 0.12)
    volume = tf.Variable(render_volume(sample, 16, 0.75))
    angle = tf.Variable(0.3)
    with tf.GradientTape() as tape:
        c, s = tf.cos(angle), tf.sin(angle)
        pose = tf.reshape(tf.stack([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]), [1, 3, 3])
        loss = tf.reduce_sum(projector.project(volume, pose)[:, :, 10])
    map_gradient, angle_gradient = tape.gradient(loss, [volume, angle])
    assert float(tf.reduce_max(tf.abs(map_gradient))) > 0 and abs(float(angle_gradient)) > 0
