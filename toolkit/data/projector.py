"""Projections of voxel maps, batched and differentiable: the Fourier slice and the ray sum.

Frames and conventions are those of `toolkit.data.render` and of RELION: a map is
`[z, y, x]`, voxel (and pixel) N // 2 is the origin, a pose R moves the sample as x' = R x
and the beam runs along +z, so the shadow is the integral of rho(R^T x') along z. Spectra are
centred: index j of a side of n holds the frequency (j - n // 2) / n cycles per pixel.

The Fourier projector follows RELION's choices: the map is zero-padded twice (`pad=2`) before
its 3D FFT, a slice is read by trilinear interpolation, and the map is first divided by the
interpolation kernel's transform, sinc^2 of the coordinate over the padded box on each axis
(gridding correction), so the box edges are not damped. `insert_slices` is the exact adjoint
of `slice_spectrum`: the same eight weights scatter back what they gathered.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _centred(n: int) -> np.ndarray:
    """Coordinates of a side of n voxels with voxel n // 2 at 0."""
    return np.arange(n) - n // 2


def gridding_correction(size: int, padded_size: int) -> np.ndarray:
    """sinc^2(r / padded_size) per axis, float32 [size, size, size]: trilinear interpolation's damping."""
    profile = np.sinc(_centred(size) / padded_size) ** 2
    return np.einsum("i,j,k->ijk", profile, profile, profile).astype(np.float32)


def _check_volume(volume: tf.Tensor) -> int:
    shape = volume.shape
    if shape.rank != 3 or len(set(shape.as_list())) != 1 or shape[0] is None:
        raise ValueError(f"the map must be a cube [D, D, D] of known size, got shape {shape}")
    return int(shape[0])


def volume_spectrum(volume, pad: int = 2, correct: bool = True) -> tf.Tensor:
    """The centred 3D spectrum of a map, zero-padded `pad` times, complex64 [P, P, P].

    Args:
        volume: the map [D, D, D], z y x, voxel D // 2 at the origin; a tensor to differentiate.
        pad: padding factor, P = pad * D. Default value: 2 (RELION's).
        correct: divide by `gridding_correction` first, for trilinear slicing. Default value: True.
    """
    volume = tf.convert_to_tensor(volume, tf.float32)
    size = _check_volume(volume)
    padded = pad * size
    if correct:
        volume = volume / gridding_correction(size, padded)
    before = padded // 2 - size // 2
    volume = tf.pad(volume, [[before, padded - size - before]] * 3)
    spectrum = tf.signal.fft3d(tf.complex(tf.signal.ifftshift(volume), tf.zeros_like(volume)))
    return tf.signal.fftshift(spectrum)


def _slice_points(rotations: tf.Tensor, size: int, padded_size: int) -> tf.Tensor:
    """Fractional spectrum indices (z, y, x) of each pixel's frequency R^T (kx, ky, 0): [B, S, S, 3]."""
    k = tf.constant(_centred(size) * (padded_size / size), tf.float32)  # in padded Fourier pixels
    ky, kx = tf.meshgrid(k, k, indexing="ij")
    return _points_at(rotations, kx, ky, padded_size)


