"""`toolkit refine`: poses and shifts of a STAR file's particles by projection matching to a reference.

The reference is a map (MRC, projected by the Fourier projector) or a recipe (its sample through
the exact blob renderer, scaled as `toolkit simulate` scales its particles). The search starts
from a run's amortized poses (`init`, its `orientation` signature) or from the whole SO(3) grid.
The output keeps every block and column of the input and sets the angles, the origins, the
match score and the spread of the candidates (see `toolkit.reconstruction.refine`). The results
so far are saved every `CHUNK` particles, so the same command, run again after a stop, resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.errors import RunError
from toolkit.geometry import matrix_to_relion
from toolkit.io.atomic import replace_atomically
from toolkit.io.mrc import MrcFormatError, read_map
from toolkit.io.particles import read_particles, write_updated
from toolkit.io.star import StarFormatError
from toolkit.reconstruction.refine import MapReference, RenderedReference, Result, Schedule, refine
from toolkit.runs.infer import error_summary, load_orientation_signature, predict, read_from_stacks
from toolkit.runs.reconstruct import microscope_of
from toolkit.runs.shards import shard_rows

SCORE = "toolkitMatchScore"  # the correlation the search maximizes; RELION has no label for it
CHUNK = 256  # particles refined between two saves of the partial result


def partial_path(out: Path) -> Path:
    """Where the results so far are kept, beside `out`, until `out` is written."""
    return out.with_name(f".{out.name}.partial.npz")


def load_partial(path: Path, key: dict) -> dict:
    """The results an interrupted run of the same command saved, or {} when there are none."""
    if not path.exists():
        return {}
    with np.load(path) as saved:
        if {name: str(saved[name]) for name in key} != {name: str(value) for name, value in key.items()}:
            raise RunError(f"{path}: partial results of another refinement; delete it or pass --overwrite")
        return {name: saved[name] for name in Result.__dataclass_fields__}


def save_partial(path: Path, key: dict, found: dict) -> None:
    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            np.savez(handle, **found, **{name: np.asarray(value) for name, value in key.items()})

    replace_atomically(path, write)


def load_reference(path: Path, size: int, pixel_size: float):
    """The reference of `path`: an MRC map of the particles' box, or a recipe of shadow data."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return recipe_reference(path, size)
    try:
        reference = read_map(path)
    except MrcFormatError as error:
        raise RunError(str(error)) from None
    box = reference.volume.shape[0]
    if box != size:
        raise RunError(
            f"{path}: a box of {box} voxels, the particles are {size} pixels; resample the map to their "
            f"box and pixel size first, e.g. relion_image_handler --i {path.name} --new_box {size} "
            f"--rescale_angpix {pixel_size:g}"
        )
    if reference.pixel_size > 0 and abs(reference.pixel_size / pixel_size - 1) > 1e-3:
        raise RunError(
            f"{path}: {reference.pixel_size:g} A/voxel, the particles are {pixel_size:g} A/pixel; resample "
            f"the map, e.g. relion_image_handler --i {path.name} --rescale_angpix {pixel_size:g} "
            f"--new_box {size}"
        )
    return MapReference(reference.volume)


def recipe_reference(path: Path, size: int) -> RenderedReference:
    """The recipe's sample (blobs exactly, a map by Fourier slices) over its data's intensity scale."""
    from toolkit.data.render import project_sample
    from toolkit.recipes.loader import load_recipe
    from toolkit.recipes.registry import source_for

    recipe = load_recipe(path)
    source = source_for(recipe)
    if not hasattr(source, "shadow_data"):
        raise RunError(f"{path}: data.type {recipe['data']['type']} has no 3D sample to project; give a map")
    data = source.shadow_data()
    if data.image_size != size:
        raise RunError(
            f"{path}: renders {data.image_size}-pixel shadows, the particles are {size} pixels; "
            f"pass --set data.image_size={size} to the recipe or give particles of its size"
        )

    def render(poses):
        return project_sample(data.sample, poses, size, data.extent) / data.intensity_scale

    return RenderedReference(render, size)


def half_of_each(star: Path, particles) -> np.ndarray:
    """The `rlnRandomSubset` (1 or 2) of each particle, which refining against two half maps needs."""
    if particles.random_subset is None:
        raise RunError(
            f"{star}: has no _rlnRandomSubset to pair its particles with two half maps; use the "
            "OUT_particles.star that toolkit reconstruct --half-maps writes"
        )
    halves = particles.random_subset
    if not set(np.unique(halves).tolist()) <= {1, 2}:
        raise RunError(f"{star}: _rlnRandomSubset must be 1 or 2 for every particle")
    return halves


