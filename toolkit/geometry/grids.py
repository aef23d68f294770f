"""An equal-volume hierarchical grid of SO(3): HEALPix view directions times in-plane angles.

Level k has HEALPix resolution Nside = 2^k (12 * 4^k directions, nested numbering) and
6 * 2^k in-plane angles psi_j = (j + 1/2) 2 pi / (6 * 2^k): 72 * 8^k rotations about
60 / 2^k degrees apart (576 at level 1, 4,608 at level 2, 36,864 at level 3), the grid of
Yershova et al. (2010) that Implicit-PDF and cryoDRGN search. A cell's 8 children at level
k + 1 are its 4 nested HEALPix children times the 2 in-plane angles around its own, so a
search can refine a candidate without visiting the whole finer grid.

A cell (pixel p, angle j) is the rotation of the Hopf coordinates (theta, phi, psi_j), (theta, phi)
the direction of p: the unit quaternion (w, x, y, z) = (cos(theta/2) cos(psi/2), cos(theta/2)
sin(psi/2), sin(theta/2) cos(phi + psi/2), sin(theta/2) sin(phi + psi/2)). Uniform directions and
uniform psi make it Haar-uniform, and unlike Euler angles the in-plane angle does not turn with
phi near the poles, so a cell's children stay next to it everywhere (Yershova et al. 2010).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation


def _healpy():
    try:
        import healpy  # here, not at the top: commands that need no grid start faster
    except ImportError:
        raise ImportError("the SO(3) grid needs healpy, a dependency of toolkit: pip install -e .") from None
    return healpy


def in_plane_count(level: int) -> int:
    """In-plane angles at a level: 6 * 2^level."""
    return 6 * 2**level


def step_degrees(level: int) -> float:
    """The typical spacing of the grid at a level, in degrees (60 / 2^level)."""
    return 60.0 / 2**level


def cell_rotations(level: int, pixels: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotation matrices float32 [..., 3, 3] of cells (HEALPix pixel, in-plane index) at a level."""
    pixels, angles = np.broadcast_arrays(np.asarray(pixels), np.asarray(angles))
    theta, phi = _healpy().pix2ang(2**level, pixels.ravel(), nest=True)
    psi = (angles.ravel() + 0.5) * (2 * math.pi / in_plane_count(level))
    w, x = np.cos(theta / 2) * np.cos(psi / 2), np.cos(theta / 2) * np.sin(psi / 2)
    y, z = np.sin(theta / 2) * np.cos(phi + psi / 2), np.sin(theta / 2) * np.sin(phi + psi / 2)
    matrices = Rotation.from_quat(np.stack([x, y, z, w], axis=1)).as_matrix()  # scipy: scalar last
    return matrices.reshape(*pixels.shape, 3, 3).astype(np.float32)


def hopf_coordinates(rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(theta, phi, psi) of rotations [N, 3, 3], the inverse of the cells' quaternion formula."""
    x, y, z, w = Rotation.from_matrix(np.asarray(rotations, np.float64)).as_quat().T
    theta = 2 * np.arctan2(np.hypot(y, z), np.hypot(w, x))
    half = np.arctan2(x, w)  # psi / 2, before reducing psi: phi needs this very half
    psi = np.mod(2 * half, 2 * math.pi)
    phi = np.mod(np.arctan2(z, y) - half, 2 * math.pi)
    return theta, phi, psi


def full_grid(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Every cell of a level: (pixels, angles), int64 [72 * 8^level] each."""
    pixels = np.arange(12 * 4**level)
    angles = np.arange(in_plane_count(level))
    return np.repeat(pixels, len(angles)), np.tile(angles, len(pixels))


def children(pixels: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8 children at the next level of each cell: (pixels, angles), [..., 8] each."""
    pixels, angles = np.asarray(pixels)[..., None], np.asarray(angles)[..., None]
    offsets = np.arange(8)
    return 4 * pixels + offsets // 2, 2 * angles + offsets % 2


def nearest_cells(level: int, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each rotation's cell and its neighbours: (pixels, angles), [N, 27] (9 directions x 3 angles).

    A direction at the edge of the sphere's pixelization may have fewer than 8 neighbours; the
    missing ones repeat the rotation's own pixel.
    """
    healpy, nside, count = _healpy(), 2**level, in_plane_count(level)
    theta, phi, psi = hopf_coordinates(rotations)
    own = healpy.ang2pix(nside, theta, phi, nest=True)
    around = healpy.get_all_neighbours(nside, own, nest=True).T  # [N, 8], -1 where none
    pixels = np.concatenate([own[:, None], np.where(around < 0, own[:, None], around)], axis=1)
    angle = np.floor(psi / (2 * math.pi / count)).astype(np.int64)
    angles = np.mod(angle[:, None] + np.array([-1, 0, 1]), count)
    return np.repeat(pixels, 3, axis=1), np.tile(angles, (1, 9))
