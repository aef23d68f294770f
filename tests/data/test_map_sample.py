"""Maps as samples: a map written by mrcfile from blobs projects like the blobs themselves."""

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from toolkit.cli import cli
from toolkit.data.map_sample import MapSample, map_sample
from toolkit.data.objects import BlobSample, letter_f
from toolkit.data.render import project_sample, render_shadows, render_volume, sample_volume

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
POSES = Rotation.random(6, random_state=3).as_matrix().astype(np.float32)


def _f_in_angstrom(scale: float = 40.0) -> BlobSample:
    """The F 40 A tall, blobs 2.4 A wide."""
    f = letter_f(size=1.0, thickness=0.25, blob_sigma=0.06)
    return BlobSample(f.centers * scale, f.weights, f.sigma * scale, angstrom=True)


def _write(path, volume, voxel):
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.asarray(volume, np.float32))
        mrc.voxel_size = voxel
    return path


def _correlation(a, b):
    a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("voxel, box", [(2.0, 32), (1.0, 64)], ids=["same grid", "resampled from 1 A"])
def test_a_voxelized_blob_map_projects_like_the_blobs(tmp_path, voxel, box):
    blobs = _f_in_angstrom()
    path = _write(tmp_path / "f.mrc", render_volume(blobs, box, box * voxel / 2), voxel)
    sample = map_sample(str(path)).on_grid(32, 2.0)
    assert sample.volume.shape == (32, 32, 32) and sample.voxel_size == 2.0
    shifts = np.array([[1.5, -2.0]] * len(POSES), np.float32) * 2.0  # Angstrom
    exact = render_shadows(blobs, POSES, 32, 32.0, shifts).numpy()
    projected = project_sample(sample, POSES, 32, 32.0, shifts).numpy()
    for a, b in zip(exact, projected):
        assert _correlation(a, b) >= 0.99
    # the same units: the line integral of the density, so the mass agrees too
    assert projected.sum() == pytest.approx(exact.sum(), rel=0.05)


def test_threshold_and_bad_maps_say_what_is_wrong(tmp_path):
    volume = np.zeros((8, 8, 8), np.float32)
    volume[4, 4, 4], volume[1, 1, 1] = 2.0, 0.5
    path = _write(tmp_path / "two.mrc", volume, 3.0)
    assert np.count_nonzero(map_sample(str(path), threshold=1.0).volume) == 1
    with pytest.raises(ValueError, match="no voxel reaches threshold 5.0; lower it"):
        map_sample(str(path), threshold=5.0)
    flat = _write(tmp_path / "flat.mrc", np.zeros((4, 8, 8), np.float32), 3.0)
    with pytest.raises(ValueError, match="not cubic"):
        map_sample(str(flat))
    with pytest.raises(ValueError, match="resample it first"):
        project_sample(MapSample(volume, 3.0), POSES, 16, 24.0)


def test_a_map_recipe_simulates_its_map_and_writes_it_as_the_truth(tmp_path):
    blobs = _f_in_angstrom()
    path = _write(tmp_path / "f.mrc", render_volume(blobs, 32, 32.0), 2.0)
    recipe = str(RECIPES / "f_orientation.yaml")
    sets = [f"data.sample={{type: map, path: {path}}}", "data.extent=null", "data.image_size=32"]
    args = ["simulate", recipe, "--count", "2", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args + [a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    truth = mrcfile.read(tmp_path / "out" / "truth.mrc")
    assert _correlation(truth, mrcfile.read(path)) > 0.999
    assert _correlation(sample_volume(blobs, 32, 32.0), truth) > 0.999
    bad = ["validate", recipe, "--set", "data.sample={type: map, path: missing.mrc}"]
    result = CliRunner().invoke(cli, bad)
    assert result.exit_code == 2
    assert "data.sample.path: missing.mrc: file not found; give an MRC map" in result.output
    assert "data.extent: the map sample is in Angstrom" in result.output
