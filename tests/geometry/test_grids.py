"""The HEALPix x in-plane SO(3) grid: sizes, coverage against scipy's random rotations, hierarchy."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toolkit.geometry import grids


def angles_to_grid(rotations: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Geodesic degrees from each rotation to its nearest grid rotation, via quaternion dot products."""
    q = Rotation.from_matrix(rotations.astype(np.float64)).as_quat()
    g = Rotation.from_matrix(grid.astype(np.float64)).as_quat()
    return np.degrees(2 * np.arccos(np.clip(np.abs(q @ g.T).max(axis=1), 0, 1)))


@pytest.mark.parametrize("level", [1, 2])
def test_size_and_coverage(level):
    pixels, angles = grids.full_grid(level)
    assert len(pixels) == 72 * 8**level
    grid = grids.cell_rotations(level, pixels, angles)
    np.testing.assert_allclose(
        grid @ grid.transpose(0, 2, 1), np.broadcast_to(np.eye(3), grid.shape), atol=1e-5
    )
    random = Rotation.random(300, rng=np.random.default_rng(level)).as_matrix()
    distance = angles_to_grid(random, grid)
    # Equal volume: every rotation lies within one step of the grid, half of them within half a step.
    assert distance.max() < grids.step_degrees(level)
    assert np.median(distance) < 0.6 * grids.step_degrees(level)


def test_children_partition_the_next_level():
    pixels, angles = grids.full_grid(1)
    child_pixels, child_angles = grids.children(pixels, angles)
    cells = set(zip(child_pixels.ravel().tolist(), child_angles.ravel().tolist(), strict=True))
    finer = set(zip(*(a.tolist() for a in grids.full_grid(2)), strict=True))
    assert cells == finer and child_pixels.size == len(finer)


def test_nearest_cells_hold_a_cell_close_to_the_rotation():
    rotations = Rotation.random(20, rng=np.random.default_rng(7)).as_matrix()
    pixels, angles = grids.nearest_cells(3, rotations)
    assert pixels.shape == angles.shape == (20, 27)
    cells = grids.cell_rotations(3, pixels, angles)
    closest = [angles_to_grid(r[None], c)[0] for r, c in zip(rotations, cells, strict=True)]
    assert max(closest) < grids.step_degrees(3)


def test_a_cell_rotation_falls_in_its_own_cell():
    pixels, angles = grids.full_grid(2)
    chosen = np.random.default_rng(3).choice(len(pixels), 50, replace=False)
    found_pixels, found_angles = grids.nearest_cells(
        2, grids.cell_rotations(2, pixels[chosen], angles[chosen])
    )
    assert np.array_equal(found_pixels[:, 1], pixels[chosen]) and np.array_equal(
        found_angles[:, 1], angles[chosen]
    )
