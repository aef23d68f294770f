"""Direct Fourier inversion: a 3D map from particles at known poses, shifts and CTFs.

Each particle is zero-padded twice, centred by its shift, Fourier transformed and inserted as a
central slice (`toolkit.data.projector.insert_slices`, trilinear) into a padded 3D grid, times
its CTF; its CTF^2 goes into a weight grid. The map's spectrum is their ratio, Wiener-style:

    V(k) = sum_i CTF_i(k) F_i(k) / (sum_i CTF_i(k)^2 + regularization)

`regularization` stands for the noise-to-signal power of one particle at each frequency: 0 trusts
every particle fully (noise-free data), larger values damp the frequencies few particles reach.
Without a CTF every CTF_i is 1 and the ratio is an average. The inverse FFT is then cropped to
the box and divided by the trilinear kernel's sinc^2 (gridding correction), as RELION does.

Units: the map's projection along z (summed over voxels) reproduces the particles, so a
reconstruction of `toolkit simulate`'s particles is on the scale of its `truth.mrc`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from toolkit.data.ctf import ctf_2d
from toolkit.data.projector import gridding_correction, images_to_spectra, insert_slices, phase_shift

PAD = 2


@dataclass(frozen=True)
class Microscope:
    """The CTFs of a set of particles: float64 [N] arrays (or scalars) in RELION's units.

    Defocus in Angstrom, its azimuth and the phase shift in degrees, voltage in kV, spherical
    aberration in mm, B-factor in Angstrom^2; `pixel_size` in Angstrom is shared.
    """

    pixel_size: float
    defocus_u: np.ndarray
    defocus_v: np.ndarray
    defocus_angle: np.ndarray
    voltage: np.ndarray | float = 300.0
    spherical_aberration: np.ndarray | float = 2.7
    amplitude_contrast: np.ndarray | float = 0.1
    phase_shift: np.ndarray | float = 0.0
    b_factor: np.ndarray | float = 0.0

    def ctf(self, rows: np.ndarray, size: int) -> tf.Tensor:
        """Centred CTFs [len(rows), size, size] of the chosen particles on a side of `size` pixels."""

        def pick(value):
            return np.broadcast_to(np.asarray(value, np.float64), np.shape(self.defocus_u))[rows]

        optics = np.stack(
            [pick(self.voltage), pick(self.spherical_aberration), pick(self.amplitude_contrast)], 1
        )
        out = np.zeros((len(rows), size, size), np.float32)
        for group in np.unique(optics, axis=0):  # ctf_2d takes one voltage, Cs and amplitude contrast
            members = np.flatnonzero(np.all(optics == group, axis=1))
            out[members] = ctf_2d(
                size,
                self.pixel_size,
                pick(self.defocus_u)[members],
                pick(self.defocus_v)[members],
                pick(self.defocus_angle)[members],
                voltage=group[0],
                spherical_aberration=group[1],
                amplitude_contrast=group[2],
                phase_shift=pick(self.phase_shift)[members],
                b_factor=pick(self.b_factor)[members],
            ).numpy()
        return tf.signal.fftshift(tf.constant(out), axes=[-2, -1])


class Accumulator:
    """Sums of CTF-weighted slices and of CTF^2 weights on the padded grid of a box of `size`."""

    def __init__(self, size: int):
        self.size, self.padded = int(size), PAD * int(size)
        self.data = tf.zeros([self.padded] * 3, tf.complex64)
        self.weight = tf.zeros([self.padded] * 3, tf.float32)

    def add(self, images, rotations, shifts=None, ctf=None) -> None:
        """Insert particles [B, S, S] at poses [B, 3, 3], centring them by `shifts` [B, 2] pixels.

        `shifts` is the move that centres each particle (RELION's origin in pixels); `ctf` holds
        centred CTFs [B, P, P] on the padded grid, or None for none.
        """
        data, weight = _insert(
            tf.constant(images, tf.float32),
            tf.constant(rotations, tf.float32),
            tf.zeros([len(images), 2]) if shifts is None else tf.constant(shifts, tf.float32),
            tf.ones([1, self.padded, self.padded]) if ctf is None else tf.cast(ctf, tf.float32),
            self.padded,
        )
        self.data += data
        self.weight += weight

    def merge(self, other: Accumulator) -> None:
        """Add another accumulator's sums (e.g. of another shard of the particles)."""
        if other.size != self.size:
            raise ValueError(
                f"cannot merge the sums of a {other.size}-pixel box into a {self.size}-pixel box"
            )
        self.data += other.data
        self.weight += other.weight

    def arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The sums as numpy arrays (for `np.savez`), their names prefixed."""
        return {f"{prefix}data": self.data.numpy(), f"{prefix}weight": self.weight.numpy()}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "") -> Accumulator:
        """An accumulator holding the sums of `arrays(prefix)`."""
        data = np.asarray(arrays[f"{prefix}data"])
        total = cls(data.shape[0] // PAD)
        total.data, total.weight = tf.constant(data), tf.constant(np.asarray(arrays[f"{prefix}weight"]))
        return total

    def volume(self, regularization: float) -> np.ndarray:
        """The map [D, D, D] (z y x, voxel D // 2 at the origin) of the sums so far, float32."""
        spectrum = tf.math.divide_no_nan(self.data, tf.complex(self.weight + float(regularization), 0.0))
        padded = tf.math.real(tf.signal.fftshift(tf.signal.ifft3d(tf.signal.ifftshift(spectrum))))
        start = self.padded // 2 - self.size // 2
        box = padded[start : start + self.size, start : start + self.size, start : start + self.size]
        return (box / gridding_correction(self.size, self.padded)).numpy()


@tf.function(reduce_retracing=True)
def _insert(images, rotations, shifts, ctf, padded: int):
    spectra = phase_shift(images_to_spectra(images, padded), shifts)
    ctf = tf.broadcast_to(ctf, tf.shape(spectra))
    data = insert_slices(spectra * tf.complex(ctf, tf.zeros_like(ctf)), rotations, padded)
    return data, insert_slices(tf.square(ctf), rotations, padded)


def accumulate(
    images: np.ndarray,
    rotations: np.ndarray,
    shifts: np.ndarray | None = None,
    microscope: Microscope | None = None,
    halves: np.ndarray | None = None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, Accumulator]:
    """The Fourier sums of particles, one `Accumulator` per half (1 and 2; all in half 1 by default).

    Args:
        images: the particles [N, D, D], rows y and columns x, pixel D // 2 at the origin.
        rotations: their poses [N, 3, 3] (x' = R x).
        shifts: [N, 2] (x, y) pixels that centre each particle (RELION's rlnOriginX/Y over the
            pixel size); None for centred particles.
        microscope: their CTFs; None for none.
        halves: [N] the half (1 or 2) of each particle; None puts all in half 1.
        batch_size: particles per insertion. Default value: 64.
        progress: called with (particles done in the batch, all particles) after each batch.
    """
    size = int(images.shape[-1])
    totals = {1: Accumulator(size), 2: Accumulator(size)}
    halves = np.ones(len(images), np.int64) if halves is None else np.asarray(halves)
    for start in range(0, len(images), batch_size):
        rows = np.arange(start, min(start + batch_size, len(images)))
        ctf = None if microscope is None else microscope.ctf(rows, totals[1].padded).numpy()
        for half, total in totals.items():
            chosen = np.flatnonzero(halves[rows] == half)
            if chosen.size:
                total.add(
                    images[rows[chosen]],
                    rotations[rows[chosen]],
                    None if shifts is None else shifts[rows[chosen]],
                    None if ctf is None else ctf[chosen],
                )
        if progress is not None:
            progress(len(rows), len(images))
    return totals


def reconstruct(
    images: np.ndarray,
    rotations: np.ndarray,
    shifts: np.ndarray | None = None,
    microscope: Microscope | None = None,
    regularization: float = 1.0,
    batch_size: int = 64,
) -> np.ndarray:
    """The map [D, D, D] of particles at their poses (see `accumulate` for the arguments).

    `regularization` is the Wiener constant added to the CTF^2 sum (see the module).
    """
    return accumulate(images, rotations, shifts, microscope, batch_size=batch_size)[1].volume(regularization)
