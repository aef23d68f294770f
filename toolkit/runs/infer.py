"""`toolkit infer`: the orientation of every particle of a stack, written as a RELION STAR file.

The model is an exported SavedModel with an `orientation` signature (a run directory of an
orientation recipe holds one in `saved_model/`). It reads images as its training data
produced them (e.g. particles written by `toolkit simulate` from the same recipe).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import yaml

from toolkit.data.sources.particles import ParticleStacks, open_stack, training_preparation
from toolkit.errors import RunError
from toolkit.geometry import error_statistics, matrix_to_relion, orientation_errors, relion_to_matrix
from toolkit.geometry.alignment import align_poses
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


class ParticleImages:
    """The particles of a STAR file or a bare stack, memory-mapped and read by row.

    Attributes:
        count: the number of particles.
        star: the STAR file's `Particles`, or None for a bare stack.
        pixel_size: float64 [count] Angstrom per pixel (0 where unknown).
        size: the images' side in pixels.
    """

    def __init__(self, path: Path):
        path = Path(path)
        try:
            if path.suffix.lower() == ".star":
                self.star = read_particles(path)
                stacks = ParticleStacks(path, self.star.image_names, self.star.image_indices, None)
                self.read, self.pixel_size, self.paths = stacks.read, self.star.pixel_size, stacks.paths
                self.size = stacks.size
            else:
                self.star, stack = None, open_stack(path)
                data = stack.images
                self.read = lambda rows: np.array(data[np.asarray(rows)], np.float32)
                self.pixel_size, self.paths = np.full(len(data), stack.pixel_size), [path] * len(data)
                self.size = int(data.shape[-1])
        except (MrcFormatError, StarFormatError) as error:
            raise RunError(str(error)) from None
        if not self.paths:
            raise RunError(f"{path}: holds no particles")
        self.count = len(self.paths)

    def names(self, rows, out: Path) -> list[str]:
        """Image names of these rows relative to `out`'s folder."""
        folder = Path(out).resolve().parent
        return [
            image_name(int(self._index(i)), os.path.relpath(self.paths[i].resolve(), folder)) for i in rows
        ]

    def _index(self, row: int) -> int:
        return row if self.star is None else self.star.image_indices[row]


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
    return predict_outputs(function, spec, images, batch_size)["rotations"]


def predict_outputs(function, spec, images: np.ndarray, batch_size: int) -> dict:
    """`rotations` `[N, 3, 3]`, and `shifts` `[N, 2]` (pixels) if the signature gives them, by batches."""
    sequence = len(spec.shape) == 5  # [batch, time, S, S, channels]
    parts = {"rotations": []}
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size, ..., None]
        batch = batch[:, None] if sequence else batch
        out = function(images=tf.constant(batch))
        parts["rotations"].append(np.reshape(out["rotations"].numpy(), (-1, 3, 3)))
        if "shifts" in out:
            parts.setdefault("shifts", []).append(np.reshape(out["shifts"].numpy(), (-1, 2)))
    if not parts["rotations"]:
        return {"rotations": np.zeros((0, 3, 3), np.float32)}
    return {key: np.concatenate(values) for key, values in parts.items()}


def error_summary(true_angles: np.ndarray, rotations: np.ndarray) -> dict:
    """Geodesic error statistics (degrees) of predicted poses against RELION angles from the input STAR."""
    return error_statistics(orientation_errors(relion_to_matrix(true_angles.astype(np.float32)), rotations))


def learned_frame(model_path: Path) -> bool:
    """Whether `model_path` is a run whose poses are in a frame it learned (ab initio), not the sample's."""
    directory = RunDirectory(model_path)
    if not (Path(model_path).is_dir() and directory.recipe.is_file()):
        return False
    from toolkit.recipes.spec import MODELS

    kind = (yaml.safe_load(directory.recipe.read_text()) or {}).get("model", {}).get("type")
    return kind in MODELS and getattr(MODELS[kind].builder, "learned_frame", False)


def aligned_error_summary(true_angles: np.ndarray, rotations: np.ndarray) -> dict:
    """The same after aligning the poses to the given ones globally (rotation and hand): ab initio runs."""
    aligned = align_poses(rotations, relion_to_matrix(true_angles.astype(np.float32)).numpy())
    return {**error_statistics(aligned["errors_deg"]), "aligned": True, "hand": aligned["hand"]}


def _preparation_record(model_path: Path) -> dict | None:
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
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Predict the pose of every particle of `input_path` (STAR or MRC/MRCS) and write `out` (STAR).

    When the model predicts shifts too (an ab initio run that searched them), they are written as
    the particles' origins.

    `invert_contrast` negates the images first, for data whose particles are dark; `shard` ("I/N")
    takes every N-th particle from the I-th on; `progress(done, total)` is told of each batch.
    Stacks are memory-mapped and read a batch at a time.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise RunError(f"{out}: already exists; pass --overwrite or choose another --out")
    if batch_size < 1:
        raise RunError(f"--batch-size: expected a positive integer, got {batch_size}")
    _, function, spec = load_orientation_signature(model_path)
    source = ParticleImages(input_path)
    rows = shard_rows(shard, source.count)
    star = None if source.star is None else source.star.take(rows)
    record = _preparation_record(model_path)  # a run trained on particle files: prepare these alike
    prepare = None if record is None else training_preparation(record, source.size, star)
    size, parts = int(spec.shape[-2]), []
    for start in range(0, len(rows), batch_size):  # memory bounded by a batch, not by the stack
        images = source.read(rows[start : start + batch_size])
        images = -images if invert_contrast else images
        if prepare is not None:
            images = prepare(images, np.arange(start, start + len(images))).numpy()
        if images.shape[1:] != (size, size):
            raise RunError(
                f"{input_path}: images are {'x'.join(map(str, images.shape[1:]))} pixels, the "
                f"model reads {size}x{size}; give particles made like its training data"
            )
        parts.append(predict_outputs(function, spec, images, batch_size))
        if progress is not None:
            progress(len(images), len(rows))
    rotations = np.concatenate([p["rotations"] for p in parts]) if parts else np.zeros((0, 3, 3), np.float32)
    pixel_size = float(source.pixel_size[rows[0]]) if len(rows) else 0.0
    if not pixel_size > 0:
        log.warning(f"{input_path}: no pixel size given; writing 1.0 Angstrom/pixel")
        pixel_size = 1.0
    angles = matrix_to_relion(rotations).numpy().astype(np.float64)
    origins = None
    if parts and "shifts" in parts[0]:  # pixels of the model's input: RELION's origin centres the particle
        model_pixel = record["pixel_size"] if record is not None else pixel_size
        origins = -np.concatenate([p["shifts"] for p in parts]).astype(np.float64) * model_pixel
    try:
        if star is not None:  # keep every column and optics group of the input
            columns = dict(zip(("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"), angles.T, strict=True))
            if origins is not None:
                columns.update(rlnOriginXAngst=origins[:, 0], rlnOriginYAngst=origins[:, 1])
            write_updated(input_path, star, out, columns, overwrite)
        else:
            names = source.names(rows, out)
            write_particles(out, names, pixel_size, size, angles=angles, origins=origins, overwrite=overwrite)
    except OSError as error:
        raise RunError(f"{out}: cannot write ({error.strerror or error})") from None
    summary = {"particles": len(rotations), "star": str(out)}
    if star is not None and star.angles is not None:
        given = aligned_error_summary if learned_frame(model_path) else error_summary
        summary.update(given(star.angles, rotations))
    return summary
