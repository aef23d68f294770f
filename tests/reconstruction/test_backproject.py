"""Direct Fourier inversion against the voxelized sample, and the shift convention against scipy."""

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from toolkit.data.ctf import apply_ctf, ctf_2d
from toolkit.data.objects import letter_f
from toolkit.data.projector import images_to_spectra, phase_shift, spectra_to_images
from toolkit.data.render import pixel_size, render_shadows, render_volume
from toolkit.reconstruction.backproject import Microscope, reconstruct

SIZE, EXTENT = 24, 0.75


def correlation(a, b):
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def shadows(count, seed, translations=None):
    poses = Rotation.random(count, rng=np.random.default_rng(seed)).as_matrix().astype(np.float32)
    images = render_shadows(letter_f(), poses, SIZE, EXTENT, translations).numpy()
    return images / pixel_size(SIZE, EXTENT), poses  # a sum over voxels, the units of the map


def test_exact_projections_reconstruct_the_voxelized_sample():
    images, poses = shadows(600, seed=0)
    truth = render_volume(letter_f(), SIZE, EXTENT)
    volume = reconstruct(images, poses, regularization=0.01)
    assert correlation(volume, truth) > 0.995
    assert abs(volume.sum() / truth.sum() - 1) < 0.05


def test_shifted_particles_are_centred_by_their_shifts():
    rng = np.random.default_rng(1)
    shifts = rng.normal(0, 2.0, size=(600, 2)).astype(np.float32)  # where each centre lies, pixels
    images, poses = shadows(600, seed=0, translations=shifts * pixel_size(SIZE, EXTENT))
    truth = render_volume(letter_f(), SIZE, EXTENT)
    centred = reconstruct(images, poses, shifts=-shifts, regularization=0.01)
    wrong_way = reconstruct(images, poses, shifts=shifts, regularization=0.01)
    assert correlation(centred, truth) > 0.99 > 0.9 > correlation(wrong_way, truth)


def test_phase_shift_moves_like_scipy_ndimage_shift():
    image = np.random.default_rng(3).normal(size=(1, 16, 16)).astype(np.float32)
    moved = spectra_to_images(phase_shift(images_to_spectra(image), [[3.0, -2.0]])).numpy()[0]
    np.testing.assert_allclose(
        moved, ndimage.shift(image[0], (-2.0, 3.0), order=0, mode="grid-wrap"), atol=1e-4
    )


def test_ctf_corrected_reconstruction_is_the_positive_map():
    images, poses = shadows(600, seed=4)
    rng = np.random.default_rng(4)
    defocus = rng.uniform(8000, 14000, size=600)
    apix = 3.0
    modulated = apply_ctf(images, ctf_2d(SIZE, apix, defocus, defocus, 0.0)).numpy()
    microscope = Microscope(apix, defocus, defocus, np.zeros(600))
    truth = render_volume(letter_f(), SIZE, EXTENT)
    corrected = reconstruct(modulated, poses, microscope=microscope, regularization=0.1)
    plain = reconstruct(modulated, poses, regularization=0.1)
    assert correlation(corrected, truth) > 0.95
    assert correlation(corrected, truth) > correlation(plain, truth) + 0.05
