"""STAR files and particle tables (read and written with starfile), against starfile files and a line parser.

The line parser (`numpy_star.py`, the hand-written reader these functions replaced) is the independent reading
of the hand-written files here.
"""

import numpy as np
import pandas as pd
import pytest
import starfile

from toolkit.io.particles import image_name, read_particles, write_particles
from toolkit.io.star import StarFormatError, read_star, write_star

TRICKY_FLOATS = [0.1, 1 / 3, 1e-8, -123.456]


def assert_block_equals_frame(block, frame):
    """Column by column: ints as int64, floats as float64 (exactly), strings as str."""
    assert list(block) == list(frame.columns)
    for label in frame.columns:
        expected, got = frame[label], block[label]
        if pd.api.types.is_integer_dtype(expected):
            assert got.dtype == np.int64, label
            np.testing.assert_array_equal(got, expected.to_numpy())
        elif pd.api.types.is_float_dtype(expected):
            assert got.dtype == np.float64, label
            np.testing.assert_array_equal(got, expected.to_numpy())
        else:
            assert got.tolist() == expected.tolist(), label


def optics_and_particles():
    optics = pd.DataFrame(
        {
            "rlnOpticsGroupName": ["opticsGroup1", "opticsGroup2"],
            "rlnOpticsGroup": [1, 2],
            "rlnImagePixelSize": [1.1, 2.2],
            "rlnImageSize": [64, 128],
            "rlnVoltage": [300.0, 200.5],
            "rlnSphericalAberration": [2.7, 0.01],
            "rlnAmplitudeContrast": [0.1, 0.07],
        }
    )
    particles = pd.DataFrame(
        {
            "rlnImageName": ["000001@stacks/a.mrcs", "000003@stacks/a.mrcs", "000002@/abs/b.mrcs"],
            "rlnOpticsGroup": [2, 1, 2],
            "rlnAngleRot": [10.5, -20.25, 0.1],
            "rlnAngleTilt": [90.5, 1 / 3, 45.5],
            "rlnAnglePsi": [-123.456, 1e-8, 7.5],
            "rlnOriginXAngst": [1.5, -2.5, 0.1],
            "rlnOriginYAngst": [0.5, 3.25, -0.2],
            "rlnDefocusU": [10000.5, 12000.25, 9000.75],
            "rlnDefocusV": [9900.5, 11000.25, 8000.75],
            "rlnDefocusAngle": [30.5, -45.5, 0.5],
            "rlnMicrographName": ["mic 1.mrc", "mic2.mrc", "mic2.mrc"],
            "rlnClassNumber": [1, 2, 1],
        }
    )
    return optics, particles


def test_reads_starfile_optics_and_particles(tmp_path):
    optics, particles = optics_and_particles()
    path = tmp_path / "particles.star"
    starfile.write({"optics": optics, "particles": particles}, path, float_format="%.17g")
    blocks = read_star(path)
    assert list(blocks) == ["optics", "particles"]
    assert_block_equals_frame(blocks["optics"], optics)
    assert_block_equals_frame(blocks["particles"], particles)


def test_reads_starfile_single_block_and_key_value_block(tmp_path):
    frame = pd.DataFrame({"rlnImageName": ["000001@a.mrcs", "000002@a.mrcs"], "rlnDefocusU": [0.1, 1 / 3]})
    single = tmp_path / "single.star"
    starfile.write(frame, single, float_format="%.17g")
    blocks = read_star(single)
    assert list(blocks) == [""]
    assert_block_equals_frame(blocks[""], frame)

    general = {"rlnFinalResolution": 3.25, "rlnNrClasses": 4, "rlnComment": "two words"}
    key_value = tmp_path / "general.star"
    starfile.write({"general": general, "images": frame}, key_value, float_format="%.17g")
    blocks = read_star(key_value)
    assert {label: values.tolist() for label, values in blocks["general"].items()} == {
        label: [value] for label, value in general.items()
    }
    assert blocks["general"]["rlnNrClasses"].dtype == np.int64
    assert_block_equals_frame(blocks["images"], frame)


