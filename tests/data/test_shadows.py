"""The shadow-sequence pipeline: seeded, disjoint validation, orientation sources, noise level."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.data import OrientationSampler, ShadowData, letter_f
from toolkit.data.shadows import TRAIN_STREAM, VALIDATION_STREAM


def make(**changes):
    settings = dict(
        sample=letter_f(blob_sigma=0.06),
        image_size=16,
        extent=0.75,
        sequence_length=3,
        orientations=OrientationSampler(),
        seed=0,
    )
    settings.update(changes)
    return ShadowData.create(**settings)


def test_batches_have_the_declared_shapes_and_are_seeded():
    data = make()
    batch = data.batch(5, TRAIN_STREAM, 7)
    assert batch["images"].shape == (5, 3, 16, 16, 1)
    assert batch["condition"].shape == (5, 3, 3) and batch["rotations"].shape == (5, 3, 3, 3)
    again = data.batch(5, TRAIN_STREAM, 7)
    np.testing.assert_array_equal(batch["images"].numpy(), again["images"].numpy())
    other = make(seed=1).batch(5, TRAIN_STREAM, 7)
    assert not np.allclose(batch["rotations"].numpy(), other["rotations"].numpy())


def test_condition_is_the_zyz_euler_angles_of_the_rotations():
    batch = make().batch(4, TRAIN_STREAM, 0)
    rotations = batch["rotations"].numpy().reshape(-1, 3, 3)
    expected = Rotation.from_matrix(rotations).as_euler("ZYZ")
    got = batch["condition"].numpy().reshape(-1, 3)
    np.testing.assert_allclose(Rotation.from_euler("ZYZ", got).as_matrix(), rotations, atol=1e-5)
    np.testing.assert_allclose(np.cos(got[:, 1]), np.cos(expected[:, 1]), atol=1e-5)


@pytest.mark.parametrize("representation, width", [("quaternion", 4), ("sixd", 6), ("matrix", 9)])
def test_other_representations(representation, width):
    batch = make(representation=representation).batch(2, TRAIN_STREAM, 0)
    assert batch["condition"].shape == (2, 3, width)


def test_training_dataset_is_the_batch_sequence_and_resumes_in_place():
    data = make()
    first = [b["images"].numpy() for b in data.train_dataset(4).take(3)]
    resumed = next(iter(data.train_dataset(4, start_batch=2)))["images"].numpy()
    np.testing.assert_array_equal(first[2], resumed)
    np.testing.assert_array_equal(first[1], data.batch(4, TRAIN_STREAM, 1)["images"].numpy())


def test_validation_set_is_fixed_and_disjoint_from_training():
    data = make(sequence_length=1)
    validation = data.validation_set(64, batch_size=32)
    np.testing.assert_array_equal(validation["images"], data.validation_set(64, batch_size=32)["images"])
    train = np.concatenate([data.batch(64, TRAIN_STREAM, i)["rotations"].numpy() for i in range(4)]).reshape(
        -1, 3, 3
    )
    val = validation["rotations"].reshape(-1, 3, 3)
    # Smallest geodesic angle between any validation and any training orientation.
    angles = np.arccos(np.clip((np.einsum("aij,bij->ab", val, train) - 1) / 2, -1, 1))
    assert angles.min() > 1e-3
    assert VALIDATION_STREAM != TRAIN_STREAM


def test_single_shadow_sequences_are_allowed():
    assert make(sequence_length=1).batch(2, TRAIN_STREAM, 0)["images"].shape == (2, 1, 16, 16, 1)


def test_euler_ranges_stay_within_their_ranges():
    ranges = ((10.0, 20.0), (30.0, 40.0), (50.0, 60.0))
    sampler = OrientationSampler("euler_ranges", "ZYZ", ranges)
    rotations = sampler(500, tf.constant([0, 0], tf.int64)).numpy()
    angles = Rotation.from_matrix(rotations).as_euler("ZYZ", degrees=True)
    for axis, (low, high) in enumerate(ranges):
        assert low - 1e-3 <= angles[:, axis].min() and angles[:, axis].max() <= high + 1e-3


def test_haar_orientations_are_uniform():
    rotations = OrientationSampler()(20000, tf.constant([3, 0], tf.int64)).numpy()
    # Haar: E[R] = 0, and E[trace R] = 1 + 2 E[cos angle] = 0 since the angle has density (1 - cos)/pi.
    np.testing.assert_allclose(rotations.mean(axis=0), np.zeros((3, 3)), atol=0.02)
    assert abs(np.trace(rotations, axis1=1, axis2=2).mean()) < 0.03


def test_noise_has_the_target_snr():
    clean = make(sequence_length=1).batch(64, TRAIN_STREAM, 0)["images"].numpy()
    noisy = make(sequence_length=1, snr=0.1).batch(64, TRAIN_STREAM, 0)["images"].numpy()
    noise = noisy - clean
    expected = clean.std(axis=(2, 3, 4)) / np.sqrt(0.1)
    measured = noise.std(axis=(2, 3, 4))
    np.testing.assert_allclose(measured, expected, rtol=0.15)
    assert abs(np.median(measured / expected) - 1) < 0.03


def test_intensity_scale_puts_shadows_near_unit_peak():
    images = make().validation_set(128)["images"]
    assert 0.8 < images.max() < 1.3


def test_a_ctf_batch_holds_the_ctf_each_shadow_went_through(ctf_reference):
    from toolkit.data.shadows import CTFDraws

    microscope = CTFDraws(defocus_min=6000.0, defocus_max=9000.0, astigmatism=400.0)
    data = make(ctf=microscope, pixel_size=3.0, sequence_length=1)
    batch = data.batch(4, TRAIN_STREAM, 2)
    clean = make(pixel_size=3.0, sequence_length=1).batch(4, TRAIN_STREAM, 2)["images"].numpy()[:, 0, :, :, 0]
    for image, ctf, defocus, shadow in zip(
        batch["images"].numpy()[:, 0, :, :, 0],
        batch["ctf"].numpy()[:, 0],
        batch["defocus"].numpy()[:, 0],
        clean,
    ):
        expected = ctf_reference.ctf(16, 3.0, *defocus, 300.0, 2.7, 0.1)
        np.testing.assert_allclose(ctf, expected, atol=1e-4)
        np.testing.assert_allclose(image, np.fft.ifft2(np.fft.fft2(shadow) * expected).real, atol=1e-4)
