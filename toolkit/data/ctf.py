"""Contrast transfer function (CTF) of a transmission electron microscope, in TensorFlow ops.

Conventions (RELION's; CTFFIND4's parameters, RELION's sign):

* Images are [..., H, W] with rows = y and columns = x. The CTF lives on the unshifted
  FFT grid of tf.signal.fft2d (frequency 0 at [0, 0]): kx = np.fft.fftfreq(W, pixel_size)
  along the last axis, ky = np.fft.fftfreq(H, pixel_size) along the second-to-last, in 1/Angstrom.
* Defocus is positive for underfocus. defocus_angle is the azimuth of the defocus_u axis,
  counter-clockwise from +x towards +y: theta = atan2(ky, kx) and
  defocus(theta) = (dU + dV + (dU - dV) cos(2 (theta - angle))) / 2.
* chi = pi lambda defocus k^2 - pi/2 Cs lambda^3 k^4 + phase_shift + arctan(A / sqrt(1 - A^2)),
  CTF = sin(chi) exp(-B k^2 / 4), so CTF(k = 0) = +A, RELION's sign (CTFFIND4's equation is its
  negative). Particles drawn through it are the white-on-dark ones RELION and cryoDRGN expect:
  both reconstruct them to a positive map without inverting the contrast.

References:
    Rohou, A. & Grigorieff, N. (2015). CTFFIND4: Fast and accurate defocus estimation from
    electron micrographs. J. Struct. Biol. 192, 216-221.
    Scheres, S. H. W. (2012). RELION: Implementation of a Bayesian approach to cryo-EM
    structure determination. J. Struct. Biol. 180, 519-530.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf


def _require(ok: bool, name: str, requirement: str, value) -> None:
    """Raise a one-line ValueError naming the argument and its value unless ok."""
    if not ok:
        raise ValueError(f"`{name}` must be {requirement}, got {value!r}.")


def electron_wavelength(voltage_kv) -> float | tf.Tensor:
    """Relativistic electron wavelength, in Angstrom, for an accelerating voltage in kV.

    lambda = 12.2643247 / sqrt(V (1 + 0.978466e-6 V)) with V in volts (RELION's constants).

    Args:
        voltage_kv: accelerating voltage in kV; a number or a tensor.

    Returns:
        A float for a number, a float tensor of the same shape for a tensor.

    Example:
        >>> round(electron_wavelength(300.0), 5)
        0.01969
    """
    if tf.is_tensor(voltage_kv):
        volts = 1e3 * tf.cast(voltage_kv, tf.float64 if voltage_kv.dtype.is_integer else voltage_kv.dtype)
        return 12.2643247 / tf.sqrt(volts * (1.0 + 0.978466e-6 * volts))
    _require(float(voltage_kv) > 0, "voltage", "positive (kV)", voltage_kv)
    volts = 1e3 * float(voltage_kv)
    return 12.2643247 / math.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def _frequency_grid(image_size: int, pixel_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(k^2, theta) on the unshifted FFT grid, float64 [H, W]; kx along columns, ky along rows."""
    freqs = np.fft.fftfreq(image_size, d=pixel_size)
    ky, kx = np.meshgrid(freqs, freqs, indexing="ij")
    return kx**2 + ky**2, np.arctan2(ky, kx)


def _per_image(value) -> tf.Tensor:
    """A float64 tensor [..., 1, 1] that broadcasts over the [H, W] frequency grid."""
    return tf.cast(value, tf.float64)[..., tf.newaxis, tf.newaxis]


def ctf_2d(
    image_size: int,
    pixel_size: float,
    defocus_u,
    defocus_v,
    defocus_angle,
    voltage: float = 300.0,
    spherical_aberration: float = 2.7,
    amplitude_contrast: float = 0.1,
    phase_shift=0.0,
    b_factor=0.0,
) -> tf.Tensor:
    """CTF values on the unshifted 2D FFT grid of an image_size x image_size image.

    Graph-safe (tf.function, tf.data map). chi is computed in float64 because its k^2 and
    k^4 terms reach hundreds of radians at high resolution and large defocus. The grid is
    point-symmetric, ctf[-i, -j] == ctf[i, j]: on the Nyquist row/column of an even size,
    where the mirror of k is another grid point, the value is the mean over k and -k (it
    differs from the formula only with astigmatism at an oblique angle).

    Args:
        image_size: pixels per side, at least 2.
        pixel_size: Angstrom per pixel, positive.
        defocus_u: defocus along the defocus_angle azimuth, Angstrom (positive = underfocus);
            a number or a tensor of any batch shape.
        defocus_v: defocus along defocus_angle + 90 degrees, Angstrom; broadcastable with defocus_u.
        defocus_angle: azimuth of the defocus_u axis in degrees, counter-clockwise from +x
            (last axis) towards +y (second-to-last axis); broadcastable with defocus_u.
        voltage: accelerating voltage in kV, positive. Default value: 300.0.
        spherical_aberration: Cs in mm. Default value: 2.7.
        amplitude_contrast: amplitude contrast fraction A, in [0, 1). Default value: 0.1.
        phase_shift: extra phase in degrees (phase plate), added to chi like the amplitude
            contrast phase; broadcastable with defocus_u. Default value: 0.0.
        b_factor: B in Angstrom^2 of the envelope exp(-B k^2 / 4); broadcastable with
            defocus_u. Default value: 0.0.

    Returns:
        float32 [..., H, W], ... the broadcast batch shape of defocus_u, defocus_v,
        defocus_angle, phase_shift and b_factor (all scalars give [H, W]).

    Example:
        >>> ctf = ctf_2d(64, 1.0, 15000.0, 14000.0, 30.0)
        >>> ctf.shape, round(float(ctf[0, 0]), 6)
        (TensorShape([64, 64]), 0.1)
    """
    is_int = isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool)
    _require(is_int and image_size >= 2, "image_size", "an integer >= 2", image_size)
    _require(math.isfinite(pixel_size) and pixel_size > 0, "pixel_size", "positive (Angstrom)", pixel_size)
    amplitude = float(amplitude_contrast)
    _require(0.0 <= amplitude < 1.0, "amplitude_contrast", "in [0, 1)", amplitude_contrast)
    wavelength = electron_wavelength(voltage)  # validates voltage
    cs_angstrom = float(spherical_aberration) * 1e7

    k2_grid, theta_grid = _frequency_grid(int(image_size), float(pixel_size))
    k2, theta = tf.constant(k2_grid), tf.constant(theta_grid)
    du, dv = _per_image(defocus_u), _per_image(defocus_v)
    azimuth = _per_image(defocus_angle) * (math.pi / 180.0)
    defocus = 0.5 * (du + dv + (du - dv) * tf.cos(2.0 * (theta - azimuth)))
    chi = (
        math.pi * wavelength * defocus * k2
        - 0.5 * math.pi * cs_angstrom * wavelength**3 * k2**2
        + _per_image(phase_shift) * (math.pi / 180.0)
        + math.asin(amplitude)  # = arctan(A / sqrt(1 - A^2))
    )
    ctf = tf.sin(chi) * tf.exp(-0.25 * _per_image(b_factor) * k2)
    # For even sizes the Nyquist row/column holds both +k and -k aliases; averaging each value
    # with its mirror (-k) keeps the grid point-symmetric, so filtering a real image stays real.
    mirrored = tf.roll(tf.reverse(ctf, axis=[-2, -1]), shift=[1, 1], axis=[-2, -1])
    return tf.cast(0.5 * (ctf + mirrored), tf.float32)


