"""`toolkit reconstruct`: a map from a RELION particle STAR file, its poses, shifts and CTFs.

With `half_maps`, the particles are split into two random halves (or as the STAR file's
`rlnRandomSubset` says), each half is reconstructed on its own, and their FSC is written with
the resolution at 0.143, the gold-standard criterion. The split is recorded in a copy of the
STAR file with an `rlnRandomSubset` column, so refinement can keep the halves apart.

With `shard` ("I/N"), one process inserts every N-th particle and writes its Fourier sums
(`.npz`); `merge_parts` adds the sums of all shards and writes the maps, the same maps one
process makes (the split into halves is drawn over all particles, so every shard agrees on it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.errors import RunError
from toolkit.geometry import relion_to_matrix
from toolkit.io.atomic import replace_atomically
from toolkit.io.mrc import MrcFormatError, write_map
from toolkit.io.particles import read_particles, write_updated
from toolkit.io.star import StarFormatError
from toolkit.reconstruction.backproject import Accumulator, Microscope, accumulate
from toolkit.runs.infer import read_from_stacks
from toolkit.runs.shards import shard_rows

SUBSET = "rlnRandomSubset"


def output_paths(out: Path, half_maps: bool) -> dict[str, Path]:
    """Every file the command writes: the map, and with half maps, the halves, their FSC and the split."""
    out = Path(out)
    paths = {"map": out}
    if half_maps:
        stem = out.with_suffix("")
        paths.update(
            half1=Path(f"{stem}_half1.mrc"),
            half2=Path(f"{stem}_half2.mrc"),
            fsc_csv=Path(f"{stem}_halves_fsc.csv"),
            fsc_png=Path(f"{stem}_halves_fsc.png"),
            star=Path(f"{stem}_particles.star"),
        )
    return paths


def microscope_of(star: Path, particles, pixel_size: float) -> Microscope | None:
    """The particles' CTFs, or None when the STAR file has no defocus."""
    ctf = particles.ctf
    if ctf is None:
        return None
    for key in ("voltage", "spherical_aberration", "amplitude_contrast"):
        if np.isnan(ctf[key]).any():
            raise RunError(f"{star}: has defocus but no {key.replace('_', ' ')} for some particles; add it")
    return Microscope(pixel_size=pixel_size, **ctf)


