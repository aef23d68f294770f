"""`toolkit simulate`: a particle stack (MRCS), its RELION STAR file of true poses and the true map.

The particles are drawn by the recipe's data source (`DataSource.draw_particles`: for
shadows, its sample, orientations, shifts, CTF and noise) on a random stream of their own, so
they never repeat a training or validation example. The files follow RELION's conventions, so
RELION and cryoDRGN read them as the toolkit does: pixel N // 2 is the origin, the CTF has
RELION's sign (white particles, reconstructed to a positive map without inverting the
contrast), and `rlnOriginXAngst`/`rlnOriginYAngst` hold the move that centres each particle
(minus where its centre lies). `truth.mrc` is the sample's map on the particles' grid and
pixel size, scaled so that its projections are the clean particles.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from toolkit.errors import RunError
from toolkit.geometry import matrix_to_relion
from toolkit.io.mrc import write_map, write_stack_chunks
from toolkit.io.particles import image_name, write_particles

STACK_NAME, STAR_NAME, PREVIEW_NAME, TRUTH_NAME = (
    "particles.mrcs",
    "particles.star",
    "particles.png",
    "truth.mrc",
)


def ctf_columns(defocus: np.ndarray, microscope: dict) -> dict:
    """The CTF of particles drawn with `defocus` [N, 3] by a recipe's `data.ctf`, for `write_particles`."""
    u, v, angle = np.asarray(defocus, np.float64).T
    return {
        "defocus_u": u,
        "defocus_v": v,
        "defocus_angle": angle,
        "voltage": microscope["voltage"],
        "spherical_aberration": microscope["spherical_aberration"],
        "amplitude_contrast": microscope["amplitude_contrast"],
        "phase_shift": 0.0,  # written, as cryoDRGN's CTF parser needs the column
        "b_factor": microscope["b_factor"],
    }


def simulate(
    recipe: dict,
    count: int,
    out: Path,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write `count` particles (particles.mrcs, particles.star) and truth.mrc to `out`; returns a summary.

    The particles are drawn and written a chunk at a time, so memory is bounded by a chunk, not
    by `count`; `progress(done, total)` is told of each chunk. Each file appears only when complete.
    """
    from toolkit.recipes.registry import source_for, task_for

    if count < 1:
        raise RunError(f"--count: expected a positive number of particles, got {count}")
    out = Path(out)
    stack, star, preview, truth = out / STACK_NAME, out / STAR_NAME, out / PREVIEW_NAME, out / TRUTH_NAME
    existing = [str(p) for p in (stack, star, preview, truth) if p.exists()]
    if existing and not overwrite:
        raise RunError(f"{existing[0]}: already exists; pass --overwrite or choose another --out")
    particles = source_for(recipe).draw_particles(count, task_for(recipe).orientation_condition)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{out}: cannot create the output folder ({error.strerror or error})") from None

    spec, kept = recipe["data"], []

    def images():  # the stack's images; the rest of each chunk is kept for the STAR file
        for chunk in particles["chunks"]:
            kept.append({key: value for key, value in chunk.items() if key != "images"})
            if len(kept) == 1:
                draw_preview(chunk["images"], preview)
            if progress is not None:
                progress(len(chunk["images"]), count)
            yield chunk["images"]

    size = spec["image_size"]
    write_stack_chunks(stack, images(), count, (size, size), spec["pixel_size"], overwrite=overwrite)
    drawn = {key: None if kept[0][key] is None else np.concatenate([k[key] for k in kept]) for key in kept[0]}
    ctf = None if drawn["defocus"] is None else ctf_columns(drawn["defocus"], spec["ctf"])
    origins = None
    if drawn["shifts"] is not None:
        origins = -drawn["shifts"].astype(np.float64) * spec["pixel_size"]
    angles = matrix_to_relion(drawn["rotations"]).numpy().astype(np.float64)
    write_particles(
        star,
        [image_name(i, STACK_NAME) for i in range(count)],
        spec["pixel_size"],
        size,
        angles=angles,
        ctf=ctf,
        origins=origins,
        overwrite=overwrite,
    )
    write_map(truth, particles["truth"], spec["pixel_size"], overwrite=overwrite)
    return {
        "particles": count,
        "stack": str(stack),
        "star": str(star),
        "truth": str(truth),
        "pixel_size": spec["pixel_size"],
    }


def draw_preview(images: np.ndarray, path: Path, count: int = 16) -> Path:
    """The first particles in a grid, each scaled to its own range, y pointing up."""
    from toolkit.figures import plots

    shown = images[:count, ::-1]  # row 0 holds the lowest y
    low = shown.min(axis=(1, 2), keepdims=True)
    span = np.maximum(shown.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    title = f"first {len(shown)} particles, each scaled to its range"
    return plots.image_grid(((shown - low) / span)[..., None], path, title, columns=8)
