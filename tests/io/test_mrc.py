"""toolkit.io.mrc (on mrcfile) against mrcfile's own arrays and a numpy-only reader (`numpy_mrc.py`)."""

import io
import os

import mrcfile
import numpy as np
import pytest

from toolkit.io.mrc import MrcFormatError, MrcStack, read_stack, write_stack

RNG = np.random.default_rng(0)


def _mrcfile_stack(path, data, voxel_size=1.25, extended_header=None):
    """Write `data` with mrcfile as an image stack (or a single image when 2D)."""
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if data.ndim == 3:
            mrc.set_image_stack()  # before voxel_size: it sets mz = 1, which cella.z depends on
        if extended_header is not None:
            mrc.set_extended_header(extended_header)
        mrc.voxel_size = voxel_size
    return path


def _patch(path, offset, payload):
    """Overwrite bytes of a file in place, e.g. a header word."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(payload)


def _one_line_error(error_type, path, call):
    with pytest.raises(error_type) as info:
        call()
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def _random(dtype, shape=(3, 5, 4)):
    if np.dtype(dtype).kind in "iu":
        limits = np.iinfo(dtype)
        return RNG.integers(limits.min, limits.max, size=shape, endpoint=True).astype(dtype)
    return RNG.normal(0, 100, size=shape).astype(dtype)


# --- reading files written by mrcfile -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint16, np.float32, np.float16])
def test_reads_mrcfile_modes(tmp_path, dtype, numpy_mrc):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(dtype), voxel_size=1.7)
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.images, numpy_mrc.read_stack(path).images)
    with mrcfile.open(path, permissive=False) as mrc:
        assert stack.images.dtype == np.float32
        np.testing.assert_array_equal(stack.images, mrc.data.astype(np.float32))
        assert stack.pixel_size == pytest.approx(float(mrc.voxel_size.x), rel=1e-6)
    assert stack.pixel_size == pytest.approx(1.7, rel=1e-6)


def test_reads_single_image_as_stack_of_one(tmp_path):
    path = _mrcfile_stack(tmp_path / "image.mrc", _random(np.float32, (6, 5)))
    stack = read_stack(str(path))
    with mrcfile.open(path) as mrc:
        assert mrc.data.shape == (6, 5)
        np.testing.assert_array_equal(stack.images, mrc.data[None])


def test_reads_volume_as_sections(tmp_path):
    path = tmp_path / "volume.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(_random(np.float32, (4, 3, 2)))  # 3D data are a volume by default (ispg 1)
        mrc.voxel_size = 2.5
    stack = read_stack(path)
    with mrcfile.open(path) as mrc:
        assert mrc.is_volume()
        np.testing.assert_array_equal(stack.images, mrc.data)
    assert stack.pixel_size == pytest.approx(2.5)


def test_reads_big_endian_file(tmp_path, numpy_mrc):
    data = _random(np.float32).astype(">f4")
    path = _mrcfile_stack(tmp_path / "big.mrcs", data)
    assert path.read_bytes()[212:214] == b"\x11\x11"  # mrcfile stamped it big-endian
    assert numpy_mrc.read_mrc_header(path)["byte_order"] == ">"
    np.testing.assert_array_equal(read_stack(path).images, data)
    np.testing.assert_array_equal(read_stack(path).images, numpy_mrc.read_stack(path).images)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("remove_label", [False, True])
def test_infers_byte_order_without_stamp_or_label(tmp_path, order, remove_label, numpy_mrc, caplog):
    data = _random(np.int16).astype(order + "i2")
    path = _mrcfile_stack(tmp_path / "old.mrc", data)
    _patch(path, 212, b"\0\0\0\0")
    if remove_label:
        _patch(path, 208, b"\0\0\0\0")  # older files lack the label
    assert numpy_mrc.read_mrc_header(path)["byte_order"] == order
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.images, data)
    assert stack.pixel_size == pytest.approx(1.25)
    problem = "Map ID string not found" if remove_label else "Unrecognised machine stamp"
    assert any(str(path) in r.message and problem in r.message for r in caplog.records), caplog.text


def test_skips_extended_header(tmp_path, numpy_mrc):
    data = _random(np.float32)
    extended = np.arange(100, dtype=np.uint8)
    path = _mrcfile_stack(tmp_path / "extended.mrcs", data, extended_header=extended)
    np.testing.assert_array_equal(read_stack(path).images, data)
    header = numpy_mrc.read_mrc_header(path)
    assert header["nsymbt"] == 100 and header["data_offset"] == 1124
    with mrcfile.open(path, permissive=False) as mrc:
        assert mrc.header.nsymbt == 100
        np.testing.assert_array_equal(read_stack(path).images, mrc.data)


def test_numpy_oracle_header_matches_mrcfile(tmp_path, numpy_mrc):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(np.float32, (3, 4, 6)), voxel_size=(1.5, 2.0, 1.0))
    header = numpy_mrc.read_mrc_header(path)
    with mrcfile.open(path) as mrc:
        for key in ("nx", "ny", "nz", "mode", "mx", "my", "mz", "ispg", "nsymbt"):
            assert header[key] == int(mrc.header[key]), key
        assert header["cella"] == pytest.approx(mrc.header.cella.item())
    assert header["byte_order"] == "<" and header["data_offset"] == 1024


def test_pixel_size_is_zero_when_header_has_none(tmp_path):
    path = tmp_path / "bare.mrcs"
    with mrcfile.new(path) as mrc:
        mrc.set_data(_random(np.float32))
    assert read_stack(path).pixel_size == 0.0


# --- indices --------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("indices", [[3, 0, 3], range(1, 4), np.array([4]), []])
def test_indices_equal_slicing_the_full_stack(tmp_path, order, indices):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(np.int16, (5, 3, 2)).astype(order + "i2"))
    full = read_stack(path).images
    part = read_stack(path, indices=indices)
    assert isinstance(part, MrcStack) and part.images.dtype == np.float32
    np.testing.assert_array_equal(part.images, full[np.asarray(list(indices), dtype=int)].reshape(-1, 3, 2))


@pytest.mark.parametrize("index", [5, -1])
def test_out_of_range_index_names_index_and_length(tmp_path, index):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(np.float32, (5, 3, 2)))
    message = _one_line_error(MrcFormatError, path, lambda: read_stack(path, indices=[0, index]))
    assert str(index) in message and "5 images" in message


# --- malformed files ------------------------------------------------------------------------------


def test_missing_file_or_directory(tmp_path):
    path = tmp_path / "missing.mrcs"
    assert "not found" in _one_line_error(MrcFormatError, path, lambda: read_stack(path))
    assert "directory" in _one_line_error(MrcFormatError, tmp_path, lambda: read_stack(tmp_path))


def test_file_shorter_than_header(tmp_path):
    path = tmp_path / "short.mrc"
    path.write_bytes(b"MAP " * 25)
    assert "1024" in _one_line_error(MrcFormatError, path, lambda: read_stack(path))


def test_not_an_mrc_file(tmp_path):
    path = tmp_path / "notes.mrc"
    path.write_bytes(b"these are not images\n" * 100)
    message = _one_line_error(MrcFormatError, path, lambda: read_stack(path))
    assert "not an MRC file" in message and "Map ID" in message


@pytest.mark.filterwarnings("ignore:Unrecognised mode")
@pytest.mark.parametrize("mode", [3, 4, 101])
def test_unsupported_mode_names_mode_and_supported_list(tmp_path, mode):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(np.float32).astype(np.complex64))
    _patch(path, 12, np.int32(mode).astype("<i4").tobytes())
    with mrcfile.open(path, permissive=True) as mrc:
        assert int(mrc.header.mode) == mode
    message = _one_line_error(MrcFormatError, path, lambda: read_stack(path))
    assert f"mode {mode}" in message and "2 (float32)" in message and "12 (float16)" in message


def test_truncated_data_says_expected_and_found(tmp_path):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(np.float32, (3, 5, 4)))
    path.write_bytes(path.read_bytes()[:-10])
    message = _one_line_error(MrcFormatError, path, lambda: read_stack(path))
    assert "truncated" in message and str(3 * 5 * 4 * 4) in message and str(3 * 5 * 4 * 4 - 10) in message


@pytest.mark.filterwarnings("ignore:MRC file is")
@pytest.mark.parametrize("nz", [0, -3])
def test_non_positive_dimensions(tmp_path, nz):
    path = _mrcfile_stack(tmp_path / "stack.mrcs", _random(np.float32))
    _patch(path, 8, np.int32(nz).astype("<i4").tobytes())
    message = _one_line_error(MrcFormatError, path, lambda: read_stack(path))
    assert "non-positive" in message and f"nz={nz}" in message


def test_format_error_is_a_value_error():
    assert issubclass(MrcFormatError, ValueError)


# --- writing --------------------------------------------------------------------------------------


def test_write_stack_is_a_valid_mrcfile_image_stack(tmp_path):
    images = _random(np.float32, (4, 6, 5))
    path = write_stack(tmp_path / "out.mrcs", images, pixel_size=1.3)
    assert path == tmp_path / "out.mrcs"
    with mrcfile.open(path, permissive=False) as mrc:
        np.testing.assert_array_equal(mrc.data, images)
        assert mrc.is_image_stack() and mrc.data.dtype == np.dtype("<f4")
        assert int(mrc.header.mode) == 2 and int(mrc.header.nversion) in (20140, 20141)  # MRC2014, updated
        assert bytes(mrc.header.machst) == b"\x44\x44\0\0"
        assert any(label.startswith("toolkit write_stack") for label in mrc.get_labels())
        for size in mrc.voxel_size.item():
            assert size == pytest.approx(1.3, rel=1e-6)
    report = io.StringIO()
    assert mrcfile.validate(path, print_file=report), report.getvalue()
    stack = read_stack(path)
    np.testing.assert_array_equal(stack.images, images)
    assert stack.pixel_size == pytest.approx(1.3, rel=1e-6)


def test_write_stack_single_image_and_integer_input(tmp_path):
    image = RNG.integers(-50, 50, size=(3, 7)).astype(np.int16)
    path = write_stack(tmp_path / "one.mrc", image, pixel_size=2)
    assert mrcfile.validate(path, print_file=io.StringIO())
    with mrcfile.open(path, permissive=False) as mrc:
        assert mrc.is_single_image() and (mrc.header.nx, mrc.header.ny, mrc.header.nz) == (7, 3, 1)
        np.testing.assert_array_equal(mrc.data, image.astype(np.float32))
    np.testing.assert_array_equal(read_stack(path).images, image[None])


@pytest.mark.parametrize(
    "images, shown",
    [
        (np.zeros(4), "(4,)"),
        (np.zeros((1, 2, 3, 4)), "(1, 2, 3, 4)"),
        (np.zeros((0, 3, 3)), "(0, 3, 3)"),
        (np.zeros((2, 2), dtype=np.complex64), "complex64"),
        (np.array([["a", "b"]]), "<U1"),
        (np.array([[1.0, np.nan]]), "nan"),
        (np.array([[1.0, np.inf]]), "inf"),
        (np.array([[1.0, 1e39]]), "inf"),  # overflows float32
    ],
)
def test_write_stack_rejects_bad_images(tmp_path, images, shown):
    with pytest.raises(ValueError) as info:
        write_stack(tmp_path / "out.mrcs", images, pixel_size=1.0)
    assert shown in str(info.value) and "\n" not in str(info.value)
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("pixel_size", [0, -1.5, float("nan"), float("inf"), "abc", None])
def test_write_stack_rejects_bad_pixel_size(tmp_path, pixel_size):
    with pytest.raises(ValueError) as info:
        write_stack(tmp_path / "out.mrcs", np.zeros((2, 2)), pixel_size=pixel_size)
    assert repr(pixel_size) in str(info.value) and "\n" not in str(info.value)
    assert not os.listdir(tmp_path)


def test_write_stack_refuses_existing_file_unless_overwrite(tmp_path):
    path = write_stack(tmp_path / "out.mrcs", np.ones((2, 3, 3)), pixel_size=1.0)
    before = path.read_bytes()
    message = _one_line_error(
        FileExistsError, path, lambda: write_stack(path, np.zeros((1, 3, 3)), pixel_size=2.0)
    )
    assert "overwrite=True" in message
    assert path.read_bytes() == before
    write_stack(path, np.zeros((1, 4, 4)), pixel_size=2.0, overwrite=True)
    with mrcfile.open(path, permissive=False) as mrc:
        assert mrc.data.shape == (4, 4) and float(mrc.voxel_size.x) == 2.0
    assert os.listdir(tmp_path) == ["out.mrcs"]


def test_write_stack_leaves_no_partial_file_when_writing_fails(tmp_path, monkeypatch):
    path = write_stack(tmp_path / "out.mrcs", np.ones((2, 3, 3)), pixel_size=1.0)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        write_stack(path, np.full((2, 3, 3), np.nan), pixel_size=1.0, overwrite=True)

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_stack(path, np.zeros((5, 3, 3)), pixel_size=1.0, overwrite=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.mrcs"]  # the temporary file is gone too
