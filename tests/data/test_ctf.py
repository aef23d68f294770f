"""The CTF against published values, closed-form zeros and an independent numpy implementation."""

import math

import numpy as np
import pytest
import tensorflow as tf

from toolkit.data.ctf import apply_ctf, ctf_2d, electron_wavelength, phase_flip


@pytest.mark.parametrize("kv, published", [(300, 0.01969), (200, 0.02508), (100, 0.03701)])
def test_electron_wavelength_published(kv, published):
    assert float(f"{electron_wavelength(kv):.4g}") == published
    as_tensor = electron_wavelength(tf.constant([float(kv)], tf.float64))
    assert tf.is_tensor(as_tensor)
    np.testing.assert_allclose(as_tensor.numpy(), [electron_wavelength(kv)], rtol=1e-12)


@pytest.mark.parametrize("amp", [0.0, 0.07, 0.1, 0.5])
def test_origin_is_the_amplitude_contrast(amp):
    ctf = ctf_2d(32, 1.3, [21000.0, 9000.0], 15000.0, 37.0, spherical_aberration=2.0, amplitude_contrast=amp)
    np.testing.assert_allclose(ctf[:, 0, 0].numpy(), [amp, amp], atol=1e-7)  # RELION's sign


def test_phase_shift_adds_to_amplitude_contrast_phase():
    # A 90-degree phase plate turns the pure phase CTF sin(chi) into cos(chi): 1 at k = 0.
    plate = ctf_2d(16, 2.0, 10000.0, 10000.0, 0.0, amplitude_contrast=0.0, phase_shift=90.0)
    assert float(plate[0, 0]) == pytest.approx(1.0, abs=1e-7)
    both = ctf_2d(16, 2.0, 10000.0, 10000.0, 0.0, amplitude_contrast=0.5, phase_shift=60.0)
    assert float(both[0, 0]) == pytest.approx(1.0, abs=1e-7)  # asin(0.5) = 30 degrees, + 60 = 90


def test_first_zero_on_a_grid_sample(ctf_reference):
    # 64 px of 2 A: k = 8 / 128 = 1/16 A^-1 at index 8; choose the defocus that puts the zero there.
    defocus = 16.0**2 / ctf_reference.wavelength(300.0)
    ctf = ctf_2d(64, 2.0, defocus, defocus, 0.0, spherical_aberration=0.0, amplitude_contrast=0.0).numpy()
    np.testing.assert_allclose([ctf[0, 8], ctf[8, 0], ctf[0, -8], ctf[-8, 0]], 0.0, atol=1e-6)  # +-x, +-y
    assert np.all(ctf[0, 1:8] > 0) and ctf[0, 9] < 0  # sin(chi) > 0 before the first zero


