"""Samples made of isotropic 3D Gaussian blobs: a thick letter F, random "molecules".

Atomic models (`toolkit.data.atomic_model`) are blob samples too, one blob per atom, each with
its own width, in Angstrom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Letter proportions as fractions of the height, chosen so that after centring every
# blob centre lies within 0.6 * size of the origin at any spacing (thickness <= 0.25).
_STEM_WIDTH = 0.20
_ARM_HEIGHT = 0.16
_TOP_ARM_WIDTH = 0.46
_MIDDLE_ARM_WIDTH = 0.36
_MAX_BLOBS = 2_000_000  # guards against a tiny `spacing` exhausting memory


def _positive(name: str, value: float) -> float:
    """Return `value` as float, or raise a one-line ValueError naming the argument."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be positive, got {value}.")
    return number


@dataclass(frozen=True, eq=False)
class BlobSample:
    """The density sum_k weights[k] * N3(x; centers[k], sigma_k^2 I) of Gaussian blobs.

    Arrays are copied to read-only float32, so a sample can be shared safely (e.g.
    captured by a tf.data pipeline).

    Args:
        centers: blob centres, shape [N, 3], in sample units.
        weights: blob masses, shape [N], all positive.
        sigma: Gaussian width (standard deviation), same units as `centers`: one float for
            every blob, or one per blob (shape [N]).
        angstrom: the units are Angstrom (atomic models), so the detector's field follows
            from the pixel size; False for the F and the random blobs, whose units are the
            sample's own. Default value: `False`.

    Example:
        >>> s = BlobSample([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], [1.0, 3.0], 0.1)
        >>> s.total_mass, s.center_of_mass.tolist(), s.radius
        (4.0, [-0.5, 0.0, 0.0], 1.0)
    """

    centers: np.ndarray
    weights: np.ndarray
    sigma: float | np.ndarray
    angstrom: bool = False

    def __post_init__(self) -> None:
        centers = np.array(self.centers, dtype=np.float32)
        weights = np.array(self.weights, dtype=np.float32)
        if centers.ndim != 2 or centers.shape[1] != 3 or centers.shape[0] == 0:
            raise ValueError(f"`centers` must have shape [N, 3] with N >= 1, got {centers.shape}.")
        if weights.shape != (centers.shape[0],):
            raise ValueError(f"`weights` must have shape [{centers.shape[0]}], got {weights.shape}.")
        if not np.all(np.isfinite(centers)):
            raise ValueError("`centers` must be finite, got a NaN or infinity.")
        if not np.all(np.isfinite(weights) & (weights > 0)):
            raise ValueError(f"`weights` must be positive, got min {weights.min()}.")
        centers.setflags(write=False)
        weights.setflags(write=False)
        object.__setattr__(self, "centers", centers)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "sigma", _widths(self.sigma, len(weights)))

    def widened_to(self, width: float) -> BlobSample:
        """The sample with every blob narrower than `width` blurred to `width` (mass kept).

        A blob of width s convolved with a Gaussian of width sqrt(width^2 - s^2) is a blob of
        width `width`: the renderer is exact only for blobs of at least a pixel.
        """
        widths = np.maximum(self.sigma, _positive("width", width))
        return BlobSample(self.centers, self.weights, widths, self.angstrom)

    def on_grid(self, image_size: int, pixel_size: float) -> BlobSample:
        """The sample as the detector's grid renders it exactly: blobs of at least `pixel_size`."""
        return self.widened_to(pixel_size)

    @property
    def total_mass(self) -> float:
        """Sum of the blob weights (the integral of the density)."""
        return float(self.weights.sum(dtype=np.float64))

    @property
    def center_of_mass(self) -> np.ndarray:
        """Weighted mean of the centres, float64 [3]."""
        w = self.weights.astype(np.float64)
        return (w @ self.centers.astype(np.float64)) / w.sum()

    @property
    def radius(self) -> float:
        """Largest distance of a blob centre from the origin (add ~3 sigma for mass)."""
        return float(np.linalg.norm(self.centers.astype(np.float64), axis=1).max())


def _widths(sigma, count: int) -> float | np.ndarray:
    """One positive float, or a read-only float32 [count] of positive widths."""
    if np.ndim(sigma) == 0:
        return _positive("sigma", sigma)
    widths = np.array(sigma, dtype=np.float32)
    if widths.shape != (count,):
        raise ValueError(f"`sigma` must be a number or have shape [{count}], got {widths.shape}.")
    if not np.all(np.isfinite(widths) & (widths > 0)):
        raise ValueError(f"`sigma` must be positive, got min {widths.min()}.")
    widths.setflags(write=False)
    return widths