def refine_star(
    star: Path,
    reference: Path | list[Path],
    out: Path,
    init: Path | None = None,
    invert_contrast: bool = False,
    schedule: Schedule | None = None,
    batch_size: int = 64,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    shard: str | None = None,
) -> dict:
    """Refine the particles of `star` (or of its shard "I/N") against `reference` and write `out`.

    Two references are the half maps of the particles' `rlnRandomSubset` halves: each half is
    refined against its own, so the half maps stay independent (the gold standard).
    """
    star, out = Path(star), Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out}: already exists; pass --overwrite or choose another --out")
    if batch_size < 1:
        raise RunError(f"--batch-size: expected a positive integer, got {batch_size}")
    try:
        particles = read_particles(star)
        images = read_from_stacks(star, particles.stack_paths, particles.image_indices)
    except (MrcFormatError, StarFormatError) as error:
        raise RunError(str(error)) from None
    rows = shard_rows(shard, len(images))
    particles, images = particles.take(rows), images[rows]
    size = images.shape[-1]
    pixel_size = float(particles.pixel_size[0])
    if not pixel_size > 0 or not np.allclose(particles.pixel_size, pixel_size):
        raise RunError(f"{star}: needs one positive pixel size (_rlnImagePixelSize) for all its particles")
    references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
    if len(references) not in (1, 2):
        raise RunError(f"--reference: give one map or recipe, or the two half maps, got {len(references)}")
    matchers = {label: load_reference(path, size, pixel_size) for label, path in enumerate(references, 1)}
    halves = np.ones(len(images), np.int64)
    if len(references) == 2:
        halves = half_of_each(star, particles)
    images = -images if invert_contrast else images
    initial = None
    if init is not None:
        _, function, spec = load_orientation_signature(init)
        if tuple(spec.shape[-3:-1]) != (size, size):
            raise RunError(f"{init}: its model reads {spec.shape[-3]}-pixel images, the particles are {size}")
        initial = predict(function, spec, images, 256)
    microscope = microscope_of(star, particles, pixel_size)
    partial = partial_path(out)
    key = {"star": str(star.resolve()), "particles": len(images), "shard": str(shard)}
    found = {} if overwrite else load_partial(partial, key)
    done = len(found.get("scores", ()))
    if progress is not None and done:
        progress(done, len(images))
    for start in range(done, len(images), CHUNK):
        rows = np.arange(start, min(start + CHUNK, len(images)))
        ctf = None if microscope is None else microscope.ctf(rows, size).numpy()
        pieces = {}
        for label, matcher in matchers.items():
            members = np.flatnonzero(halves[rows] == label)
            if members.size:
                pieces[label] = (
                    members,
                    refine(
                        matcher,
                        images[rows[members]],
                        None if ctf is None else ctf[members],
                        None if initial is None else initial[rows[members]],
                        schedule or Schedule(),
                        batch_size,
                        None if progress is None else (lambda count, _: progress(count, len(images))),
                    ),
                )
        chunk = {}
        for name in Result.__dataclass_fields__:
            values = [(members, getattr(piece, name)) for members, piece in pieces.values()]
            column = np.zeros((len(rows), *values[0][1].shape[1:]), values[0][1].dtype)
            for members, value in values:
                column[members] = value
            chunk[name] = column
        found = {
            name: np.concatenate([found[name], value]) if found else value for name, value in chunk.items()
        }
        save_partial(partial, key, found)
    result = Result(**found)
    angles = matrix_to_relion(result.rotations).numpy().astype(np.float64)
    origins = result.shifts.astype(np.float64) * pixel_size
    columns = {
        "rlnAngleRot": angles[:, 0],
        "rlnAngleTilt": angles[:, 1],
        "rlnAnglePsi": angles[:, 2],
        "rlnOriginXAngst": origins[:, 0],
        "rlnOriginYAngst": origins[:, 1],
        "rlnMaxValueProbDistribution": result.max_probability,
        "rlnNrOfSignificantSamples": result.significant,
        SCORE: result.scores,
    }
    try:
        write_updated(star, particles, out, columns, overwrite)
    except OSError as error:
        raise RunError(f"{out}: cannot write ({error.strerror or error})") from None
    partial.unlink(missing_ok=True)
    summary = {"particles": len(images), "star": str(out), "initial": init is not None}
    if particles.angles is not None:
        summary.update(error_summary(particles.angles, result.rotations))
    return summary
