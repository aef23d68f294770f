"""toolkit.io.mrc maps (`write_map`, `read_map`) against mrcfile as the independent reader and writer."""

import io

import mrcfile
import numpy as np
import pytest

from toolkit.io.mrc import MrcFormatError, MrcMap, read_map, write_map

RNG = np.random.default_rng(1)


def _mrcfile_map(path, data, voxel_size=1.7, compression=None):
    with mrcfile.new(path, compression=compression) as mrc:
        mrc.set_data(data)
        if voxel_size is not None:
            mrc.voxel_size = voxel_size
    return path


def _one_line_error(path, call):
    with pytest.raises(MrcFormatError) as info:
        call()
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    return message


# --- write_map ------------------------------------------------------------------------------------


def test_write_map_is_a_valid_mrcfile_volume(tmp_path):
    volume = RNG.normal(size=(6, 6, 6))
    path = write_map(tmp_path / "map.mrc", volume, pixel_size=1.25)
    assert path == tmp_path / "map.mrc"
    assert mrcfile.validate(str(path), print_file=io.StringIO())
    with mrcfile.open(path, permissive=False) as mrc:
        np.testing.assert_array_equal(mrc.data, volume.astype(np.float32))
        assert mrc.data.dtype == np.float32 and int(mrc.header.mode) == 2
        assert int(mrc.header.ispg) == 1 and mrc.is_volume()
        assert tuple(mrc.voxel_size.item()) == pytest.approx((1.25, 1.25, 1.25))
        assert tuple(mrc.header.cella.item()) == pytest.approx((7.5, 7.5, 7.5))


def test_write_map_keeps_the_axis_order(tmp_path):
    volume = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # z, y, x
    path = write_map(tmp_path / "box.mrc", volume, pixel_size=2)
    with mrcfile.open(path) as mrc:
        assert (int(mrc.header.nx), int(mrc.header.ny), int(mrc.header.nz)) == (4, 3, 2)
        np.testing.assert_array_equal(mrc.data, volume)


def test_write_map_refuses_an_existing_file_unless_overwrite(tmp_path):
    path = write_map(tmp_path / "map.mrc", np.ones((4, 4, 4)), pixel_size=1.0)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_map(path, np.zeros((4, 4, 4)), pixel_size=1.0)
    assert read_map(path).volume.max() == 1.0
    write_map(path, np.zeros((4, 4, 4)), pixel_size=2.0, overwrite=True)
    assert read_map(path).pixel_size == 2.0 and read_map(path).volume.max() == 0.0