@pytest.mark.parametrize("defocus, kv", [(8000.0, 300.0), (17321.0, 200.0), (31000.0, 100.0)])
def test_first_zero_between_grid_frequencies(defocus, kv, ctf_reference):
    size, pixel = 512, 1.0
    ctf = ctf_2d(
        size, pixel, defocus, defocus, 0.0, voltage=kv, spherical_aberration=0.0, amplitude_contrast=0.0
    )
    freqs = np.fft.fftfreq(size, d=pixel)
    k_zero = 1.0 / math.sqrt(ctf_reference.wavelength(kv) * defocus)
    for line in (ctf.numpy()[0, : size // 2], ctf.numpy()[: size // 2, 0]):
        first_negative = np.argmax(line[1:] < 0) + 1
        assert np.all(line[1:first_negative] > 0)
        assert freqs[first_negative - 1] < k_zero <= freqs[first_negative]


def test_astigmatism_axes():
    size, pixel, du, dv = 64, 1.5, 22000.0, 12000.0
    common = dict(voltage=200.0, spherical_aberration=2.7, amplitude_contrast=0.1)
    iso_u = ctf_2d(size, pixel, du, du, 0.0, **common).numpy()
    iso_v = ctf_2d(size, pixel, dv, dv, 0.0, **common).numpy()
    assert np.abs(iso_u - iso_v).max() > 0.5  # the two defoci are really distinguishable

    at_0, at_90, at_45 = (ctf_2d(size, pixel, du, dv, a, **common).numpy() for a in (0.0, 90.0, 45.0))
    np.testing.assert_allclose(at_0[0, :], iso_u[0, :], atol=1e-6)  # x axis: defocus_u
    np.testing.assert_allclose(at_0[:, 0], iso_v[:, 0], atol=1e-6)  # y axis: defocus_v
    np.testing.assert_allclose(at_90[:, 0], iso_u[:, 0], atol=1e-6)
    np.testing.assert_allclose(at_90[0, :], iso_v[0, :], atol=1e-6)
    idx = np.delete(np.arange(size), size // 2)  # (Nyquist, Nyquist) is on both diagonals
    anti = (-idx) % size  # ky = -kx
    np.testing.assert_allclose(at_45[idx, idx], iso_u[idx, idx], atol=1e-6)  # kx = ky: 45 degrees
    np.testing.assert_allclose(at_45[anti, idx], iso_v[anti, idx], atol=1e-6)  # kx = -ky: 135 degrees
    assert np.abs(at_45[idx, idx] - iso_v[idx, idx]).max() > 0.5  # counter-clockwise, not clockwise


def test_matches_independent_numpy_on_random_batch(ctf_reference):
    rng = np.random.default_rng(0)
    du = rng.uniform(5000, 35000, 3)
    dv = du - rng.uniform(0, 3000, 3)
    angle = rng.uniform(-180, 180, 3)
    shift = rng.uniform(0, 120, 3)
    bfac = rng.uniform(0, 200, 3)
    args = (96, 0.9, du, dv, angle)
    kw = dict(voltage=300.0, spherical_aberration=2.7, amplitude_contrast=0.07)
    ctf = ctf_2d(*args, **kw, phase_shift=shift, b_factor=bfac)
    assert ctf.dtype == tf.float32 and ctf.shape == (3, 96, 96)
    truth = ctf_reference.ctf(*args, 300.0, 2.7, 0.07, shift, bfac)
    np.testing.assert_allclose(ctf.numpy(), truth, atol=1e-5)
    # float32 tensor inputs (as from tf.data) still match: chi reaches hundreds of radians here.
    as_f32 = ctf_2d(96, 0.9, tf.constant(du, tf.float32), tf.constant(dv, tf.float32), angle, **kw)
    truth_f32 = ctf_reference.ctf(
        96, 0.9, du.astype(np.float32), dv.astype(np.float32), angle, 300.0, 2.7, 0.07, 0, 0
    )
    np.testing.assert_allclose(as_f32.numpy(), truth_f32, atol=1e-5)


@pytest.mark.parametrize("size", [16, 15])
def test_apply_ctf_matches_numpy_and_is_real(size):
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, size, size)).astype(np.float32)
    ctf = ctf_2d(size, 2.0, 15000.0, 11000.0, 25.0, b_factor=50.0)
    full = np.fft.ifft2(np.fft.fft2(images) * ctf.numpy())
    assert np.abs(full.imag).max() < 1e-6 * np.abs(full.real).max()  # the CTF grid is point-symmetric
    out = apply_ctf(images, ctf)
    assert out.dtype == tf.float32 and out.shape == images.shape
    np.testing.assert_allclose(out.numpy(), full.real, atol=1e-4)

    per_image = ctf_2d(size, 2.0, [15000.0, 30000.0], 11000.0, 25.0)
    expected = np.fft.ifft2(np.fft.fft2(images) * per_image.numpy()).real
    np.testing.assert_allclose(apply_ctf(images, per_image).numpy(), expected, atol=1e-4)

    np.testing.assert_allclose(apply_ctf(images, tf.ones((size, size))).numpy(), images, atol=1e-5)


def test_phase_flip_of_ctf_image_is_abs_ctf_filter():
    rng = np.random.default_rng(2)
    images = rng.normal(size=(3, 24, 24)).astype(np.float32)
    ctf = ctf_2d(24, 1.7, 18000.0, 16000.0, -60.0)
    flipped = phase_flip(apply_ctf(images, ctf), ctf)
    expected = np.fft.ifft2(np.fft.fft2(images) * np.abs(ctf.numpy())).real
    np.testing.assert_allclose(flipped.numpy(), expected, atol=1e-4)


def test_graph_modes_and_broadcasting():
    du = np.array([12000.0, 15000.0, 20000.0, 26000.0], np.float32)
    dv, angle = du - 800.0, np.array([0.0, 30.0, 60.0, 90.0], np.float32)
    eager = ctf_2d(16, 1.5, du, dv, angle).numpy()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)] * 3)
    def batched(u, v, a):
        return ctf_2d(16, 1.5, u, v, a)

    assert batched.get_concrete_function().structured_outputs.shape.as_list() == [None, 16, 16]
    np.testing.assert_allclose(batched(du, dv, angle).numpy(), eager, atol=1e-6)

    dataset = tf.data.Dataset.from_tensor_slices((du, dv, angle)).map(
        lambda u, v, a: ctf_2d(16, 1.5, u, v, a)
    )
    assert dataset.element_spec.shape == (16, 16)
    np.testing.assert_allclose(np.stack([c.numpy() for c in dataset]), eager, atol=1e-6)

    assert ctf_2d(16, 1.5, du, 14000.0, 10.0).shape == (4, 16, 16)  # scalar defocus_v broadcasts
    assert ctf_2d(16, 1.5, np.full((2, 3), 9000.0), 8000.0, np.zeros((1, 3))).shape == (2, 3, 16, 16)
    assert ctf_2d(16, 1.5, 9000.0, 8000.0, 0.0, b_factor=[0.0, 50.0]).shape == (2, 16, 16)


@pytest.mark.parametrize(
    "kwargs, name, shown",
    [
        (dict(image_size=1), "image_size", "1"),
        (dict(image_size=8.0), "image_size", "8.0"),
        (dict(pixel_size=0.0), "pixel_size", "0.0"),
        (dict(pixel_size=-1.2), "pixel_size", "-1.2"),
        (dict(amplitude_contrast=1.0), "amplitude_contrast", "1.0"),
        (dict(amplitude_contrast=-0.1), "amplitude_contrast", "-0.1"),
        (dict(voltage=0.0), "voltage", "0.0"),
        (dict(voltage=-300), "voltage", "-300"),
    ],
)
def test_bad_arguments(kwargs, name, shown):
    args = dict(image_size=16, pixel_size=1.0, defocus_u=1e4, defocus_v=1e4, defocus_angle=0.0) | kwargs
    with pytest.raises(ValueError) as info:
        ctf_2d(**args)
    message = str(info.value)
    assert name in message and shown in message and "\n" not in message
