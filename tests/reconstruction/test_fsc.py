"""toolkit.reconstruction.fsc against hand computations, statistics of noise, and `toolkit fsc` end to end."""

import csv
import itertools
import re

import mrcfile
import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.commands.maps import default_prefix
from toolkit.reconstruction.fsc import FscCurve, Resolution, fsc_curve, resolution, write_fsc_csv

RNG = np.random.default_rng(0)


def _integer_frequencies(box):
    """-D/2 <= k < D/2 per axis, in the order of an unshifted DFT."""
    return [k if k < box / 2 else k - box for k in range(box)]


def _shell_counts(box):
    k = np.array(_integer_frequencies(box))
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    return np.bincount(np.rint(radius).astype(int).ravel())[: box // 2 + 1]


def _oracle_fsc(map1, map2, mask=None):
    """The FSC by the definition: a DFT written out, one frequency at a time, and shell sums."""
    box = map1.shape[0]
    if mask is not None:
        map1, map2 = map1 * mask, map2 * mask
    grid = np.indices(map1.shape)
    count = box // 2 + 1
    cross, power1, power2 = np.zeros(count), np.zeros(count), np.zeros(count)
    for kz, ky, kx in itertools.product(_integer_frequencies(box), repeat=3):
        shell = round(float(np.sqrt(kz**2 + ky**2 + kx**2)))
        if shell >= count:
            continue
        phase = np.exp(-2j * np.pi * (kz * grid[0] + ky * grid[1] + kx * grid[2]) / box)
        f1, f2 = np.sum(map1 * phase), np.sum(map2 * phase)
        cross[shell] += (f1 * np.conj(f2)).real
        power1[shell] += abs(f1) ** 2
        power2[shell] += abs(f2) ** 2
    return np.array([c / np.sqrt(p * q) if p * q > 0 else 0.0 for c, p, q in zip(cross, power1, power2)])


# --- the curve -------------------------------------------------------------------------------------


@pytest.mark.parametrize("box", [8, 9])
def test_a_map_against_itself_is_one_at_every_shell(box):
    volume = RNG.normal(size=(box, box, box))
    curve = fsc_curve(volume, volume)
    assert curve.shells.tolist() == list(range(box // 2 + 1))
    np.testing.assert_allclose(curve.frequency, np.arange(box // 2 + 1) / box)
    np.testing.assert_allclose(curve.fsc, 1.0, atol=1e-12)
    assert curve.fsc.dtype == np.float64


@pytest.mark.parametrize("box", [4, 5])
def test_matches_a_hand_computed_fsc(box):
    map1, map2 = RNG.normal(size=(2, box, box, box))
    map2 = 0.6 * map1 + map2  # correlated, so every shell has a different non-trivial value
    np.testing.assert_allclose(fsc_curve(map1, map2).fsc, _oracle_fsc(map1, map2), atol=1e-10)


def test_matches_a_hand_computed_fsc_with_a_mask():
    map1, map2, mask = RNG.uniform(size=(3, 4, 4, 4))
    np.testing.assert_allclose(
        fsc_curve(map1, map2, mask=mask).fsc, _oracle_fsc(map1, map2, mask), atol=1e-10
    )


def test_zero_maps_give_zero_not_nan():
    curve = fsc_curve(np.zeros((6, 6, 6)), np.ones((6, 6, 6)))
    np.testing.assert_array_equal(curve.fsc, 0.0)


def test_independent_white_noise_is_near_zero():
    box = 16
    map1, map2 = RNG.normal(size=(2, box, box, box))
    curve = fsc_curve(map1, map2)
    counts = _shell_counts(box)
    # the FSC of independent noise has a standard deviation of about 1 / sqrt(voxels in the shell)
    assert np.all(np.abs(curve.fsc[1:]) < 4 / np.sqrt(counts[1:])), curve.fsc


def test_noise_above_a_frequency_makes_the_curve_cross_there():
    box, cutoff = 24, 0.25  # cycles per pixel: shell 6
    signal = RNG.normal(size=(box, box, box))
    k = np.fft.fftfreq(box)
    radius = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    high_pass = radius > cutoff + 0.5 / box  # shells 7 and beyond
    noise = np.fft.ifftn(np.fft.fftn(RNG.normal(size=signal.shape)) * high_pass).real
    curve = fsc_curve(signal, signal + 10 * noise)
    # 1 up to the cutoff; sqrt(S / (S + N)) = 1 / sqrt(101), about 0.1, beyond it
    np.testing.assert_allclose(curve.fsc[:7], 1.0, atol=1e-12)
    assert np.all(curve.fsc[7:] < 0.3)
    crossing = resolution(curve, 0.5, pixel_size=2.0)
    assert abs(crossing.frequency - cutoff) < 1.5 / box
    assert crossing.angstrom == pytest.approx(2.0 / crossing.frequency)


def test_rejects_maps_of_different_or_non_cubic_boxes():
    with pytest.raises(ValueError, match=r"`map2` must have the box of map1 \(4, 4, 4\), got \(5, 5, 5\)"):
        fsc_curve(np.zeros((4, 4, 4)), np.zeros((5, 5, 5)))
    with pytest.raises(ValueError, match=r"`map1` must be a cubic"):
        fsc_curve(np.zeros((4, 4, 5)), np.zeros((4, 4, 5)))
    with pytest.raises(ValueError, match=r"`mask` must have the box"):
        fsc_curve(np.zeros((4, 4, 4)), np.zeros((4, 4, 4)), mask=np.ones((2, 2, 2)))


# --- the resolution -------------------------------------------------------------------------------


def _synthetic(values, box=12):
    shells = np.arange(len(values))
    return FscCurve(shells=shells, frequency=shells / box, fsc=np.array(values, np.float64))


def test_resolution_interpolates_between_the_shells_around_the_crossing():
    curve = _synthetic([1.0, 0.9, 0.8, 0.6, 0.4, 0.2, 0.1])
    half = resolution(curve, 0.5, pixel_size=1.5)
    # halfway from 0.6 (shell 3) to 0.4 (shell 4): shell 3.5 of a 12-pixel box
    assert half.frequency == pytest.approx(3.5 / 12)
    assert half.pixels == pytest.approx(12 / 3.5)
    assert half.angstrom == pytest.approx(1.5 * 12 / 3.5)
    gold = resolution(curve, 0.143, pixel_size=1.5)
    # from 0.2 (shell 5) to 0.1 (shell 6): 57% of the way
    assert gold.frequency == pytest.approx((5 + 0.57) / 12)
    assert isinstance(gold, Resolution) and gold.threshold == 0.143


def test_resolution_takes_the_first_crossing_and_ignores_shell_zero():
    curve = _synthetic([0.0, 0.9, 0.3, 0.8, 0.1])
    assert resolution(curve, 0.5, pixel_size=1.0).frequency == pytest.approx((1 + 2 / 3) / 12)


def test_resolution_is_the_box_when_even_shell_one_is_below():
    crossing = resolution(_synthetic([0.0, 0.05, 0.01]), 0.143, pixel_size=2.0)
    assert crossing.pixels == pytest.approx(12) and crossing.angstrom == pytest.approx(24)


def test_resolution_is_none_when_the_curve_never_crosses():
    assert resolution(_synthetic([1.0, 0.9, 0.6, 0.51]), 0.5, pixel_size=1.0) is None


@pytest.mark.parametrize("pixel_size", [0.0, -1.0, float("nan")])
def test_resolution_rejects_a_bad_pixel_size(pixel_size):
    with pytest.raises(ValueError, match="pixel_size"):
        resolution(_synthetic([1.0, 0.1]), 0.5, pixel_size=pixel_size)


def test_csv_holds_every_shell_in_both_units(tmp_path):
    curve = _synthetic([1.0, 0.9, 0.4], box=4)
    path = write_fsc_csv(tmp_path / "fsc.csv", curve, pixel_size=2.0)
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == [
        "shell",
        "frequency_per_pixel",
        "frequency_per_angstrom",
        "resolution_angstrom",
        "fsc",
    ]
    assert [int(r["shell"]) for r in rows] == [0, 1, 2]
    assert [float(r["frequency_per_angstrom"]) for r in rows] == pytest.approx([0, 1 / 8, 1 / 4])
    assert [float(r["resolution_angstrom"]) for r in rows] == [float("inf"), 8.0, 4.0]
    assert [float(r["fsc"]) for r in rows] == [1.0, 0.9, 0.4]
    assert [p.name for p in tmp_path.iterdir()] == ["fsc.csv"]  # no temporary file left


# --- `toolkit fsc` ---------------------------------------------------------------------------------


def _mrc(path, volume, voxel_size=1.5):
    """Write with mrcfile, the independent writer (voxel_size 0 leaves the header without one)."""
    with mrcfile.new(path) as mrc:
        mrc.set_data(np.asarray(volume, np.float32))
        if voxel_size:
            mrc.voxel_size = voxel_size
    return path


@pytest.fixture
def half_maps(tmp_path):
    """Two 8^3 maps sharing a signal, with strong independent noise beyond shell 2."""
    signal = RNG.normal(size=(8, 8, 8))
    k = np.fft.fftfreq(8)
    high = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2) > 2.5 / 8
    noisy = [signal + 10 * np.fft.ifftn(np.fft.fftn(RNG.normal(size=signal.shape)) * high).real for _ in "12"]
    return _mrc(tmp_path / "half1.mrc", noisy[0]), _mrc(tmp_path / "half2.mrc", noisy[1])


def test_command_writes_the_csv_and_figure_and_prints_each_threshold(half_maps, tmp_path):
    half1, half2 = half_maps
    result = CliRunner().invoke(cli, ["fsc", str(half1), str(half2), "--out", str(tmp_path / "out" / "run")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"FSC 0\.143: \d+\.\d A \(\d+\.\d px\)", lines[0]), lines
    assert re.fullmatch(r"FSC 0\.5: \d+\.\d A \(\d+\.\d px\)", lines[1]), lines
    pixels = float(re.search(r"\((\d+\.\d) px\)", lines[1]).group(1))
    assert 8 / 3 <= pixels <= 8 / 2  # the 0.5 crossing lies between shells 2 and 3
    rows = list(csv.DictReader((tmp_path / "out" / "run.csv").open()))
    assert len(rows) == 5 and float(rows[4]["resolution_angstrom"]) == pytest.approx(3.0)
    assert (tmp_path / "out" / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_says_when_a_threshold_is_not_crossed(tmp_path):
    volume = RNG.normal(size=(8, 8, 8))
    one, two = _mrc(tmp_path / "a.mrc", volume), _mrc(tmp_path / "b.mrc", volume)
    result = CliRunner().invoke(cli, ["fsc", str(one), str(two)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        "FSC 0.143: does not cross (better than Nyquist, 2.0 px)",
        "FSC 0.5: does not cross (better than Nyquist, 2.0 px)",
    ]
    assert (tmp_path / "a_fsc.csv").exists() and (tmp_path / "a_fsc.png").exists()
    again = CliRunner().invoke(cli, ["fsc", str(one), str(two)])
    assert again.exit_code == 2 and "a_fsc.csv: already exists; pass --overwrite" in again.stderr
    assert CliRunner().invoke(cli, ["fsc", str(one), str(two), "--overwrite"]).exit_code == 0


def test_pixel_size_option_fills_headers_without_one(tmp_path):
    volume = RNG.normal(size=(8, 8, 8))
    one, two = _mrc(tmp_path / "a.mrc", volume, 0), _mrc(tmp_path / "b.mrc", volume, 0)
    result = CliRunner().invoke(cli, ["fsc", str(one), str(two), "--pixel-size", "2.5"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "a_fsc.csv").open()))
    assert float(rows[4]["resolution_angstrom"]) == pytest.approx(5.0)


def _bad_inputs(tmp_path):
    volume = RNG.normal(size=(8, 8, 8))
    a = _mrc(tmp_path / "a.mrc", volume)
    small = _mrc(tmp_path / "small.mrc", volume[:6, :6, :6])
    coarse = _mrc(tmp_path / "coarse.mrc", volume, voxel_size=1.8)
    bare1, bare2 = _mrc(tmp_path / "bare1.mrc", volume, 0), _mrc(tmp_path / "bare2.mrc", volume, 0)
    text = tmp_path / "notes.mrc"
    text.write_text("not a map\n" * 200)
    return {
        "box": ([a, small], [a, small], "must have one box; pad or crop one, e.g. relion_image_handler"),
        "pixel": ([a, coarse], [a, coarse], "differ in pixel size; resample one"),
        "no_pixel": ([bare1, bare2], [bare1, bare2], "no pixel size in the headers; pass --pixel-size"),
        "missing": ([a, tmp_path / "nope.mrc"], [tmp_path / "nope.mrc"], "file not found"),
        "not_mrc": ([a, text], [text], "not a valid MRC map"),
        "mask_box": ([a, a, "--mask", small], [small], "the mask must have one box"),
    }


@pytest.mark.parametrize("case", ["box", "pixel", "no_pixel", "missing", "not_mrc", "mask_box"])
def test_command_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, case):
    args, named, expected = _bad_inputs(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["fsc", *map(str, args), "--out", str(tmp_path / "result")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert all(str(path) in lines[0] for path in named), lines
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_default_prefix_drops_map_suffixes(tmp_path):
    assert (
        default_prefix(tmp_path / "run_half1_class001_unfil.mrc") == tmp_path / "run_half1_class001_unfil_fsc"
    )
    assert default_prefix(tmp_path / "half1.mrc.gz") == tmp_path / "half1_fsc"
    assert default_prefix(tmp_path / "map") == tmp_path / "map_fsc"