def test_write_star_reads_back_exactly_in_starfile_and_here(tmp_path, numpy_star):
    columns = {
        "rlnFloat": TRICKY_FLOATS,
        "rlnFloat32": np.array([0.1, 2.5, -3.0, 1e-8], np.float32),
        "rlnInt": np.array([1, -2, 30, 400], np.int64),
        "rlnName": ["plain", "two words", "", "x"],
    }
    path = write_star(tmp_path / "out.star", {"test": columns, "general": {"rlnScalar": 1 / 3}})
    truth = starfile.read(path, always_dict=True)
    assert truth["test"]["rlnFloat"].tolist() == TRICKY_FLOATS
    assert truth["test"]["rlnFloat32"].tolist() == np.array(columns["rlnFloat32"], np.float64).tolist()
    assert truth["test"]["rlnInt"].tolist() == [1, -2, 30, 400]
    assert truth["test"]["rlnName"].tolist()[:3] == ["plain", "two words", ""]
    assert truth["general"]["rlnScalar"].tolist() == [1 / 3]
    text = path.read_text()
    assert "data_test\n" in text and "_rlnInt #3" in text

    odd = ["#hash", "_under", "data_x", "loop_", "a#b", "two words", " lead"]
    floats = [np.inf, -np.inf, -0.0, 1e300, 5e-324, 1.0, 2.5]
    written = write_star(tmp_path / "odd.star", {"b": {"s": odd, "f": floats}})
    for blocks in (read_star(written), numpy_star.read_star(written)):
        assert blocks["b"]["s"].tolist() == odd
        np.testing.assert_array_equal(blocks["b"]["f"], floats)
    assert read_star(path)["test"]["rlnName"].tolist() == columns["rlnName"]


def test_write_particles_reads_back_in_starfile(tmp_path):
    names = [image_name(i, "stacks/a.mrcs") for i in range(4)]
    angles = np.array(
        [TRICKY_FLOATS[:3], [TRICKY_FLOATS[3], 2.0, 3.0], [-1.5, 0.0, 180.0], [0.25, 0.5, 0.75]]
    )
    ctf = {
        "defocus_u": TRICKY_FLOATS,
        "defocus_angle": 5.5,
        "voltage": 300.0,
        "spherical_aberration": [2.7] * 4,
    }
    ctf["amplitude_contrast"] = [0.1, 0.1, 0.07, 0.1]  # varies, so a particle column
    path = write_particles(
        tmp_path / "p.star", names, 1 / 3, 64, angles, ctf, extra={"rlnClassNumber": [1, 2, 2, 3]}
    )
    truth = starfile.read(path)
    optics = truth["optics"].iloc[0].to_dict()
    assert optics == {
        "rlnOpticsGroup": 1,
        "rlnOpticsGroupName": "opticsGroup1",
        "rlnImagePixelSize": 1 / 3,
        "rlnImageSize": 64,
        "rlnImageDimensionality": 2,
        "rlnVoltage": 300.0,
        "rlnSphericalAberration": 2.7,
    }
    particles = truth["particles"]
    assert particles["rlnImageName"].tolist() == ["000001@stacks/a.mrcs", "000002@stacks/a.mrcs"] + names[2:]
    assert particles["rlnOpticsGroup"].tolist() == [1] * 4
    np.testing.assert_array_equal(particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]], angles)
    assert particles["rlnDefocusU"].tolist() == TRICKY_FLOATS
    assert particles["rlnDefocusAngle"].tolist() == [5.5] * 4
    assert particles["rlnAmplitudeContrast"].tolist() == ctf["amplitude_contrast"]
    assert particles["rlnClassNumber"].tolist() == [1, 2, 2, 3]
    assert "rlnDefocusV" not in particles and "rlnAmplitudeContrast" not in truth["optics"]

    back = read_particles(path)
    np.testing.assert_array_equal(back.angles, angles)
    np.testing.assert_array_equal(back.pixel_size, [1 / 3] * 4)
    np.testing.assert_array_equal(back.ctf["defocus_v"], TRICKY_FLOATS)  # V defaults to U
    np.testing.assert_array_equal(back.ctf["voltage"], [300.0] * 4)
    assert back.origins is None and back.image_indices.tolist() == [0, 1, 2, 3]


