"""`toolkit simulate`: a particle stack (MRCS) and its RELION STAR file of true poses.

The particles are drawn from a recipe's shadow data (its sample, orientations, CTF and noise)
on a random stream of their own, so they never repeat a training or validation shadow.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from toolkit.data.shadows import SIMULATE_STREAM
from toolkit.errors import RunError
from toolkit.geometry import matrix_to_relion
from toolkit.io.mrc import write_stack
from toolkit.io.particles import image_name, write_particles

STACK_NAME, STAR_NAME, PREVIEW_NAME = "particles.mrcs", "particles.star", "particles.png"


def draw_particles(source, count: int) -> dict:
    """`count` single shadows from a `ShadowData`: images `[N, S, S]`, rotations, defocus (or None)."""
    drawn = source.draw(math.ceil(count / source.sequence_length), SIMULATE_STREAM)
    size = source.image_size

    def flat(key, item_shape):
        return np.reshape(drawn[key], (-1, *item_shape))[:count] if key in drawn else None

    return {
        "images": flat("images", (size, size)),
        "rotations": flat("rotations", (3, 3)),
        "defocus": flat("defocus", (3,)),
    }


def simulate(recipe: dict, count: int, out: Path, overwrite: bool = False) -> dict:
    """Write `out/particles.mrcs` and `out/particles.star` with `count` particles; returns a summary."""
    from toolkit.recipes.builders import build_data

    if recipe["data"]["type"] != "shadows":
        raise RunError(f"data.type: toolkit simulate draws shadows, got {recipe['data']['type']!r}")
    if count < 1:
        raise RunError(f"--count: expected a positive number of particles, got {count}")
    out = Path(out)
    stack, star, preview = out / STACK_NAME, out / STAR_NAME, out / PREVIEW_NAME
    existing = [str(p) for p in (stack, star, preview) if p.exists()]
    if existing and not overwrite:
        raise RunError(f"{existing[0]}: already exists; pass --overwrite or choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"{out}: cannot create the output folder ({error.strerror or error})") from None

    spec = recipe["data"]
    particles = draw_particles(build_data(recipe).source, count)
    ctf = None
    if particles["defocus"] is not None:
        microscope = spec["ctf"]
        u, v, angle = particles["defocus"].T.astype(np.float64)
        ctf = {
            "defocus_u": u,
            "defocus_v": v,
            "defocus_angle": angle,
            "voltage": microscope["voltage"],
            "spherical_aberration": microscope["spherical_aberration"],
            "amplitude_contrast": microscope["amplitude_contrast"],
        }
    angles = matrix_to_relion(particles["rotations"]).numpy().astype(np.float64)
    write_stack(stack, particles["images"], spec["pixel_size"], overwrite=overwrite)
    write_particles(
        star,
        [image_name(i, STACK_NAME) for i in range(count)],
        spec["pixel_size"],
        spec["image_size"],
        angles=angles,
        ctf=ctf,
        overwrite=overwrite,
    )
    draw_preview(particles["images"], preview)
    return {"particles": count, "stack": str(stack), "star": str(star), "pixel_size": spec["pixel_size"]}


def draw_preview(images: np.ndarray, path: Path, count: int = 16) -> Path:
    """The first particles in a grid, each scaled to its own range, y pointing up."""
    from toolkit import plots

    shown = images[:count, ::-1]  # row 0 holds the lowest y
    low = shown.min(axis=(1, 2), keepdims=True)
    span = np.maximum(shown.max(axis=(1, 2), keepdims=True) - low, 1e-12)
    title = f"first {len(shown)} particles, each scaled to its range"
    return plots.image_grid(((shown - low) / span)[..., None], path, title, columns=8)