def random_subsets(star: Path, particles, seed: int) -> tuple[np.ndarray, bool]:
    """Half 1 or 2 of each particle: from its `rlnRandomSubset` when the file has one, else drawn."""
    count = len(particles.image_names)
    if particles.random_subset is not None:
        subsets = particles.random_subset
        if not set(np.unique(subsets).tolist()) <= {1, 2} or len(np.unique(subsets)) < 2:
            raise RunError(f"{star}: _{SUBSET} must hold both 1 and 2 (and nothing else)")
        return subsets, True
    order = np.random.default_rng(seed).permutation(count)
    subsets = np.ones(count, np.int64)
    subsets[order[count // 2 :]] = 2
    return subsets, False


def reconstruct_star(
    star: Path,
    out: Path,
    half_maps: bool = False,
    regularization: float = 1.0,
    invert_contrast: bool = False,
    batch_size: int = 64,
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    shard: str | None = None,
) -> dict:
    """Reconstruct the particles of `star` into `out` (MRC, or the sums of one shard as .npz)."""
    star, out = Path(star), Path(out)
    if shard is not None and out.suffix != ".npz":
        raise RunError(
            f"--out {out}: a shard writes its Fourier sums; give PART.npz, then merge with --merge"
        )
    paths = {"parts": out} if shard is not None else output_paths(out, half_maps)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise RunError(f"{existing[0]}: already exists; pass --overwrite or choose another --out")
    if batch_size < 1:
        raise RunError(f"--batch-size: expected a positive integer, got {batch_size}")
    if not regularization >= 0:
        raise RunError(f"--regularization: expected a number >= 0, got {regularization}")
    try:
        particles = read_particles(star)
        if particles.angles is None:
            raise RunError(
                f"{star}: has no _rlnAngleRot/_rlnAngleTilt/_rlnAnglePsi columns; reconstruct needs poses "
                "(toolkit infer writes them)"
            )
        images = read_from_stacks(star, particles.stack_paths, particles.image_indices)
        subsets, given = random_subsets(star, particles, seed) if half_maps else (None, False)
    except (MrcFormatError, StarFormatError) as error:
        raise RunError(str(error)) from None
    rows = shard_rows(shard, len(images))
    particles, images = particles.take(rows), images[rows]
    subsets = None if subsets is None else subsets[rows]
    pixel_size = float(particles.pixel_size[0])
    if not pixel_size > 0 or not np.allclose(particles.pixel_size, pixel_size):
        raise RunError(f"{star}: needs one positive pixel size (_rlnImagePixelSize) for all its particles")
    shifts = None
    if particles.origins is not None:
        shifts = particles.origins / pixel_size  # RELION's origin: the move that centres a particle
    if invert_contrast:
        images = -images
    microscope = microscope_of(star, particles, pixel_size)
    rotations = relion_to_matrix(particles.angles.astype(np.float32)).numpy()

    halves = accumulate(images, rotations, shifts, microscope, subsets, batch_size, progress)
    summary = {"particles": len(images), "pixel_size": pixel_size, "ctf": microscope is not None}
    if shard is not None:
        write_parts(out, halves, pixel_size, half_maps, len(images), overwrite)
        return {**summary, "parts": str(out)}
    if half_maps:
        summary.update(write_halves(paths, halves, regularization, pixel_size, overwrite))
        if not given:
            write_updated(star, particles, paths["star"], {SUBSET: subsets}, overwrite)
            summary["star"] = str(paths["star"])
    halves[1].merge(halves[2])
    write_map(paths["map"], halves[1].volume(regularization), pixel_size, overwrite=overwrite)
    summary["map"] = str(paths["map"])
    return summary


def write_halves(
    paths: dict, halves: dict, regularization: float, pixel_size: float, overwrite: bool
) -> dict:
    """Write both half maps, their FSC curve (CSV and figure); returns the resolutions at 0.143 and 0.5."""
    from toolkit.figures.fsc import fsc_figure
    from toolkit.reconstruction.fsc import fsc_curve, resolution, write_fsc_csv

    maps = [halves[half].volume(regularization) for half in (1, 2)]
    for half, volume in zip((1, 2), maps, strict=True):
        write_map(paths[f"half{half}"], volume, pixel_size, overwrite=overwrite)
    curve = fsc_curve(*maps)
    write_fsc_csv(paths["fsc_csv"], curve, pixel_size)
    fsc_figure(curve, paths["fsc_png"], pixel_size, title="FSC of the half maps")
    return {
        "half_maps": [str(paths["half1"]), str(paths["half2"])],
        "fsc": str(paths["fsc_csv"]),
        "resolution": {threshold: resolution(curve, threshold, pixel_size) for threshold in (0.143, 0.5)},
    }


def write_parts(
    out: Path, halves: dict, pixel_size: float, half_maps: bool, count: int, overwrite: bool
) -> None:
    """One shard's Fourier sums of both halves, with what merging them needs."""
    arrays = {**halves[1].arrays("half1_"), **halves[2].arrays("half2_")}
    meta = {"pixel_size": pixel_size, "half_maps": half_maps, "particles": count}

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays, **{key: np.asarray(value) for key, value in meta.items()})

    replace_atomically(out, write, overwrite)


def merge_parts(
    parts: list[Path], out: Path, half_maps: bool, regularization: float, overwrite: bool
) -> dict:
    """Add the Fourier sums of shards and write the map (and the half maps and their FSC)."""
    paths = output_paths(out, half_maps)
    paths.pop("star", None)  # the split was recorded by no shard; rerun one process to get it
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise RunError(f"{existing[0]}: already exists; pass --overwrite or choose another --out")
    if not parts:
        raise RunError("--merge: give the .npz sums of every shard")
    halves, pixel_sizes, count = {}, set(), 0
    for part in parts:
        try:
            with np.load(part) as arrays:
                if half_maps and not bool(arrays["half_maps"]):
                    raise RunError(f"{part}: made without --half-maps; rerun its shard with --half-maps")
                for half in (1, 2):
                    summed = Accumulator.from_arrays(arrays, f"half{half}_")
                    halves.setdefault(half, Accumulator(summed.size)).merge(summed)
                pixel_sizes.add(float(arrays["pixel_size"]))
                count += int(arrays["particles"])
        except (OSError, KeyError, ValueError) as error:
            raise RunError(
                f"{part}: not the sums of a reconstruct shard ({error}); rerun it with --shard"
            ) from None
    if len(pixel_sizes) > 1:
        raise RunError(
            f"--merge: the shards have different pixel sizes {sorted(pixel_sizes)}; "
            "merge the shards of one STAR file"
        )
    pixel_size = pixel_sizes.pop()
    summary = {"particles": count, "pixel_size": pixel_size, "ctf": None}
    if half_maps:
        summary.update(write_halves(paths, halves, regularization, pixel_size, overwrite))
    halves[1].merge(halves[2])
    write_map(paths["map"], halves[1].volume(regularization), pixel_size, overwrite=overwrite)
    return {**summary, "map": str(paths["map"])}
