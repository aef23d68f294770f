"""Fourier shell correlation (FSC) of two 3D maps, and the resolution where it falls below a threshold.

Conventions:

* Maps are cubic `[z, y, x]` arrays of one box D. Frequencies k are in Fourier pixels on the
  unshifted FFT grid (`np.fft.fftfreq(D) * D` per axis), and shell r holds the k with
  round(|k|) = r, for r = 0 .. D // 2 (Nyquist for an even box); the corners of the cube
  beyond D // 2 are ignored.
* FSC(r) = Re(sum_r F1 conj(F2)) / sqrt(sum_r |F1|^2 sum_r |F2|^2), 0 where a denominator is 0.
  The sums run over the whole shell; the transforms are real FFTs (half the cube), each
  column except x = 0 (and x = D/2 for an even box) counted twice for its Hermitian partner.
* Shell r is the frequency r / D cycles per pixel, r / (D * pixel_size) per Angstrom, and a
  resolution of D / r pixels.
* Symmetry is C1: the maps are compared as given. numpy only (no TensorFlow import).

Example:

>>> volume = np.random.default_rng(0).normal(size=(8, 8, 8))
>>> curve = fsc_curve(volume, volume)
>>> curve.shells.tolist(), np.allclose(curve.fsc, 1.0)
([0, 1, 2, 3, 4], True)
>>> print(resolution(curve, 0.143, pixel_size=1.5))
None

References:
    van Heel, M. & Schatz, M. (2005). Fourier shell correlation threshold criteria.
    J. Struct. Biol. 151, 250-262.
    Rosenthal, P. B. & Henderson, R. (2003). Optimal determination of particle orientation,
    absolute hand, and contrast loss in single-particle electron cryomicroscopy.
    J. Mol. Biol. 333, 721-745 (the 0.143 criterion for two independent half maps).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.io.atomic import write_text_atomically


@dataclass(frozen=True, eq=False)
class FscCurve:
    """The FSC of two maps, shell by shell.

    Attributes:
        shells: int `[D // 2 + 1]`, the shell radii r = 0 .. D // 2 in Fourier pixels.
        frequency: float64, r / D in cycles per pixel.
        fsc: float64, the correlation of each shell, in [-1, 1].
    """

    shells: np.ndarray
    frequency: np.ndarray
    fsc: np.ndarray


@dataclass(frozen=True)
class Resolution:
    """Where an FSC curve falls below a threshold.

    Attributes:
        threshold: the FSC value, e.g. 0.143.
        frequency: cycles per pixel of the crossing.
        pixels: the resolution in pixels, 1 / frequency.
        angstrom: the resolution in Angstrom, pixels * pixel_size.
    """

    threshold: float
    frequency: float
    pixels: float
    angstrom: float


def _checked(name: str, array, shape: tuple[int, ...] | None = None) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "iuf" or array.ndim != 3 or len(set(array.shape)) != 1 or array.size == 0:
        raise ValueError(
            f"`{name}` must be a cubic [D, D, D] array of real numbers, got shape {array.shape} "
            f"dtype {array.dtype}."
        )
    if shape is not None and array.shape != shape:
        raise ValueError(f"`{name}` must have the box of map1 {shape}, got {array.shape}.")
    return array.astype(np.float64, copy=False)


def _shell_of_each_frequency(box: int) -> np.ndarray:
    """round(|k|) on the real-FFT grid `[D, D, D // 2 + 1]`."""
    k = np.rint(np.fft.fftfreq(box) * box)
    kx = np.arange(box // 2 + 1)
    squared = k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx[None, None, :] ** 2
    # sqrt of an integer is never exactly halfway between integers, so rounding has no ties
    return np.rint(np.sqrt(squared)).astype(np.int64)


def fsc_curve(map1, map2, mask=None) -> FscCurve:
    """The Fourier shell correlation of two maps of one cubic box.

    Args:
        map1: real `[D, D, D]` map.
        map2: real `[D, D, D]` map, e.g. the other half map.
        mask: real `[D, D, D]` weights multiplied into both maps before the transform (a soft
            solvent mask, usually in [0, 1]), or `None`. Default value: `None`.

    Returns:
        An `FscCurve` with shells r = 0 .. D // 2.

    Raises:
        ValueError: a map or the mask is not a cubic real array of one box.
    """
    first = _checked("map1", map1)
    second = _checked("map2", map2, first.shape)
    if mask is not None:
        weights = _checked("mask", mask, first.shape)
        first, second = first * weights, second * weights
    box = first.shape[0]
    count = box // 2 + 1
    transform1, transform2 = np.fft.rfftn(first), np.fft.rfftn(second)
    multiplicity = np.full(count, 2.0)
    multiplicity[0] = 1.0
    if box % 2 == 0:
        multiplicity[-1] = 1.0  # the Nyquist plane is its own Hermitian partner
    # frequencies beyond D // 2 go to one overflow bin, dropped below
    shell = np.minimum(_shell_of_each_frequency(box), count).ravel()

    def shell_sums(values: np.ndarray) -> np.ndarray:
        return np.bincount(shell, (values * multiplicity).ravel(), minlength=count + 1)[:count]

    cross = shell_sums(transform1.real * transform2.real + transform1.imag * transform2.imag)
    denominator = np.sqrt(shell_sums(np.abs(transform1) ** 2) * shell_sums(np.abs(transform2) ** 2))
    fsc = np.divide(cross, denominator, out=np.zeros(count), where=denominator > 0)
    shells = np.arange(count)
    return FscCurve(shells=shells, frequency=shells / box, fsc=fsc)


def _checked_pixel_size(pixel_size) -> float:
    size = float(pixel_size)
    if not np.isfinite(size) or size <= 0:
        raise ValueError(
            f"`pixel_size` must be a finite number > 0 (Angstrom per pixel), got {pixel_size!r}."
        )
    return size


def resolution(curve: FscCurve, threshold: float, pixel_size: float) -> Resolution | None:
    """The first crossing of `threshold` after shell 0, linearly interpolated in frequency.

    The crossing lies between the first shell r >= 1 whose FSC is below `threshold` and shell
    r - 1. When that is shell 1 and shell 0 is not above the threshold either (zero-mean maps
    have FSC(0) = 0), the crossing is taken at shell 1: a resolution of the whole box.

    Args:
        curve: from `fsc_curve`.
        threshold: FSC value, e.g. 0.143 for two independent half maps, 0.5 against a truth.
        pixel_size: Angstrom per pixel (> 0).

    Returns:
        A `Resolution`, or `None` when the curve never falls below `threshold` (the
        resolution is better than the last shell, Nyquist for an even box).

    Example:
        >>> curve = FscCurve(np.arange(5), np.arange(5) / 8, np.array([1.0, 0.9, 0.7, 0.3, 0.1]))
        >>> resolution(curve, 0.5, pixel_size=2.0)
        Resolution(threshold=0.5, frequency=0.3125, pixels=3.2, angstrom=6.4)
    """
    size = _checked_pixel_size(pixel_size)
    fsc, frequency = np.asarray(curve.fsc, np.float64), np.asarray(curve.frequency, np.float64)
    below = np.flatnonzero(fsc[1:] < threshold)
    if below.size == 0:
        return None
    shell = int(below[0]) + 1
    before, after = fsc[shell - 1], fsc[shell]
    if shell == 1 and before <= threshold:
        fraction = 1.0
    else:
        fraction = (before - threshold) / (before - after)
    crossing = float(frequency[shell - 1] + fraction * (frequency[shell] - frequency[shell - 1]))
    pixels = 1.0 / crossing
    return Resolution(threshold=float(threshold), frequency=crossing, pixels=pixels, angstrom=pixels * size)


def write_fsc_csv(path: str | os.PathLike, curve: FscCurve, pixel_size: float) -> Path:
    """Write the curve as CSV, atomically (an existing file is replaced).

    Columns: `shell`, `frequency_per_pixel`, `frequency_per_angstrom`, `resolution_angstrom`
    (`inf` for shell 0) and `fsc`.

    Args:
        path: the CSV file; its folder must exist.
        curve: from `fsc_curve`.
        pixel_size: Angstrom per pixel (> 0).

    Returns:
        `path` as a `Path`.
    """
    size = _checked_pixel_size(pixel_size)
    lines = ["shell,frequency_per_pixel,frequency_per_angstrom,resolution_angstrom,fsc"]
    for shell, frequency, value in zip(curve.shells, curve.frequency, curve.fsc):
        angstrom = size / frequency if frequency > 0 else float("inf")
        lines.append(f"{int(shell)},{frequency:.8g},{frequency / size:.8g},{angstrom:.8g},{value:.8g}")
    return write_text_atomically(path, "\n".join(lines) + "\n")