def test_read_particles_takes_optics_values_per_particle(tmp_path):
    optics, particles = optics_and_particles()
    path = tmp_path / "job" / "particles.star"
    path.parent.mkdir()
    starfile.write({"optics": optics, "particles": particles}, path, float_format="%.17g")
    got = read_particles(path)
    assert got.image_names == particles["rlnImageName"].tolist()
    assert got.image_indices.dtype == np.int64 and got.image_indices.tolist() == [0, 2, 1]
    assert got.stack_paths[0] == got.stack_paths[1] == path.parent / "stacks" / "a.mrcs"
    assert str(got.stack_paths[2]) == "/abs/b.mrcs"
    np.testing.assert_array_equal(got.pixel_size, [2.2, 1.1, 2.2])
    np.testing.assert_array_equal(got.angles, particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]])
    np.testing.assert_array_equal(got.origins, particles[["rlnOriginXAngst", "rlnOriginYAngst"]])
    expected_ctf = {
        "defocus_u": particles["rlnDefocusU"],
        "defocus_v": particles["rlnDefocusV"],
        "defocus_angle": particles["rlnDefocusAngle"],
        "voltage": [200.5, 300.0, 200.5],
        "spherical_aberration": [0.01, 2.7, 0.01],
        "amplitude_contrast": [0.07, 0.1, 0.07],
        "phase_shift": [0.0, 0.0, 0.0],  # absent columns: no phase plate, no envelope
        "b_factor": [0.0, 0.0, 0.0],
    }
    assert set(got.ctf) == set(expected_ctf)
    for key, values in expected_ctf.items():
        assert got.ctf[key].dtype == np.float64
        np.testing.assert_array_equal(got.ctf[key], values, err_msg=key)


def test_read_particles_relion30_origins_in_pixels(tmp_path):
    images = pd.DataFrame(
        {
            "rlnImageName": ["000005@a.mrcs", "000006@a.mrcs"],
            "rlnOriginX": [2.0, -1.5],
            "rlnOriginY": [0.5, 4.0],
            "rlnDetectorPixelSize": [14.0, 5.0],  # micrometre
            "rlnMagnification": [100000.0, 50000.0],
            "rlnDefocusU": [15000.5, 16000.5],
            "rlnVoltage": [300.0, 300.0],
        }
    )
    path = tmp_path / "relion30.star"
    starfile.write({"images": images}, path, float_format="%.17g")
    got = read_particles(path)
    pixel_size = np.array([1.4, 1.0])
    np.testing.assert_allclose(got.pixel_size, pixel_size, rtol=1e-15)
    np.testing.assert_allclose(
        got.origins, images[["rlnOriginX", "rlnOriginY"]] * pixel_size[:, None], rtol=1e-15
    )
    assert got.angles is None and got.image_indices.tolist() == [4, 5]
    np.testing.assert_array_equal(got.ctf["defocus_v"], [15000.5, 16000.5])
    np.testing.assert_array_equal(got.ctf["defocus_angle"], [0.0, 0.0])
    assert np.isnan(got.ctf["spherical_aberration"]).all()

    bare = tmp_path / "bare.star"
    starfile.write(pd.DataFrame({"rlnImageName": ["000001@a.mrcs"]}), bare)
    got = read_particles(bare)
    assert got.ctf is None and got.origins is None and got.pixel_size.tolist() == [0.0]


