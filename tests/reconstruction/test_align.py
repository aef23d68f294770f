"""Map alignment: a map turned, shifted or mirrored with scipy is superposed back on itself."""

import re

import mrcfile
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import ndimage
from scipy.spatial.transform import Rotation

from toolkit.cli import cli
from toolkit.reconstruction.align import align_map

SIZE = 32


def blobs(seed=0, count=12, size=SIZE):
    """A chiral, asymmetric map: Gaussian blobs of different weights at random places."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), axis=-1).astype(float)
    volume = np.zeros((size,) * 3)
    for centre, weight in zip(rng.uniform(0.3 * size, 0.7 * size, (count, 3)), rng.uniform(0.5, 2.0, count)):
        volume += weight * np.exp(-np.sum((grid - centre) ** 2, axis=-1) / (2 * 1.5**2))
    return volume


def turned(volume, rotation_zyx, shift_zyx):
    """out(p) = volume(R^T (p - c - s) + c), written with scipy alone."""
    centre = np.full(3, len(volume) // 2, float)
    inverse = rotation_zyx.T
    return ndimage.affine_transform(volume, inverse, offset=centre - inverse @ (centre + shift_zyx), order=3)


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))


REFERENCE = blobs()
TURN = Rotation.from_rotvec([0.4, -0.9, 1.3]).as_matrix()  # 93 degrees, about no grid axis


def test_a_turned_and_shifted_map_is_aligned_back():
    moving = turned(REFERENCE, TURN, np.array([1.5, -2.0, 1.0]))
    assert correlation(moving, REFERENCE) < 0.5
    result = align_map(moving, REFERENCE, search_box=16)
    assert not result.mirrored
    assert result.correlation > 0.99 and correlation(result.volume, REFERENCE) > 0.99
    error = Rotation.from_matrix(result.rotation[::-1, ::-1] @ TURN).magnitude()  # R = TURN^T undoes it
    assert np.degrees(error) < 1.0


def test_a_mirrored_map_is_found_in_the_other_hand():
    moving = turned(REFERENCE, TURN, np.zeros(3))[::-1]  # z -> 31 - z: a mirror through z = 15.5
    result = align_map(moving, REFERENCE, search_box=16)
    assert result.mirrored and correlation(result.volume, REFERENCE) > 0.98
    unmirrored = align_map(moving, REFERENCE, search_box=16, try_mirror=False)
    assert unmirrored.correlation < result.correlation - 0.1  # no rotation makes up for the hand


def test_maps_of_different_boxes_are_refused():
    with pytest.raises(ValueError, match="one box"):
        align_map(np.zeros((16,) * 3), np.zeros((20,) * 3))


def test_fsc_align_superposes_map1_on_map2_first(tmp_path):
    reference = blobs(seed=1, size=20).astype(np.float32)
    paths = {}
    for name, volume in (("ref", reference), ("moving", turned(reference, TURN, np.array([1.0, 0.0, -1.0])))):
        paths[name] = tmp_path / f"{name}.mrc"
        with mrcfile.new(paths[name]) as mrc:
            mrc.set_data(volume.astype(np.float32))
            mrc.voxel_size = 2.0
    plain = CliRunner().invoke(
        cli, ["fsc", str(paths["moving"]), str(paths["ref"]), "--out", str(tmp_path / "a")]
    )
    result = CliRunner().invoke(
        cli, ["fsc", str(paths["moving"]), str(paths["ref"]), "--align", "--out", str(tmp_path / "b")]
    )
    assert plain.exit_code == 0 and result.exit_code == 0, result.output
    assert "aligned moving.mrc onto ref.mrc: turned" in result.output
    with mrcfile.open(tmp_path / "b_aligned.mrc") as mrc:
        assert correlation(mrc.data, reference) > 0.98 and float(mrc.voxel_size.x) == 2.0
    half = {
        name: float(re.search(r"FSC 0.5: ([\d.]+) A", out.output)[1])
        for name, out in (("plain", plain), ("aligned", result))
    }
    assert (
        half["aligned"] < 5.0 < 10.0 < half["plain"]
    )  # Nyquist is 4 A: aligned, the maps agree nearly to it