def _points_at(rotations: tf.Tensor, kx: tf.Tensor, ky: tf.Tensor, padded_size: int) -> tf.Tensor:
    """Fractional spectrum indices [B, *kx.shape, 3] of frequencies (kx, ky) in padded Fourier pixels."""
    rows = tf.cast(rotations, tf.float32)
    kx, ky = kx[None, ..., None], ky[None, ..., None]
    extra = [1] * (len(kx.shape) - 2)
    first, second = (tf.reshape(rows[:, i, :], [-1, *extra, 3]) for i in (0, 1))
    # R^T k = kx R[0, :] + ky R[1, :], in (x, y, z); reversed to the map's (z, y, x) index order.
    return tf.reverse(kx * first + ky * second, [-1]) + float(padded_size // 2)


def _trilinear(points: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Flat indices [..., 8] of the corners around each point in a cube of `size`, and their weights.

    A corner outside the cube gets weight 0 (and some index inside), so it reads and writes
    nothing. Weights are products of per-axis weights, computed once per point rather than per
    corner: the reads of a search are this function's cost.
    """
    base = tf.floor(points)
    frac = points - base
    base = tf.cast(base, tf.int32)
    axes = []  # per axis: (indices [..., 2], weights [..., 2]) of the lower and the upper corner
    for axis in range(3):
        at = base[..., axis, None] + tf.constant([0, 1], tf.int32)
        f = frac[..., axis, None]
        weight = tf.concat([1.0 - f, f], -1) * tf.cast((at >= 0) & (at < size), tf.float32)
        axes.append((tf.clip_by_value(at, 0, size - 1), weight))
    (z, wz), (y, wy), (x, wx) = axes
    flat = (z[..., :, None, None] * size + y[..., None, :, None]) * size + x[..., None, None, :]
    weights = wz[..., :, None, None] * wy[..., None, :, None] * wx[..., None, None, :]
    shape = tf.concat([tf.shape(points)[:-1], [8]], 0)
    return tf.reshape(flat, shape), tf.reshape(weights, shape)


def slice_spectrum(spectrum: tf.Tensor, rotations, size: int) -> tf.Tensor:
    """Central slices of a padded spectrum at `rotations`, centred 2D spectra complex64 [B, S, S].

    Differentiable in the spectrum and in the rotations (through the interpolation weights).

    Args:
        spectrum: from `volume_spectrum`, [P, P, P].
        rotations: [B, 3, 3] poses.
        size: side S of the images whose spectra these are (the map's D).
    """
    padded = int(spectrum.shape[0])
    indices, weights = _trilinear(_slice_points(rotations, size, padded), padded)
    values = tf.gather(tf.reshape(spectrum, [-1]), indices)
    return tf.reduce_sum(values * tf.complex(weights, tf.zeros_like(weights)), axis=-1)


def slice_at(spectrum: tf.Tensor, rotations, frequencies) -> tf.Tensor:
    """Central-slice values at chosen frequencies: complex64 [B, K] for (kx, ky) [K, 2] in cycles per pixel.

    The same trilinear read as `slice_spectrum`, at only the frequencies a search needs.
    """
    padded = int(spectrum.shape[0])
    frequencies = tf.cast(frequencies, tf.float32) * float(padded)  # in padded Fourier pixels
    indices, weights = _trilinear(_points_at(rotations, frequencies[:, 0], frequencies[:, 1], padded), padded)
    values = tf.gather(tf.reshape(spectrum, [-1]), indices)
    return tf.reduce_sum(values * tf.complex(weights, tf.zeros_like(weights)), axis=-1)


def spectra_to_images(spectra: tf.Tensor) -> tf.Tensor:
    """Real images [B, S, S] of centred spectra: pixel S // 2 is the origin."""
    return tf.math.real(
        tf.signal.fftshift(tf.signal.ifft2d(tf.signal.ifftshift(spectra, axes=[-2, -1])), axes=[-2, -1])
    )


def images_to_spectra(images, padded_size: int | None = None) -> tf.Tensor:
    """Centred spectra [B, P, P] of real images [B, S, S], zero-padded to P (default S) about pixel S // 2."""
    images = tf.convert_to_tensor(images, tf.float32)
    size = int(images.shape[-1])
    padded = padded_size or size
    before = padded // 2 - size // 2
    images = tf.pad(images, [[0, 0]] + [[before, padded - size - before]] * 2)
    shifted = tf.signal.ifftshift(images, axes=[-2, -1])
    return tf.signal.fftshift(tf.signal.fft2d(tf.complex(shifted, tf.zeros_like(shifted))), axes=[-2, -1])


def project(volume, rotations, voxel_size: float = 1.0, pad: int = 2) -> tf.Tensor:
    """Shadows of a map by the Fourier slice theorem, float32 [B, D, D].

    Each pixel is the line integral of the map along the beam: the sum over z of the rotated
    map times `voxel_size`, the units `toolkit.data.render.render_shadows` uses for a blob sample.

    Example:
        >>> blob = np.zeros((8, 8, 8), np.float32); blob[4, 4, 4] = 1.0
        >>> image = project(blob, np.eye(3, dtype=np.float32)[None])
        >>> image.shape, round(float(tf.reduce_sum(image)), 3)
        (TensorShape([1, 8, 8]), 1.0)
    """
    spectrum = volume_spectrum(volume, pad)
    return project_spectrum(spectrum, rotations, int(spectrum.shape[0]) // pad, voxel_size)


def project_spectrum(spectrum, rotations, size: int, voxel_size: float = 1.0, shifts=None) -> tf.Tensor:
    """`project` from a `volume_spectrum` computed once, float32 [B, size, size].

    Args:
        spectrum: the padded centred spectrum of a map of `size` voxels a side.
        rotations: poses [B, 3, 3].
        size: the map's (and the images') side in voxels.
        voxel_size: the map's voxel size, the unit of the line integral. Default value: 1.0.
        shifts: [B, 2] moves (x, y) in pixels, out(r) = in(r - s), applied as a phase ramp;
            None for none. Default value: None.
    """
    slices = slice_spectrum(spectrum, rotations, size)
    if shifts is not None:
        slices = phase_shift(slices, shifts)
    return spectra_to_images(slices) * voxel_size


def phase_shift(spectra: tf.Tensor, shifts) -> tf.Tensor:
    """Centred spectra [B, P, P] of images moved by `shifts` [B, 2] (x, y) pixels: out(r) = in(r - s)."""
    size = int(spectra.shape[-1])
    k = tf.constant((np.arange(size) - size // 2) / size, tf.float32)
    shifts = tf.cast(shifts, tf.float32)
    phase = (
        -2.0
        * np.pi
        * (k[None, None, :] * shifts[:, 0, None, None] + k[None, :, None] * shifts[:, 1, None, None])
    )
    return spectra * tf.exp(tf.complex(tf.zeros_like(phase), phase))


def project_real_space(volume, rotations, voxel_size: float = 1.0) -> tf.Tensor:
    """Shadows of a map by trilinear sampling along rays, float32 [B, D, D]: O(D^3) per image.

    The slow, direct reference for `project`: D samples per ray, one voxel apart.
    """
    volume = tf.convert_to_tensor(volume, tf.float32)
    size = _check_volume(volume)
    c = tf.constant(_centred(size), tf.float32)
    z, y, x = tf.meshgrid(c, c, c, indexing="ij")  # the image frame: ray along z, pixel (y, x)
    frame = tf.stack([x, y, z], axis=-1)  # [z, y, x, 3] in (x, y, z)
    # A point x' of the image frame reads the map at R^T x'.
    points = tf.einsum("bji,zyxj->bzyxi", tf.cast(rotations, tf.float32), frame)
    indices, weights = _trilinear(tf.reverse(points, [-1]) + float(size // 2), size)
    values = tf.reduce_sum(tf.gather(tf.reshape(volume, [-1]), indices) * weights, axis=-1)
    return tf.reduce_sum(values, axis=1) * voxel_size


def insert_slices(values, rotations, padded_size: int) -> tf.Tensor:
    """The adjoint of `slice_spectrum`: centred 2D spectra scattered into a [P, P, P] volume.

    Args:
        values: [B, S, S] complex or real values on the centred grid of images of side S.
        rotations: [B, 3, 3] poses.
        padded_size: side P of the 3D grid; the 2D index j lands at P // 2 + (j - S // 2) P / S.

    Returns:
        The sum over slices of each value times its eight trilinear weights, [P, P, P], of the
        values' dtype (complex64 or float32).
    """
    values = tf.convert_to_tensor(values)
    size = int(values.shape[-1])
    indices, weights = _trilinear(_slice_points(rotations, size, padded_size), padded_size)
    if values.dtype.is_complex:
        weights = tf.complex(weights, tf.zeros_like(weights))
    spread = values[..., None] * tf.cast(weights, values.dtype)
    total = tf.math.unsorted_segment_sum(tf.reshape(spread, [-1]), tf.reshape(indices, [-1]), padded_size**3)
    return tf.reshape(total, [padded_size] * 3)
