"""`toolkit infer`: the orientation of every particle of a stack, written as a RELION STAR file.

The model is an exported SavedModel with an `orientation` signature (a run directory of an
orientation recipe holds one in `saved_model/`). It reads images as its training data
produced them (e.g. particles written by `toolkit simulate` from the same recipe).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.data.sources.particles import prepare_like_training
from toolkit.errors import RunError
from toolkit.geometry import error_statistics, matrix_to_relion, orientation_errors, relion_to_matrix
from toolkit.io.mrc import MrcFormatError, read_stack
from toolkit.io.particles import image_name, read_particles, write_particles, write_updated
from toolkit.io.star import StarFormatError
from toolkit.runs.directory import RunDirectory
from toolkit.runs.shards import shard_rows

log = logging.getLogger("toolkit")


def load_orientation_signature(path: Path):
    """The `orientation` function of a SavedModel (or of `RUN_DIR/saved_model`) and its image spec."""
    path = Path(path)
    saved = RunDirectory(path).saved_model if RunDirectory(path).saved_model.is_dir() else path
    if not (saved / "saved_model.pb").is_file():
        raise RunError(f"{path}: no SavedModel here or in saved_model/; give a run directory or an export")
    module = tf.saved_model.load(str(saved))
    if "orientation" not in module.signatures:
        raise RunError(
            f"{saved}: has no `orientation` signature (found {', '.join(module.signatures) or 'none'}); "
            "export an orientation model, e.g. a run of recipes/f_orientation.yaml"
        )
    function = module.signatures["orientation"]
    spec = function.structured_input_signature[1]["images"]
    return module, function, spec


def read_particle_images(path: Path, out: Path) -> dict:
    """Images `[N, S, S]`, image names relative to `out`'s folder, pixel sizes, true angles and the
    STAR file's `Particles` (None for a bare stack)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".star":
            particles = read_particles(path)
            stacks, indices = particles.stack_paths, particles.image_indices
            images = read_from_stacks(path, stacks, indices)
            pixel_size, angles, star = particles.pixel_size, particles.angles, particles
        else:
            stack = read_stack(path)
            images, stacks, indices = stack.images, [path] * len(stack.images), np.arange(len(stack.images))
            pixel_size, angles, star = np.full(len(images), stack.pixel_size), None, None
    except (MrcFormatError, StarFormatError) as error:
        raise RunError(str(error)) from None
    names = [
        image_name(int(i), os.path.relpath(Path(s).resolve(), Path(out).resolve().parent))
        for s, i in zip(stacks, indices, strict=True)
    ]
    return {"images": images, "names": names, "pixel_size": pixel_size, "angles": angles, "star": star}


def read_from_stacks(star: Path, stacks: list, indices: np.ndarray) -> np.ndarray:
    """The images a STAR file names, in its order, reading each stack once."""
    if not stacks:
        raise RunError(f"{star}: holds no particles")
    parts = {}
    for stack in sorted(set(stacks)):
        rows = np.flatnonzero([s == stack for s in stacks])
        parts[stack] = rows, read_stack(stack, indices[rows]).images
    shapes = {images.shape[1:] for _, images in parts.values()}
    if len(shapes) > 1:
        raise RunError(f"{star}: its stacks hold images of different sizes {sorted(shapes)}")
    images = np.zeros((len(stacks), *shapes.pop()), np.float32)
    for rows, stack_images in parts.values():
        images[rows] = stack_images
    return images


def predict(function, spec, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Rotation matrices `[N, 3, 3]` for images `[N, S, S]`, batch by batch."""
    sequence = len(spec.shape) == 5  # [batch, time, S, S, channels]
    out = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size, ..., None]
        batch = batch[:, None] if sequence else batch
        out.append(np.reshape(function(images=tf.constant(batch))["rotations"].numpy(), (-1, 3, 3)))
    return np.concatenate(out) if out else np.zeros((0, 3, 3), np.float32)


def error_summary(true_angles: np.ndarray, rotations: np.ndarray) -> dict:
    """Geodesic error statistics (degrees) of predicted poses against RELION angles from the input STAR."""
    return error_statistics(orientation_errors(relion_to_matrix(true_angles.astype(np.float32)), rotations))


def _training_preparation(model_path: Path) -> dict | None:
    """How a run of `data.type: particles` prepared its particles (`data.json`), or None."""
    shapes = RunDirectory(model_path).read_shapes() if Path(model_path).is_dir() else None
    return None if shapes is None else shapes.measured.get("preparation")


def infer(
    model_path: Path,
    input_path: Path,
    out: Path,
    batch_size: int = 256,
    overwrite: bool = False,
    invert_contrast: bool = False,
    shard: str | None = None,
) -> dict:
    """Predict the pose of every particle of `input_path` (STAR or MRC/MRCS) and write `out` (STAR).

    `invert_contrast` negates the images first, for data whose particles are dark; `shard` ("I/N")
    takes every N-th particle from the I-th on.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out}: already exists; pass --overwrite or choose another --out")
    if batch_size < 1:
        raise RunError(f"--batch-size: expected a positive integer, got {batch_size}")
    _, function, spec = load_orientation_signature(model_path)
    particles = read_particle_images(input_path, out)
    rows = shard_rows(shard, len(particles["images"]))
    particles = {
        "images": particles["images"][rows],
        "names": [particles["names"][i] for i in rows],
        "pixel_size": particles["pixel_size"][rows],
        "angles": None if particles["angles"] is None else particles["angles"][rows],
        "star": None if particles["star"] is None else particles["star"].take(rows),
    }
    size = int(spec.shape[-2])
    images = -particles["images"] if invert_contrast else particles["images"]
    preparation = _training_preparation(model_path)
    if preparation is not None:  # a run trained on particle files: prepare these alike
        images = prepare_like_training(images, particles["star"], preparation, batch_size)
    if images.shape[1:] != (size, size):
        raise RunError(
            f"{input_path}: images are {'x'.join(map(str, particles['images'].shape[1:]))} pixels, the "
            f"model reads {size}x{size}; give particles made like its training data"
        )
    rotations = predict(function, spec, images, batch_size)
    pixel_size = float(particles["pixel_size"][0])
    if not pixel_size > 0:
        log.warning(f"{input_path}: no pixel size given; writing 1.0 Angstrom/pixel")
        pixel_size = 1.0
    angles = matrix_to_relion(rotations).numpy().astype(np.float64)
    try:
        if particles["star"] is not None:  # keep every column and optics group of the input
            columns = dict(zip(("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"), angles.T, strict=True))
            write_updated(input_path, particles["star"], out, columns, overwrite)
        else:
            write_particles(out, particles["names"], pixel_size, size, angles=angles, overwrite=overwrite)
    except OSError as error:
        raise RunError(f"{out}: cannot write ({error.strerror or error})") from None
    summary = {"particles": len(rotations), "star": str(out)}
    if particles["angles"] is not None:
        summary.update(error_summary(particles["angles"], rotations))
    return summary
