"""Parallel-beam projections ("shadows") of blob samples, batched and graph-safe.

`project_sample` and `sample_volume` serve every kind of sample: blobs through the exact
renderer below, maps (`toolkit.data.map_sample`) through the Fourier projector.

A blob at c is rotated to c' = R c, and the beam runs along +z, so the shadow is the
line integral of the density along z at each pixel centre (x, y). An isotropic 3D
Gaussian projects to the 2D Gaussian of the same mass, and a 2D isotropic Gaussian is
separable, so a batch of images is image[b] = A[b] diag(mass) B[b]^T with A over rows
(y) and B over columns (x).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from toolkit.data import projector
from toolkit.data.map_sample import MapSample
from toolkit.data.objects import BlobSample

SampleLike = BlobSample | tuple


def _check_grid(size: int, extent: float, name: str = "image_size") -> None:
    """Raise a one-line ValueError unless size is a positive int and extent positive."""
    is_int = isinstance(size, (int, np.integer)) and not isinstance(size, bool)
    if not (is_int and size >= 1):
        raise ValueError(f"`{name}` must be a positive integer, got {size!r}.")
    if not (math.isfinite(float(extent)) and float(extent) > 0):
        raise ValueError(f"`extent` must be positive, got {extent}.")


def pixel_size(image_size: int, extent: float) -> float:
    """Side of one pixel, in sample units, for an image spanning [-extent, extent].

    Args:
        image_size: pixels per side.
        extent: half-width of the field of view, in sample units.

    Example:
        >>> pixel_size(64, 0.75)
        0.0234375
    """
    _check_grid(image_size, extent)
    return 2.0 * float(extent) / int(image_size)


def pixel_centers(image_size: int, extent: float) -> np.ndarray:
    """Pixel-centre coordinates along one axis, float64 [image_size]; pixel N // 2 is at 0.

    Centre i is at (i - image_size // 2) * pixel_size: the origin of rotation is pixel N // 2,
    where RELION, cryoDRGN and ASPIRE put it, so images and maps mean the same in every
    program. The same grid serves rows (y) and columns (x), so row 0 is the lowest y (show
    images with origin="lower").

    Args:
        image_size: pixels per side.
        extent: half-width of the field of view, in sample units.

    Example:
        >>> pixel_centers(4, 1.0).tolist()
        [-1.0, -0.5, 0.0, 0.5]
    """
    step = pixel_size(image_size, extent)
    return (np.arange(image_size) - image_size // 2) * step


def _sample_tensors(sample: SampleLike) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(centers [N,3], weights [N], sigma) as float32 tensors; validates numpy input."""
    if not isinstance(sample, BlobSample):
        if not isinstance(sample, (tuple, list)) or len(sample) != 3:
            kind = type(sample).__name__
            expected = "a BlobSample or (centers, weights, sigma)"
            raise ValueError(f"`sample` must be {expected}, got {kind}.")
        if not any(tf.is_tensor(part) for part in sample):
            sample = BlobSample(*sample)  # numpy input: validate eagerly
    centers, weights, sigma = (
        (sample.centers, sample.weights, sample.sigma) if isinstance(sample, BlobSample) else sample
    )
    centers = tf.cast(centers, tf.float32)
    if centers.shape.rank is not None and not centers.shape.is_compatible_with([None, 3]):
        raise ValueError(f"`centers` must have shape [N, 3], got {centers.shape}.")
    return centers, tf.cast(weights, tf.float32), tf.cast(sigma, tf.float32)


def render_shadows(
    sample: SampleLike,
    rotations: tf.Tensor | np.ndarray,
    image_size: int,
    extent: float,
    translations: tf.Tensor | np.ndarray | None = None,
) -> tf.Tensor:
    """Exact parallel-beam shadows of a rotated blob sample, float32 [B, size, size].

    Each value is the density integrated along z (mass per unit area) at a pixel centre,
    so sum(image) * pixel_size**2 is the total mass when the sample lies in the field
    and sigma >= pixel_size. image[b, row, col] has row <-> y and col <-> x. Works
    eagerly, inside tf.function and inside tf.data map.

    Args:
        sample: a BlobSample, or a tuple (centers [N,3], weights [N], sigma) of
            arrays/tensors; sigma is one width or one per blob ([N]).
        rotations: [B, 3, 3] rotation matrices; each point is moved as x' = R x.
        image_size: pixels per side (a Python int).
        extent: the image spans [-extent, extent] in x and y, in sample units.
        translations: optional [B, 2] in-plane shifts (dx, dy) in sample units, applied
            after rotation. Default None (no shift).

    Example:
        >>> one = BlobSample([[0.0, 0.0, 0.3]], [1.0], 0.2)
        >>> image = render_shadows(one, np.eye(3, dtype=np.float32)[None], 16, 1.0)
        >>> image.shape
        TensorShape([1, 16, 16])
        >>> round(float(np.sum(image)) * pixel_size(16, 1.0) ** 2, 4)
        1.0
    """
    _check_grid(image_size, extent)
    centers, weights, sigma = _sample_tensors(sample)
    rotations = tf.cast(rotations, tf.float32)
    if rotations.shape.rank is not None and (
        rotations.shape.rank != 3 or not rotations.shape[1:].is_compatible_with([3, 3])
    ):
        raise ValueError(f"`rotations` must have shape [B, 3, 3], got {rotations.shape}.")
    grid = tf.constant(pixel_centers(image_size, extent), tf.float32)

    moved = tf.einsum("bij,nj->bni", rotations, centers)[..., :2]  # [B, N, (x, y)]
    if translations is not None:
        translations = tf.cast(translations, tf.float32)
        if translations.shape.rank is not None and (
            translations.shape.rank != 2 or not translations.shape[1:].is_compatible_with([2])
        ):
            raise ValueError(f"`translations` must have shape [B, 2], got {translations.shape}.")
        moved = moved + translations[:, None, :]

    scale = -0.5 / tf.square(sigma)

    def profile(coordinate: tf.Tensor) -> tf.Tensor:  # [B, N] -> [B, pixel, N]
        return tf.exp(scale * tf.square(grid[None, :, None] - coordinate[:, None, :]))

    mass = weights / (2.0 * math.pi * tf.square(sigma))  # 2D Gaussian normalization
    rows = profile(moved[..., 1]) * mass  # y profiles, [B, row, N]
    cols = profile(moved[..., 0])  # x profiles, [B, col, N]
    return tf.linalg.matmul(rows, cols, transpose_b=True)


def render_volume(sample: BlobSample, voxels: int, extent: float) -> np.ndarray:
    """The sample's 3D density at voxel centres, float32 [z, y, x], `voxels` per side.

    Uses the same centres as pixel_centers(voxels, extent) on every axis, so summing
    over axis 0 and multiplying by the voxel size approximates the unrotated shadow.

    Args:
        sample: the blob sample (unrotated).
        voxels: voxels per side.
        extent: the volume spans [-extent, extent] on each axis, in sample units.

    Example:
        >>> one = BlobSample([[0.0, 0.0, 0.0]], [1.0], 0.2)
        >>> volume = render_volume(one, 16, 1.0)
        >>> volume.shape, round(float(volume.sum()) * pixel_size(16, 1.0) ** 3, 4)
        ((16, 16, 16), 1.0)
    """
    _check_grid(voxels, extent, name="voxels")
    grid = pixel_centers(voxels, extent)
    s = np.reshape(np.asarray(sample.sigma, np.float64), (-1, 1))  # one width per blob, or one for all
    centers = sample.centers.astype(np.float64)
    # Separable again: one unit-mass 1D Gaussian per blob and axis.
    x, y, z = (
        np.exp(-0.5 * ((grid[None, :] - centers[:, axis, None]) / s) ** 2) / (math.sqrt(2 * math.pi) * s)
        for axis in range(3)
    )
    weights = sample.weights.astype(np.float64)
    density = np.einsum("k,kz,ky,kx->zyx", weights, z, y, x, optimize=True)
    return density.astype(np.float32)


def _check_map(sample: MapSample, size: int) -> None:
    if sample.volume.shape[0] != size:
        raise ValueError(
            f"the map is {sample.volume.shape[0]} voxels a side, the images {size}; "
            "resample it first with MapSample.on_grid"
        )


def project_sample(sample, rotations, image_size: int, extent: float, translations=None) -> tf.Tensor:
    """Shadows of a blob sample (`render_shadows`) or of a map on the images' grid (Fourier slice).

    The arguments are those of `render_shadows`; a map must have `image_size` voxels a side.
    """
    if not isinstance(sample, MapSample):
        return render_shadows(sample, rotations, image_size, extent, translations)
    _check_grid(image_size, extent)
    _check_map(sample, image_size)
    shifts = (
        None if translations is None else tf.cast(translations, tf.float32) / pixel_size(image_size, extent)
    )
    return projector.project_spectrum(sample.spectrum, rotations, image_size, sample.voxel_size, shifts)


def sample_volume(sample, voxels: int, extent: float) -> np.ndarray:
    """The density of a blob sample (`render_volume`) or a map on the images' grid, float32 [z, y, x]."""
    if not isinstance(sample, MapSample):
        return render_volume(sample, voxels, extent)
    _check_map(sample, voxels)
    return np.array(sample.volume)