def _centred(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Shift points (float64) so their weighted mean is the origin."""
    return points - (weights @ points) / weights.sum()


def letter_f(
    size: float = 1.0,
    thickness: float = 0.2,
    blob_sigma: float = 0.05,
    spacing: float | None = None,
) -> BlobSample:
    """A solid letter F of unit density, made of Gaussian blobs on a regular cubic grid.

    The F lies in the x-y plane (stem along y, arms towards +x, full-width top arm,
    shorter middle arm) and is extruded along z. The middle arm fills only the front
    half of the depth (z > 0), so the F has neither a rotation symmetry nor a mirror
    plane: an extruded F would equal its z-mirror, and R and its mirror twin would cast
    identical shadows. The F is centred on its centre of mass; for thickness <= 0.25
    every blob centre lies within 0.6 * size of the origin, so with blob_sigma <=
    0.05 * size any rotation stays inside an image spanning +-0.75 * size.

    Args:
        size: letter height (outline of the stem spans `size` along y). Default 1.0.
        thickness: depth along z as a fraction of `size`. Default 0.2.
        blob_sigma: Gaussian width of each blob, in sample units. Default 0.05.
        spacing: grid step in sample units; default None means 1.5 * blob_sigma
            (smooth density). Adjusted slightly so whole cells span the height.

    Example:
        >>> f = letter_f()
        >>> f.centers.shape, round(f.sigma, 3), bool(f.radius <= 0.6)
        ((143, 3), 0.05, True)
        >>> bool(np.abs(f.center_of_mass).max() < 1e-6)
        True
    """
    size = _positive("size", size)
    thickness = _positive("thickness", thickness)
    blob_sigma = _positive("blob_sigma", blob_sigma)
    spacing = 1.5 * blob_sigma if spacing is None else _positive("spacing", spacing)

    def cells(length: float) -> int:  # whole cells covering `length`, at least one
        return max(1, math.floor(length / step + 0.5))

    rows = max(1, math.floor(size / spacing + 0.5))
    step = size / rows
    stem, arm = cells(_STEM_WIDTH * size), cells(_ARM_HEIGHT * size)
    cols, middle = cells(_TOP_ARM_WIDTH * size), cells(_MIDDLE_ARM_WIDTH * size)
    layers = cells(thickness * size)
    if cols * rows * layers > _MAX_BLOBS:
        raise ValueError(f"`spacing` is too small for this size, got {spacing}.")

    filled = np.zeros((cols, rows, layers), dtype=bool)  # [x, y, z] cells
    filled[:stem] = True
    filled[:, rows - arm :] = True
    first = math.floor(rows / 2 - arm / 2 + 0.5)  # middle arm sits at mid-height
    filled[:middle, first : first + arm, layers - (layers + 1) // 2 :] = True

    points = (np.argwhere(filled) + 0.5) * step
    # Unit density: each blob carries the volume of its cell.
    weights = np.full(len(points), step**3)
    return BlobSample(_centred(points, weights), weights, blob_sigma)


def gaussian_blobs(count: int, radius: float = 0.5, sigma: float = 0.05, seed: int | None = 0) -> BlobSample:
    """A random "molecule": `count` blobs of random mass, centred on its centre of mass.

    Centres are drawn uniformly in a ball, re-centred, then shrunk if needed so every
    centre lies within `radius` of the origin. Masses are uniform in [0.5, 1.5].

    Args:
        count: number of blobs (>= 1).
        radius: bound on the distance of each centre from the origin. Default 0.5.
        sigma: Gaussian width of each blob. Default 0.05.
        seed: seed for numpy's default_rng; None draws fresh randomness. Default 0.

    Example:
        >>> m = gaussian_blobs(10, seed=1)
        >>> m.centers.shape, bool(m.radius <= 0.5 + 1e-6)
        ((10, 3), True)
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"`count` must be a positive integer, got {count!r}.")
    radius = _positive("radius", radius)
    sigma = _positive("sigma", sigma)
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    points = directions * radius * rng.uniform(size=(count, 1)) ** (1 / 3)
    weights = rng.uniform(0.5, 1.5, size=count)
    points = _centred(points, weights)
    farthest = np.linalg.norm(points, axis=1).max()
    if farthest > radius:
        # Centring can push a blob out; scaling about the origin keeps the centring.
        points *= radius / farthest
    return BlobSample(points, weights, sigma)
