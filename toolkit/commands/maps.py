"""`toolkit fsc MAP1 MAP2`: the Fourier shell correlation of two maps, as a CSV, a figure and a summary."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from toolkit.errors import RunError

#: FSC thresholds printed and drawn: two independent half maps, then a map against a known truth.
THRESHOLDS = (0.143, 0.5)

#: Pixel sizes closer than this relative difference count as one.
PIXEL_SIZE_TOLERANCE = 1e-3

_MAP_SUFFIXES = (".gz", ".bz2", ".mrc", ".map", ".mrcs")


def default_prefix(map1: Path) -> Path:
    """`half1_unfil.mrc` -> `half1_unfil_fsc`, in the folder of MAP1."""
    name = map1.name
    for suffix in _MAP_SUFFIXES:  # in this order, so `.mrc.gz` loses both
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return map1.with_name(f"{name}_fsc")


def _same(first: float, second: float) -> bool:
    return abs(first - second) <= PIXEL_SIZE_TOLERANCE * max(first, second)


def common_pixel_size(maps: dict[Path, float], given: float | None) -> float:
    """The one pixel size of the maps: `given` if set, else their headers', which must agree.

    Args:
        maps: header pixel size of each file (0.0 when the header has none).
        given: `--pixel-size`, or `None`.

    Raises:
        RunError: no pixel size is known, or two headers disagree.
    """
    if given is not None:
        if not given > 0:
            raise RunError(f"--pixel-size: expected Angstrom per pixel > 0, got {given}")
        return float(given)
    known = {path: size for path, size in maps.items() if size > 0}
    if not known:
        names = " and ".join(str(path) for path in maps)
        raise RunError(f"{names}: no pixel size in the headers; pass --pixel-size (Angstrom per pixel)")
    (first, size), *others = known.items()
    for path, other in others:
        if not _same(size, other):
            raise RunError(
                f"{first} ({size:g} A/pixel) and {path} ({other:g} A/pixel) differ in pixel size; "
                f"resample one, e.g. relion_image_handler --i {path} --rescale_angpix {size:g} "
                f"--new_box BOX, or pass --pixel-size if a header is wrong"
            )
    return size


def crossing_line(threshold: float, crossing, nyquist_pixels: float) -> str:
    """`FSC 0.143: 7.9 A (3.2 px)`, or `FSC 0.5: does not cross (better than Nyquist, 2.0 px)`."""
    if crossing is None:
        return f"FSC {threshold:g}: does not cross (better than Nyquist, {nyquist_pixels:.1f} px)"
    return f"FSC {threshold:g}: {crossing.angstrom:.1f} A ({crossing.pixels:.1f} px)"


def aligned_map(map1: Path, map2: Path, moving, reference, out: Path, pixel_size: float):
    """MAP1's volume superposed on MAP2's, written to `out`; says what transform it took."""
    from scipy.spatial.transform import Rotation

    from toolkit.io.mrc import write_map
    from toolkit.reconstruction.align import align_map

    result = align_map(moving, reference)
    turn = Rotation.from_matrix(result.rotation)
    axis = turn.as_rotvec() / max(turn.magnitude(), 1e-12)
    shift = ", ".join(f"{value:.2f}" for value in result.shift)
    click.echo(
        f"aligned {map1.name} onto {map2.name}: {'mirrored, then ' if result.mirrored else ''}turned "
        f"{np.degrees(turn.magnitude()):.1f} degrees about ({', '.join(f'{a:.3f}' for a in axis)}) "
        f"(x, y, z) and shifted ({shift}) voxels; correlation {result.correlation:.4f}"
    )
    write_map(out, result.volume, pixel_size, overwrite=True)
    return result.volume


@click.command("fsc")
@click.argument("map1", type=click.Path(path_type=Path))
@click.argument("map2", type=click.Path(path_type=Path))
@click.option(
    "--mask",
    type=click.Path(path_type=Path),
    metavar="MASK.mrc",
    help="MRC mask of the same box, multiplied into both maps first (e.g. a soft solvent mask).",
)
@click.option(
    "--pixel-size",
    type=float,
    help="Angstrom per pixel, overriding the headers (default: the headers', which must agree; "
    "needed when neither header has one).",
)
@click.option(
    "--out",
    "prefix",
    type=click.Path(path_type=Path),
    metavar="PREFIX",
    help="Write PREFIX.csv and PREFIX.png (default: MAP1's path without .mrc plus _fsc, "
    "e.g. half1.mrc -> half1_fsc.csv and half1_fsc.png).",
)
@click.option(
    "--align",
    is_flag=True,
    help="Superpose MAP1 on MAP2 first (rotation, shift and hand, by a global search), for maps in "
    "different frames, e.g. one learned ab initio; writes the aligned map to PREFIX_aligned.mrc.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing PREFIX files.")
def fsc(map1, map2, mask, pixel_size, prefix, align, overwrite) -> None:
    """Fourier shell correlation of MAP1 and MAP2, two MRC maps of one cubic box and pixel size.

    Prints the resolution where the FSC first falls below 0.143, the criterion for two
    independently refined half maps, and below 0.5, the criterion for a map against a known
    truth (e.g. a map simulated from the model). Symmetry is C1: the maps are compared as
    they are (there is no --sym). Writes the curve to PREFIX.csv, its figure to PREFIX.png
    and both maps' central slices and projections to PREFIX_maps.png.

    With --align, MAP1 is first turned, shifted and, if that fits better, mirrored onto MAP2
    (`toolkit.reconstruction.align`), and the FSC is that of the aligned map.
    """
    from toolkit.figures.fsc import fsc_figure, map_views_figure
    from toolkit.io.mrc import MrcFormatError, read_map
    from toolkit.reconstruction.fsc import fsc_curve, resolution, write_fsc_csv

    paths = [map1, map2] + ([mask] if mask is not None else [])
    try:
        maps = {path: read_map(path) for path in paths}
    except MrcFormatError as error:
        raise RunError(str(error)) from None
    first, second = maps[map1], maps[map2]
    if first.volume.shape[0] < 4:  # fewer than three shells: no curve to speak of
        raise RunError(f"{map1}: a {first.volume.shape[0]}^3 box is too small; give maps of at least 4^3")
    for path in paths[1:]:
        if maps[path].volume.shape != first.volume.shape:
            what = "the mask" if path == mask else "the maps"
            raise RunError(
                f"{map1} ({first.volume.shape[0]}^3) and {path} ({maps[path].volume.shape[0]}^3): "
                f"{what} must have one box; pad or crop one, e.g. relion_image_handler --i {path} "
                f"--new_box {first.volume.shape[0]}"
            )
    size = common_pixel_size({map1: first.pixel_size, map2: second.pixel_size}, pixel_size)
    if mask is not None and maps[mask].pixel_size > 0 and not _same(maps[mask].pixel_size, size):
        raise RunError(
            f"{mask}: the mask has {maps[mask].pixel_size:g} A/pixel, the maps {size:g}; "
            f"make the mask at the maps' pixel size"
        )

    prefix = prefix if prefix is not None else default_prefix(map1)
    suffixes = (".csv", ".png", "_maps.png") + (("_aligned.mrc",) if align else ())
    outputs = [prefix.with_name(prefix.name + suffix) for suffix in suffixes]
    existing = [path for path in outputs if path.exists()]
    if existing and not overwrite:
        raise RunError(f"{existing[0]}: already exists; pass --overwrite or choose another --out")
    try:
        prefix.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(
            f"{prefix.parent}: cannot create the output folder ({error.strerror or error})"
        ) from None

    volume = first.volume
    if align:
        volume = aligned_map(map1, map2, first.volume, second.volume, outputs[3], size)
    weights = maps[mask].volume if mask is not None else None
    curve = fsc_curve(volume, second.volume, weights)
    write_fsc_csv(outputs[0], curve, size)
    fsc_figure(curve, outputs[1], size, THRESHOLDS, title=f"FSC of {map1.name} and {map2.name}")
    map_views_figure({map1.name: volume, map2.name: second.volume}, outputs[2])
    nyquist_pixels = 1.0 / curve.frequency[-1]
    for threshold in THRESHOLDS:
        click.echo(crossing_line(threshold, resolution(curve, threshold, size), nyquist_pixels))
    click.echo(
        f"{outputs[0]} and {outputs[1]}: the curve at {size:g} A/pixel; the maps side by side in {outputs[2]}"
    )