HAND_WRITTEN = """
# version 30001
# written by hand: comments, blank lines, quotes

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnImagePixelSize #3
_rlnVoltage #4
"optics group A"   1   1.5   300.0
'B'                2   0.75  200

data_particles

loop_
_rlnImageName #1
_rlnOpticsGroup #2
_rlnDefocusU #3
_rlnMicrographName #4   # a trailing comment
000001@stacks/a.mrcs      2   10000.5   "mic 1.mrc"   # comment after a row

000002@stacks/a.mrcs      1   12000     ""
'000010@stacks/b c.mrcs'  2   -5e3      its

data_general

_rlnFinalResolution   3.5
_rlnComment   "hello world"
_rlnNrClasses 42

data_
loop_
_rlnX
7
"""


def test_hand_written_text_with_crlf(tmp_path, numpy_star):
    path = tmp_path / "hand.star"
    path.write_bytes(HAND_WRITTEN.replace("\n", "\r\n").encode())
    blocks = read_star(path)
    oracle = numpy_star.read_star(path)
    assert list(blocks) == list(oracle)
    for name, columns in oracle.items():
        assert list(blocks[name]) == list(columns), name
        for label, values in columns.items():
            assert blocks[name][label].dtype == values.dtype, (name, label)
            assert blocks[name][label].tolist() == values.tolist(), (name, label)
    assert list(blocks) == ["optics", "particles", "general", ""]
    assert blocks["optics"]["rlnOpticsGroupName"].tolist() == ["optics group A", "B"]
    assert blocks["optics"]["rlnVoltage"].dtype == np.float64
    assert blocks["optics"]["rlnOpticsGroup"].dtype == np.int64
    assert blocks["particles"]["rlnMicrographName"].tolist() == ["mic 1.mrc", "", "its"]
    assert blocks["particles"]["rlnDefocusU"].tolist() == [10000.5, 12000.0, -5000.0]
    assert blocks["general"]["rlnComment"].tolist() == ["hello world"]
    assert blocks["general"]["rlnNrClasses"].tolist() == [42]
    assert blocks[""]["rlnX"].tolist() == [7]

    got = read_particles(path)
    assert got.image_indices.tolist() == [0, 1, 9]
    assert got.stack_paths[2] == tmp_path / "stacks" / "b c.mrcs"
    np.testing.assert_array_equal(got.pixel_size, [0.75, 1.5, 0.75])
    np.testing.assert_array_equal(got.ctf["voltage"], [200.0, 300.0, 200.0])


def test_column_types(tmp_path, numpy_star):
    path = tmp_path / "types.star"
    path.write_text(
        "data_x\nloop_\n_int\n_float\n_under\n_hex\n_inf\n"
        "1 1e5 1_000 0x10 inf\n-2 2 2 3 -inf\n"
        "data_empty\nloop_\n_a\n"
    )
    blocks = read_star(path)
    kinds = {label: values.dtype for label, values in blocks["x"].items()}
    assert kinds == {
        "int": np.int64,
        "float": np.float64,
        "under": object,
        "hex": object,
        "inf": np.float64,
    }
    assert kinds == {label: values.dtype for label, values in numpy_star.read_star(path)["x"].items()}
    assert blocks["x"]["under"].tolist() == ["1_000", "2"]
    assert blocks["empty"]["a"].shape == (0,) and blocks["empty"]["a"].dtype == np.float64


