"""Density maps (MRC) as samples, in Angstrom, seen through the Fourier projector.

A map keeps its own sampling until the shadow source puts it on the detector's grid
(`MapSample.on_grid`): `image_size` voxels of `pixel_size` Angstrom on a side, voxel N // 2 at
the origin as everywhere in the toolkit, by cubic-spline interpolation (scipy's
`map_coordinates`). A map sampled finer than the detector is first smoothed by a Gaussian of
half the new pixel (sigma = ratio / 2 of its own voxels), so that the coarser grid does not
alias. Voxels below `threshold` are set to zero (the solvent of an experimental map).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage

from toolkit.data import projector
from toolkit.io.mrc import read_map


@dataclass(frozen=True, eq=False)
class MapSample:
    """A cubic density map `volume` [z, y, x] of `voxel_size` Angstrom per voxel (read-only float32)."""

    volume: np.ndarray
    voxel_size: float
    angstrom = True

    def __post_init__(self) -> None:
        volume = np.array(self.volume, dtype=np.float32)
        if volume.ndim != 3 or len(set(volume.shape)) != 1:
            raise ValueError(f"`volume` must be a cube [D, D, D], got shape {volume.shape}.")
        if not (math.isfinite(self.voxel_size) and self.voxel_size > 0):
            raise ValueError(f"`voxel_size` must be positive, got {self.voxel_size}.")
        volume.setflags(write=False)
        object.__setattr__(self, "volume", volume)
        object.__setattr__(self, "voxel_size", float(self.voxel_size))

    @cached_property
    def spectrum(self) -> np.ndarray:
        """The padded, gridding-corrected spectrum the Fourier projector slices, computed once."""
        return projector.volume_spectrum(self.volume).numpy()

    def on_grid(self, image_size: int, pixel_size: float) -> MapSample:
        """The map resampled to `image_size`^3 voxels of `pixel_size` Angstrom (see the module docstring)."""
        size = self.volume.shape[0]
        if size == image_size and math.isclose(pixel_size, self.voxel_size, rel_tol=1e-6):
            return self
        ratio = pixel_size / self.voxel_size
        volume = self.volume.astype(np.float64)
        if ratio > 1:
            volume = ndimage.gaussian_filter(volume, ratio / 2, mode="constant")
        axis = (np.arange(image_size) - image_size // 2) * ratio + size // 2  # in the map's voxels
        points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))
        resampled = ndimage.map_coordinates(volume, points, order=3, mode="constant", cval=0.0)
        return MapSample(resampled, pixel_size)


def map_sample(path: str, threshold: float | None = None) -> MapSample:
    """The map of an MRC file as a sample; its voxel size from the header.

    Args:
        path: the MRC map (cubic box, voxel size in the header).
        threshold: set voxels below it to zero; None keeps every voxel. Default value: `None`.

    Raises:
        MrcFormatError: the file is not a cubic MRC map, or holds NaN (see `read_map`).
        ValueError: the header has no voxel size, or nothing is left above the threshold.
    """
    density = read_map(path)
    if density.pixel_size <= 0:
        raise ValueError(f"{path}: the header gives no voxel size; set it, e.g. with mrcfile's voxel_size")
    volume = density.volume
    if threshold is not None:
        volume = np.where(volume >= threshold, volume, 0.0)
        if not np.any(volume):
            raise ValueError(f"{path}: no voxel reaches threshold {threshold}; lower it")
    return MapSample(volume, density.pixel_size)
