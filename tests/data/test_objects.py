"""BlobSample validation and the shape guarantees of letter_f and gaussian_blobs."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toolkit.data.objects import BlobSample, gaussian_blobs, letter_f
from toolkit.data.render import pixel_size, render_shadows


def test_blob_sample_stores_read_only_float32():
    sample = BlobSample(np.zeros((2, 3)), [1, 2], 0.5)
    assert sample.centers.dtype == np.float32 and sample.weights.dtype == np.float32
    assert isinstance(sample.sigma, float)
    with pytest.raises(ValueError):
        sample.centers[0, 0] = 1.0


@pytest.mark.parametrize(
    "centers, weights, sigma, message",
    [
        (np.zeros((2, 2)), [1, 1], 0.1, r"got \(2, 2\)"),
        (np.zeros((2, 3)), [1], 0.1, r"got \(1,\)"),
        (np.zeros((2, 3)), [1, -2], 0.1, "got min -2.0"),
        (np.zeros((1, 3)), [1], 0.0, "`sigma` must be positive, got 0.0."),
        (np.full((1, 3), np.nan), [1], 0.1, "finite"),
    ],
)
def test_blob_sample_rejects_bad_values(centers, weights, sigma, message):
    with pytest.raises(ValueError, match=message):
        BlobSample(centers, weights, sigma)


@pytest.mark.parametrize(
    "size, spacing, thickness",
    [(1.0, None, 0.2), (1.0, 0.03, 0.2), (2.0, None, 0.2), (0.5, 0.01, 0.2)]
    + [(1.0, 0.01, 0.25), (1.0, 0.2, 0.1)],
)
def test_letter_f_is_centred_and_bounded(size, spacing, thickness):
    f = letter_f(size=size, spacing=spacing, thickness=thickness)
    assert np.abs(f.center_of_mass).max() < 1e-6 * size
    assert f.radius <= 0.6 * size
    height = f.centers[:, 1].max() - f.centers[:, 1].min()
    step = spacing or 0.075
    assert size - 2 * step < height < size


def test_letter_f_has_unit_density():
    # With a step that divides every proportion, the mass is the exact volume of the F.
    f = letter_f(spacing=0.02)
    volume = 0.2 * (0.2 + (0.46 - 0.2) * 0.16 + (0.36 - 0.2) * 0.16 / 2)
    assert f.total_mass == pytest.approx(volume, rel=1e-5)


def test_letter_f_stays_inside_the_field():
    f = letter_f()
    rotations = Rotation.random(50, rng=np.random.default_rng(2)).as_matrix()
    images = render_shadows(f, rotations, 48, 0.75).numpy()
    masses = images.sum(axis=(1, 2), dtype=np.float64) * pixel_size(48, 0.75) ** 2
    assert masses.min() > 0.999 * f.total_mass
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.max() < 1e-3 * images.max()


def test_letter_f_has_no_rotation_symmetry():
    f = letter_f()
    cube = Rotation.create_group("O").as_matrix()  # 24 rotations, identity among them
    images = render_shadows(f, cube, 32, 0.75).numpy()
    base = images[np.argmin(np.abs(cube - np.eye(3)).sum(axis=(1, 2)))]
    differences = np.abs(images - base).max(axis=(1, 2)) / base.max()
    assert np.sum(differences < 1e-6) == 1  # only the identity reproduces the image
    assert np.sort(differences)[1] > 0.2


def test_letter_f_has_no_mirror_plane():
    # An extruded F equals its z-mirror, so R and its mirror twin would cast identical
    # shadows.
    f = letter_f()
    mirrored = BlobSample(f.centers * np.array([1, 1, -1], np.float32), f.weights, f.sigma)
    rotations = Rotation.random(8, rng=np.random.default_rng(4)).as_matrix()
    a = render_shadows(f, rotations, 32, 0.75).numpy()
    b = render_shadows(mirrored, rotations, 32, 0.75).numpy()
    assert (np.abs(a - b).max(axis=(1, 2)) / a.max(axis=(1, 2))).min() > 0.05


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"blob_sigma": -1}, "`blob_sigma` must be positive, got -1."),
        ({"size": 0.0}, "`size` must be positive, got 0.0."),
        ({"thickness": -0.2}, "`thickness` must be positive, got -0.2."),
        ({"spacing": float("nan")}, "`spacing` must be positive, got nan."),
        ({"spacing": 1e-4}, "too small"),
    ],
)
def test_letter_f_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        letter_f(**kwargs)


def test_gaussian_blobs():
    a, b, c = (
        gaussian_blobs(40, seed=5),
        gaussian_blobs(40, seed=5),
        gaussian_blobs(40, seed=6),
    )
    assert a.centers.shape == (40, 3) and a.weights.shape == (40,) and a.sigma == 0.05
    assert np.array_equal(a.centers, b.centers) and not np.array_equal(a.centers, c.centers)
    assert np.abs(a.center_of_mass).max() < 1e-6
    assert a.radius <= 0.5 * (1 + 1e-6)
    assert gaussian_blobs(3, radius=2.0, seed=1).radius <= 2.0 * (1 + 1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"count": 0}, "got 0"),
        ({"count": 2.0}, "got 2.0"),
        ({"count": 3, "radius": -1}, "`radius` must be positive, got -1."),
        ({"count": 3, "sigma": 0}, "`sigma` must be positive, got 0."),
    ],
)
def test_gaussian_blobs_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gaussian_blobs(**kwargs)
