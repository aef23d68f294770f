"""One map superposed on another: the rotation, shift and hand that best align them.

A map learned without poses, or made by another program, sits in its own frame: turned, shifted
and possibly mirrored against the reference. `align_map` finds that transform by a global search
(every rotation of an SO(3) grid level, both hands, on low-passed copies at most `search_box`
voxels wide, each rotation's best shift from one FFT cross-correlation), then polishes the best
candidates' rotation and shift by Nelder-Mead on the correlation, first on the small copies and
then at full size.

Conventions: a map is `[z, y, x]` and turns about its centre voxel N // 2. The aligned map is
`aligned(p) = moving(R^T (p - c - s) + c)`, after the moving map is mirrored through the plane
z = c when `mirrored`; R and s are reported in (x, y, z) order, s in voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, optimize
from scipy.spatial.transform import Rotation

from toolkit.geometry import grids

#: Candidates of the global search polished by the local one.
CANDIDATES = 4


@dataclass(frozen=True, eq=False)
class MapAlignment:
    """How `moving` was superposed on `reference`, and the result.

    Attributes:
        rotation: float64 [3, 3] in (x, y, z) order.
        shift: float64 [3] voxels (x, y, z), applied after the rotation.
        mirrored: whether the moving map was mirrored (its hand flipped) first.
        correlation: the aligned maps' normalized correlation (1 for a perfect match).
        volume: float32 [z, y, x] the moving map aligned onto the reference.
    """

    rotation: np.ndarray
    shift: np.ndarray
    mirrored: bool
    correlation: float
    volume: np.ndarray


def mirror(volume: np.ndarray) -> np.ndarray:
    """The map mirrored through the plane z = N // 2 (index i -> 2 (N // 2) - i)."""
    flipped = np.flip(volume, axis=0)
    return np.roll(flipped, 1, axis=0) if len(volume) % 2 == 0 else flipped


def transform(volume: np.ndarray, rotation_zyx: np.ndarray, shift_zyx, order: int = 1) -> np.ndarray:
    """`volume` turned by a rotation in array (z, y, x) order about its centre, then shifted (voxels)."""
    centre = np.full(3, len(volume) // 2, np.float64)
    inverse = rotation_zyx.T
    offset = centre - inverse @ (centre + np.asarray(shift_zyx, np.float64))
    return ndimage.affine_transform(volume, inverse, offset=offset, order=order, mode="constant")


def low_pass(volume: np.ndarray, box: int) -> np.ndarray:
    """The map Fourier-cropped to at most `box` voxels a side (its centre voxel kept at N // 2)."""
    size = len(volume)
    if size <= box:
        return np.asarray(volume, np.float64)
    spectrum = np.fft.fftshift(np.fft.fftn(volume))
    start = size // 2 - box // 2
    cropped = spectrum[start : start + box, start : start + box, start : start + box]
    return np.fft.ifftn(np.fft.ifftshift(cropped)).real * (box / size) ** 3


def _normalized(volume: np.ndarray) -> np.ndarray:
    centred = volume - volume.mean()
    return centred / (np.linalg.norm(centred) or 1.0)


def _xyz(matrix_zyx: np.ndarray) -> np.ndarray:
    return matrix_zyx[::-1, ::-1]  # the same rotation with its axes in the other order


def _global_search(moving: np.ndarray, reference: np.ndarray, level: int, hands) -> list[tuple]:
    """The best `CANDIDATES` (score, mirrored, rotation zyx, shift zyx) over the grid and hands."""
    size = len(reference)
    target = np.fft.fftn(_normalized(reference))
    rotations = [_xyz(r.astype(np.float64)) for r in grids.cell_rotations(level, *grids.full_grid(level))]
    found = []
    for mirrored in hands:
        source = mirror(moving) if mirrored else moving
        for rotation in rotations:
            turned = _normalized(transform(source, rotation, np.zeros(3)))
            correlation = np.fft.ifftn(target * np.conj(np.fft.fftn(turned))).real
            peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
            shift = (np.array(peak) + size // 2) % size - size // 2  # signed, in voxels
            found.append((float(correlation[peak]), mirrored, rotation, shift.astype(np.float64)))
    found.sort(key=lambda item: -item[0])
    return found[:CANDIDATES]


def _polish(moving, reference, rotation, shift, step_degrees: float):
    """Nelder-Mead on a rotation vector and a shift, from (rotation, shift); (score, rotation, shift)."""
    target = _normalized(reference)

    def negative_correlation(parameters):
        turn = Rotation.from_rotvec(parameters[:3]).as_matrix() @ rotation
        return -float(np.sum(target * _normalized(transform(moving, turn, shift + parameters[3:]))))

    start = np.zeros(6)
    simplex = np.vstack([start, np.diag([np.radians(step_degrees)] * 3 + [1.0] * 3)])
    result = optimize.minimize(
        negative_correlation,
        start,
        method="Nelder-Mead",
        options={"initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-6, "maxfev": 1500},
    )
    turn = Rotation.from_rotvec(result.x[:3]).as_matrix() @ rotation
    return -float(result.fun), turn, shift + result.x[3:]


def align_map(
    moving, reference, search_box: int = 32, level: int = 1, try_mirror: bool = True
) -> MapAlignment:
    """Superpose `moving` on `reference`: rotation, shift and (with `try_mirror`) hand.

    Args:
        moving: float [N, N, N] map to align.
        reference: float [N, N, N] map to align it to, the same box.
        search_box: the side of the low-passed copies of the global search. Default value: `32`.
        level: the SO(3) grid level of the global search (576 rotations at level 1, about 30
            degrees apart). Default value: `1`.
        try_mirror: search the mirrored hand too. Default value: `True`.

    Returns:
        A `MapAlignment`.

    Raises:
        ValueError: the maps are not cubic, not of one box, or smaller than 8 voxels.
    """
    moving, reference = np.asarray(moving, np.float64), np.asarray(reference, np.float64)
    if moving.shape != reference.shape or moving.ndim != 3 or len(set(moving.shape)) != 1 or len(moving) < 8:
        raise ValueError(
            f"align_map: expected two cubic maps of one box of at least 8 voxels, got {moving.shape} "
            f"and {reference.shape}"
        )
    size, box = len(moving), min(search_box, len(moving))
    small_moving, small_reference = low_pass(moving, box), low_pass(reference, box)
    scale = size / box
    hands = (False, True) if try_mirror else (False,)
    best = None
    for _, mirrored, rotation, shift in _global_search(small_moving, small_reference, level, hands):
        source = mirror(small_moving) if mirrored else small_moving
        step = grids.step_degrees(level) / 2
        score, rotation, shift = _polish(source, small_reference, rotation, shift, step)
        if best is None or score > best[0]:
            best = (score, mirrored, rotation, shift)
    _, mirrored, rotation, shift = best
    source = mirror(moving) if mirrored else moving
    if scale > 1:  # the polish again at full size, from the small copies' answer
        _, rotation, shift = _polish(source, reference, rotation, shift * scale, step_degrees=2.0)
    aligned = transform(source, rotation, shift, order=3).astype(np.float32)
    correlation = float(np.sum(_normalized(aligned) * _normalized(reference)))
    return MapAlignment(_xyz(rotation), shift[::-1].copy(), mirrored, correlation, aligned)