def _filter(images, transfer) -> tf.Tensor:
    """real(ifft2(fft2(images) * transfer)) over the last two axes, float32."""
    images = tf.cast(images, tf.float32)
    spectrum = tf.signal.fft2d(tf.complex(images, tf.zeros_like(images)))
    transfer = tf.cast(transfer, tf.float32)
    filtered = tf.signal.ifft2d(spectrum * tf.complex(transfer, tf.zeros_like(transfer)))
    return tf.math.real(filtered)


def apply_ctf(images, ctf) -> tf.Tensor:
    """Convolve real-space images with the CTF point-spread function.

    Args:
        images: real images [..., H, W] (rows = y, columns = x).
        ctf: CTF on the unshifted FFT grid, [H, W] (shared by all images) or [..., H, W]
            broadcastable with images (one CTF per image), e.g. from ctf_2d.

    Returns:
        float32 real(ifft2(fft2(images) * ctf)), the broadcast shape of images and ctf.
        The CTF is point-symmetric (ctf(k) = ctf(-k)), so the dropped imaginary part is round-off.
    """
    return _filter(images, ctf)


def phase_flip(images, ctf) -> tf.Tensor:
    """Phase-flip CTF correction: real(ifft2(fft2(images) * sign(ctf))).

    Frequencies where ctf is exactly 0 are zeroed (sign(0) = 0).

    Args:
        images: real images [..., H, W].
        ctf: CTF on the unshifted FFT grid, [H, W] or [..., H, W] broadcastable with images.

    Returns:
        float32 phase-flipped images, the broadcast shape of images and ctf.
    """
    return _filter(images, tf.sign(tf.cast(ctf, tf.float32)))
