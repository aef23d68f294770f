"""Projection matching recovers known poses and shifts of exact projections (scipy's rotations)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from toolkit.data.objects import letter_f
from toolkit.data.render import pixel_size, render_shadows, render_volume
from toolkit.geometry import grids
from toolkit.reconstruction.refine import (
    MapReference,
    Matcher,
    RenderedReference,
    Schedule,
    exhaustive_search,
    refine,
)

SIZE, EXTENT = 32, 0.75
SAMPLE = letter_f(blob_sigma=0.04)


def degrees_between(a, b):
    return np.degrees(
        Rotation.from_matrix(
            np.asarray(a, np.float64) @ np.asarray(b, np.float64).transpose(0, 2, 1)
        ).magnitude()
    )


@pytest.fixture(scope="module")
def particles():
    poses = Rotation.random(6, rng=np.random.default_rng(5)).as_matrix().astype(np.float32)
    centres = np.random.default_rng(6).normal(0, 1.5, size=(6, 2)).astype(np.float32)  # pixels
    images = render_shadows(SAMPLE, poses, SIZE, EXTENT, centres * pixel_size(SIZE, EXTENT)).numpy()
    return poses, centres, images / pixel_size(SIZE, EXTENT)


def test_a_perturbed_pose_returns_to_the_truth(particles):
    poses, centres, images = particles
    nudge = Rotation.from_rotvec(np.random.default_rng(8).normal(size=(6, 3)) * np.radians(4.0))
    initial = (nudge * Rotation.from_matrix(poses.astype(np.float64))).as_matrix().astype(np.float32)
    schedule = Schedule(last_level=4)
    result = refine(
        MapReference(render_volume(SAMPLE, SIZE, EXTENT)), images, initial=initial, schedule=schedule
    )
    assert degrees_between(result.rotations, poses).max() < grids.step_degrees(schedule.last_level)
    assert np.median(degrees_between(result.rotations, poses)) < 1.0
    np.testing.assert_allclose(result.shifts, -centres, atol=0.25)  # the move that centres them
    assert np.all(result.scores > 0.99) and np.all(
        (result.max_probability > 0) & (result.max_probability <= 1)
    )


def test_a_global_search_through_the_exact_renderer_finds_the_poses(particles):
    poses, centres, images = particles

    def render(rotations):
        return render_shadows(SAMPLE, rotations, SIZE, EXTENT) / pixel_size(SIZE, EXTENT)

    result = refine(RenderedReference(render, SIZE), images[:3], schedule=Schedule(last_level=3))
    assert np.median(degrees_between(result.rotations, poses[:3])) < 2.0


def test_the_exhaustive_search_finds_particles_made_at_grid_cells_and_whole_pixel_shifts():
    cells = np.array([5, 1_000, 3_333])
    pixels, angles = grids.full_grid(2)
    poses = grids.cell_rotations(2, pixels[cells], angles[cells])
    centres = np.array([[1.0, -2.0], [0.0, 0.0], [-3.0, 1.0]], np.float32)
    images = render_shadows(SAMPLE, poses, SIZE, EXTENT, centres * pixel_size(SIZE, EXTENT)).numpy()
    spectra = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(images, axes=(1, 2))), axes=(1, 2))
    matcher = Matcher(MapReference(render_volume(SAMPLE, SIZE, EXTENT)))
    found = exhaustive_search(
        matcher,
        spectra.reshape(3, -1).astype(np.complex64),
        np.ones((3, SIZE * SIZE), np.float32),
        Schedule(last_level=2),
        block=1_000,
    )
    assert degrees_between(found["rotations"][:, 0], poses).max() < 1e-3
    np.testing.assert_array_equal(found["shifts"][:, 0], -centres)
    assert np.all(np.diff(found["scores"], axis=1) <= 0)  # candidates best first