def star_error(path, reader=read_star):
    with pytest.raises(StarFormatError) as caught:
        reader(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


ROWS_12 = "data_x\n\nloop_\n" + "".join(f"_c{k}\n" for k in range(5)) + "1 2 3 4 5\n\n# c\n1 2 3\n"
UNPARSED = "starfile cannot parse it"


@pytest.mark.parametrize(
    "text, expected",
    [
        (ROWS_12, "data_x row 2: no value for _c3"),
        ("data_x\nloop_\n_a\n_b\n1 nan\n", "data_x row 1: no value for _b"),
        ("data_x\nloop_\n_a\n_b\n1 2\n1 2 3\n", UNPARSED),
        ("# header\n_rlnX 5\ndata_x\n", UNPARSED),
        ('data_x\nloop_\n_a\n_b\n1 "two words\n', UNPARSED),
        ("data_x\n_rlnX 1 2\n", UNPARSED),
        ("data_x\n5\n", UNPARSED),
    ],
    ids=["short_row", "nan", "long_row", "label_outside", "open_quote", "pair_length", "stray"],
)
def test_malformed_files(tmp_path, text, expected):
    path = tmp_path / "bad.star"
    path.write_text(text)
    assert f"{path}: {expected}" in star_error(path)


def test_a_failed_read_leaves_no_stale_text_for_the_next(tmp_path):
    path = tmp_path / "edited.star"
    path.write_text("data_x\n5\n")
    star_error(path)
    path.write_text("data_x\nloop_\n_a\n7\n")
    assert read_star(path)["x"]["a"].tolist() == [7]


def test_missing_file(tmp_path):
    assert "no such file" in star_error(tmp_path / "missing.star")
    assert "no such file" in star_error(tmp_path / "missing.star", read_particles)


@pytest.mark.parametrize(
    "blocks, expected",
    [
        (
            {"optics": {"rlnOpticsGroup": [1]}, "model": {"rlnX": [1]}},
            "no block has _rlnImageName (blocks found: data_optics, data_model)",
        ),
        ({"p": {"rlnImageName": ["1@a.mrcs", "0@a.mrcs"]}}, "data_p row 2: bad image name '0@a.mrcs'"),
        ({"p": {"rlnImageName": ["a.mrcs"]}}, "data_p row 1: bad image name 'a.mrcs'"),
        ({"p": {"rlnImageName": ["12@"]}}, "data_p row 1: bad image name '12@'"),
        (
            {
                "optics": {"rlnOpticsGroup": [1, 2]},
                "particles": {"rlnImageName": ["1@a"] * 3, "rlnOpticsGroup": [1, 3, 3]},
            },
            "data_particles row 2: optics group 3 has no row in data_optics (groups there: 1, 2)",
        ),
        ({"particles": {"rlnImageName": ["1@a"], "rlnDefocusU": ["x"]}}, "_rlnDefocusU holds text"),
    ],
    ids=["no_image_name", "slice_zero", "no_at", "no_stack", "unknown_optics_group", "text_defocus"],
)
def test_read_particles_errors(tmp_path, blocks, expected):
    path = write_star(tmp_path / "bad.star", blocks)
    assert f"{path}: {expected}" in star_error(path, read_particles)


def test_refused_writes_leave_the_old_file(tmp_path):
    path = tmp_path / "keep.star"
    path.write_text("old")
    with pytest.raises(FileExistsError, match=str(path)):
        write_star(path, {"x": {"a": [1]}})
    with pytest.raises(FileExistsError, match=str(path)):
        write_particles(path, ["000001@a.mrcs"], 1.0, 8)
    assert path.read_text() == "old"
    write_particles(path, ["000001@a.mrcs"], 1.0, 8, overwrite=True)
    assert read_star(path)["particles"]["rlnImageName"].tolist() == ["000001@a.mrcs"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.star"]  # no temporary file left


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        write_star(tmp_path / "a.star", {"x": {"a": [1, 2], "b": [1]}})
    for text in ("two\nlines", "it's", 'say "hi"', "tab\there"):
        with pytest.raises(ValueError, match="a quote, a tab or a line break"):
            write_star(tmp_path / "a.star", {"x": {"a": [text]}})
    with pytest.raises(ValueError, match="holds NaN"):
        write_star(tmp_path / "a.star", {"x": {"a": [1.0, np.nan]}})
    with pytest.raises(ValueError, match="N@STACK"):
        write_particles(tmp_path / "a.star", ["a.mrcs"], 1.0, 8)
    with pytest.raises(ValueError, match="unknown CTF keys"):
        write_particles(tmp_path / "a.star", ["1@a.mrcs"], 1.0, 8, ctf={"defocus": 1.0})
    assert list(tmp_path.iterdir()) == []


def test_image_name():
    assert image_name(0, "particles.mrcs") == "000001@particles.mrcs"
    assert image_name(1234567, "a/b.mrcs") == "1234568@a/b.mrcs"
    with pytest.raises(ValueError):
        image_name(-1, "a.mrcs")