def test_write_map_leaves_no_partial_file_when_writing_fails(tmp_path, monkeypatch):
    path = write_map(tmp_path / "map.mrc", np.ones((4, 4, 4)), pixel_size=1.0)
    before = path.read_bytes()

    def fail(self, data):
        raise OSError("disk full")

    monkeypatch.setattr(mrcfile.mrcfile.MrcFile, "set_data", fail)
    with pytest.raises(OSError, match="disk full"):
        write_map(path, np.zeros((4, 4, 4)), pixel_size=1.0, overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        write_map(tmp_path / "new.mrc", np.zeros((4, 4, 4)), pixel_size=1.0)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["map.mrc"]


@pytest.mark.parametrize(
    "volume, shown",
    [(np.zeros((4, 4)), "(4, 4)"), (np.zeros((0, 4, 4)), "(0, 4, 4)"), (np.full((2, 2, 2), 1j), "complex")],
)
def test_write_map_rejects_a_volume_that_is_not_real_3d(tmp_path, volume, shown):
    with pytest.raises(ValueError, match=r"\[z, y, x\]") as info:
        write_map(tmp_path / "map.mrc", volume, pixel_size=1.0)
    assert shown in str(info.value)
    assert not any(tmp_path.iterdir())


def test_write_map_rejects_nan_and_a_bad_pixel_size(tmp_path):
    with pytest.raises(ValueError, match="finite"):
        write_map(tmp_path / "map.mrc", np.full((2, 2, 2), np.nan), pixel_size=1.0)
    for pixel_size in (0, -1.0, float("inf"), "a", True):
        with pytest.raises(ValueError, match="pixel_size"):
            write_map(tmp_path / "map.mrc", np.zeros((2, 2, 2)), pixel_size=pixel_size)
    assert not any(tmp_path.iterdir())


# --- read_map -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.float32, np.float16])
def test_read_map_reads_a_mrcfile_volume(tmp_path, dtype):
    data = (RNG.normal(0, 20, size=(5, 5, 5))).astype(dtype)
    path = _mrcfile_map(tmp_path / "map.mrc", data)
    loaded = read_map(path)
    assert isinstance(loaded, MrcMap)
    assert loaded.volume.dtype == np.float32 and loaded.volume.shape == (5, 5, 5)
    np.testing.assert_array_equal(loaded.volume, data.astype(np.float32))
    assert loaded.pixel_size == pytest.approx(1.7, rel=1e-6)


def test_read_map_reads_a_gzipped_map(tmp_path):
    data = RNG.normal(size=(4, 4, 4)).astype(np.float32)
    path = _mrcfile_map(tmp_path / "map.mrc.gz", data, voxel_size=0.9, compression="gzip")
    loaded = read_map(str(path))
    np.testing.assert_array_equal(loaded.volume, data)
    assert loaded.pixel_size == pytest.approx(0.9, rel=1e-6)


def test_read_map_pixel_size_is_zero_when_the_header_has_none(tmp_path):
    path = _mrcfile_map(tmp_path / "map.mrc", np.zeros((3, 3, 3), np.float32), voxel_size=None)
    assert read_map(path).pixel_size == 0.0


def test_read_map_refuses_a_missing_file_or_a_folder(tmp_path):
    assert "file not found" in _one_line_error(tmp_path / "nope.mrc", lambda: read_map(tmp_path / "nope.mrc"))
    assert "is a directory" in _one_line_error(tmp_path, lambda: read_map(tmp_path))


def test_read_map_refuses_a_file_that_is_not_mrc(tmp_path):
    path = tmp_path / "notes.mrc"
    path.write_bytes(b"plain text, not a map\n" * 100)
    assert "not a valid MRC map" in _one_line_error(path, lambda: read_map(path))


def test_read_map_refuses_truncated_data(tmp_path):
    path = _mrcfile_map(tmp_path / "map.mrc", np.zeros((8, 8, 8), np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    assert "not a valid MRC map" in _one_line_error(path, lambda: read_map(path))


def test_read_map_refuses_a_2d_image(tmp_path):
    path = _mrcfile_map(tmp_path / "image.mrc", np.zeros((6, 6), np.float32))
    assert "not a 3D map" in _one_line_error(path, lambda: read_map(path))


def test_read_map_refuses_a_box_that_is_not_cubic(tmp_path):
    path = _mrcfile_map(tmp_path / "slab.mrc", np.zeros((4, 6, 6), np.float32))
    message = _one_line_error(path, lambda: read_map(path))
    assert "4 x 6 x 6" in message and "not cubic" in message and "--new_box" in message


def test_read_map_refuses_complex_data(tmp_path):
    path = _mrcfile_map(tmp_path / "complex.mrc", np.zeros((4, 4, 4), np.complex64))
    assert "not a real-valued map" in _one_line_error(path, lambda: read_map(path))


@pytest.mark.filterwarnings("ignore:Data array contains NaN")  # mrcfile, writing it
def test_read_map_refuses_nan(tmp_path):
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 2, 3] = np.nan
    path = _mrcfile_map(tmp_path / "nan.mrc", data)
    assert "1 NaN or Inf" in _one_line_error(path, lambda: read_map(path))


def test_read_map_refuses_voxels_of_different_sizes(tmp_path):
    path = _mrcfile_map(
        tmp_path / "stretched.mrc", np.zeros((4, 4, 4), np.float32), voxel_size=(1.0, 1.0, 2.0)
    )
    assert "--rescale_angpix" in _one_line_error(path, lambda: read_map(path))


def test_format_error_is_a_value_error():
    assert issubclass(MrcFormatError, ValueError)
