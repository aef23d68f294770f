"""`model.type: ab_initio`: the density and the poses together, from images without poses.

No true pose reaches the model (`input_keys`: the images, each batch's step number and, when the
data has one, each image's CTF). When the data has true poses (simulated shadows), they score the
learned ones after a global alignment in both hands (`toolkit.geometry.alignment.align_poses`),
and the learned map is aligned to the sample's true map and judged by its FSC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.data.simulate import ctf_columns
from toolkit.data.sources.base import DataBundle, DataShapes
from toolkit.data.sources.particles import ParticleSource
from toolkit.geometry import error_statistics, matrix_to_relion
from toolkit.geometry.alignment import align_poses
from toolkit.io.mrc import write_map, write_stack
from toolkit.io.particles import image_name, write_particles, write_updated
from toolkit.layers import BlobDensity, VoxelDensity
from toolkit.models.ab_initio import EXTENT, AbInitio
from toolkit.recipes.spec import ENCODERS, HEADS
from toolkit.reconstruction.align import align_map
from toolkit.reconstruction.fsc import fsc_curve, resolution
from toolkit.tasks.base import Task
from toolkit.tasks.orientation_estimator import ExportedEstimator
from toolkit.training.evaluate import batches, compiled_per_model


class AbInitioTask(Task):
    """Learn a density (blobs or a voxel map) and each image's pose by search, and an encoder that
    amortizes the search.

    Held-out metrics (with true poses): the searched poses' and the encoder's geodesic errors
    after global alignment (`val_median_error_deg`, `val_encoder_median_error_deg`, ...), and
    `val_residual`, the mean scale-free error of the held-out images at their searched poses
    at the last stage's resolution, which needs no truth.
    """

    name = "ab_initio"
    input_keys = ("images", "step", "ctf")
    learned_frame = True
    shown_metrics = ("val_median_error_deg", "val_encoder_median_error_deg", "train_seconds")
    compared_metrics = ("val_residual",)

    def __init__(self, recipe: dict):
        super().__init__(recipe)
        self._aligned = None  # (model, (MapAlignment, truth) or None): shared by the outputs and figures

    def check(self, shapes: DataShapes) -> list[str]:
        errors = self.layer_errors((("encoder", ENCODERS, {}), ("head", HEADS, {})))
        if shapes.sequence_length not in (None, 1):
            errors.append(
                "data.sequence_length: ab_initio learns from single images, got "
                f"{shapes.sequence_length}; set it to 1"
            )
        for i, stage in enumerate(self.spec["stages"]):
            for key in ("downsample", "search_downsample"):
                if stage.get(key) and shapes.image_size % stage[key]:
                    where = shapes.image_size_key or f"model.stages[{i}].{key}"
                    errors.append(
                        f"{where}: {shapes.image_size} pixels must be a multiple of "
                        f"model.stages[{i}].{key} = {stage[key]}; change one of them"
                    )
        return errors

    def build_model(self, shapes: DataShapes) -> AbInitio:
        spec, train = self.spec, self.recipe["train"]
        density = {k: v for k, v in spec["density"].items() if k != "type"}
        if spec["density"]["type"] == "voxels":
            density = VoxelDensity(
                size=shapes.image_size, extent=EXTENT, seed=train["seed"], name="density", **density
            )
        else:
            density = BlobDensity(
                image_size=shapes.image_size, extent=EXTENT, seed=train["seed"], name="density", **density
            )
        return AbInitio(
            density=density,
            encoder=ENCODERS[spec["encoder"]["type"]].make(spec["encoder"], name="encoder"),
            head=HEADS[spec["head"]["type"]].make(spec["head"], name="head"),
            image_size=shapes.image_size,
            stages=spec["stages"],
            total_steps=train["epochs"] * train["steps_per_epoch"],
            search_level=spec["search_level"],
            local_rounds=spec["local_rounds"],
            candidates=spec["candidates"],
            orientation_weight=spec["orientation_weight"],
            max_shift=spec["max_shift"],
            poses=spec["poses"],
            pose_steps=spec["pose_steps"],
            name=self.recipe["name"].replace("-", "_").replace(".", "_"),
        )

    def training_dataset(self, model, dataset, seed, start):
        """Each batch with its step number (`step`, one per example), which picks the stage: stateless, so
        a resumed run and every replica agree on it."""

        def attach(index, batch):
            size = tf.shape(batch["images"])[0]
            return {**batch, "step": tf.fill([size], tf.cast(index, tf.float32))}

        indices = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
        return tf.data.Dataset.zip(indices, dataset).map(attach)

    def evaluate(self, model, validation: dict) -> dict:
        found = search_validation(model, validation)
        metrics = {"val_residual": float(np.mean(found["residuals"]))}
        if "rotations" in validation:
            true = np.reshape(validation["rotations"], (-1, 3, 3))
            for prefix, poses in (("val_", found["poses"]), ("val_encoder_", found["encoder"])):
                aligned = align_poses(poses, true)
                metrics.update(error_statistics(aligned["errors_deg"], prefix=prefix))
        return metrics

    def validation_loss(self, metrics: dict) -> float:
        """The mean scale-free residual of the held-out images at their searched poses."""
        return metrics["val_residual"]

    def learned_map(self, model) -> np.ndarray:
        """The density on the images' grid [S, S, S] (z, y, x), in box units."""
        return model.density.as_map()

    def aligned_to_truth(self, model, data: DataBundle):
        """(the learned map aligned to the sample's true map, a `MapAlignment`; that true map), or None
        without a truth."""
        if self._aligned is None or self._aligned[0] is not model:
            truth = true_map(data)
            found = None if truth is None else (align_map(self.learned_map(model), truth), truth)
            self._aligned = (model, found)
        return self._aligned[1]

    def write_outputs(self, model, data: DataBundle, run) -> dict:
        """`map.mrc`, and the searched poses and shifts as `poses.star`.

        Trained on a particle STAR file, `poses.star` is that file with every particle's searched
        pose and origin; trained on simulated shadows, it holds the held-out images, written
        beside it as `particles.mrcs`, with their CTF when they have one. With the sample's true
        map at hand (simulated shadows), the learned map is aligned to it (rotation, shift and
        hand) and its FSC against the truth is summarized.
        """
        size = model.image_size
        pixel = float(data.shapes.measured.get("pixel_size", self.recipe["data"].get("pixel_size", 1.0)))
        write_map(run.map, self.learned_map(model), pixel, overwrite=True)
        particle_file = isinstance(data.source, ParticleSource)
        if particle_file:
            particles, every = data.source.every_particle(data.shapes.measured)
            found = search_batches(model, every)
        else:
            found = search_validation(model, data.validation)
        angles = matrix_to_relion(found["poses"].astype(np.float32)).numpy()
        origins = -found["shifts"] * pixel  # RELION's origin moves the particle's centre to the box's
        if particle_file:
            columns = dict(zip(("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"), angles.T, strict=True))
            columns.update(rlnOriginXAngst=origins[:, 0], rlnOriginYAngst=origins[:, 1])
            write_updated(data.source.spec["star"], particles, run.poses, columns, overwrite=True)
        else:
            images = np.reshape(data.validation["images"], (-1, size, size))
            write_stack(run.particles, images, pixel, overwrite=True)
            names = [image_name(i, run.PARTICLES) for i in range(len(images))]
            defocus = data.validation.get("defocus")
            ctf = (
                None
                if defocus is None
                else ctf_columns(np.reshape(defocus, (-1, 3)), self.recipe["data"]["ctf"])
            )
            write_particles(
                run.poses, names, pixel, size, angles=angles, ctf=ctf, origins=origins, overwrite=True
            )
        found = self.aligned_to_truth(model, data)
        if found is None:
            return {}
        aligned, truth = found
        curve = fsc_curve(aligned.volume, truth)
        out = {"map_correlation": round(aligned.correlation, 4), "map_mirrored": aligned.mirrored}
        for threshold, key in ((0.5, "map_fsc_0.5_angstrom"), (0.143, "map_fsc_0.143_angstrom")):
            crossing = resolution(curve, threshold, pixel)
            out[key] = None if crossing is None else round(crossing.angstrom, 2)
        return out

    def figures(self, model, data: DataBundle, directory: Path) -> None:
        from toolkit.figures import plots

        validation = data.validation
        if "rotations" in validation:
            found = search_validation(model, validation)
            aligned = align_poses(found["poses"], np.reshape(validation["rotations"], (-1, 3, 3)))
            plots.error_histogram(aligned["errors_deg"], directory / "orientation_errors.png")
        found = self.aligned_to_truth(model, data)
        if found is not None:
            maps = {"learned (aligned)": found[0].volume, "truth": found[1]}
            title = "learned map, aligned to the truth, beside it: projections"
            plots.map_projections(maps, directory / "map_vs_truth.png", title)

    def export_module(self, model, shapes: DataShapes):
        module = ExportedAbInitio(model, shapes)  # the encoder, in the learned map's frame
        return module, {"orientation": module.orientation}


class ExportedAbInitio(ExportedEstimator):
    """The encoder's `orientation(images)`, with the shift head's `shifts` ((x, y) pixels of the
    particle's centre) when the model searched shifts."""

    def _orientation(self, images):
        rotations, shifts = self.model.encode(images)  # the encoder once, for both heads
        out = self.outputs(rotations)
        if shifts is not None:
            out["shifts"] = tf.cast(shifts, tf.float32)
        return out


def true_map(data: DataBundle) -> np.ndarray | None:
    """The sample's map on the images' grid when the data is simulated shadows, else None."""
    from toolkit.data.shadows import ShadowData
    from toolkit.data.sources.shadows import truth_map

    return truth_map(data.source) if isinstance(data.source, ShadowData) else None


@compiled_per_model
def _search(model, inputs):
    images = tf.cast(inputs["images"], tf.float32)
    size = model.image_size
    flat = tf.reshape(images, [-1, size, size])
    ctf = tf.reshape(tf.cast(inputs["ctf"], tf.float32), [-1, size, size]) if "ctf" in inputs else None
    encoder = tf.reshape(tf.cast(model(images), tf.float32), [-1, 3, 3])
    reconstruction, poses, shifts = model.stage_terms(flat, len(model.stages) - 1, ctf, encoder)
    low = model.coarse(flat, len(model.stages) - 1)
    return poses, shifts, reconstruction / tf.reduce_sum(tf.square(low), -1), encoder


def search_validation(model, validation: dict, batch_size: int = 256) -> dict:
    """The searched poses and shifts (pixels), their relative residuals and the encoder's poses of every
    held-out image (with `poses: encoder`, the "searched" poses are the encoder's, or their half turns)."""
    inputs = {k: validation[k] for k in ("images", "ctf") if k in validation}
    return search_batches(model, batches(inputs, batch_size))


def search_batches(model, inputs) -> dict:
    """`search_validation` of batches of `images` (and `ctf`)."""
    parts = [_search(model, batch) for batch in inputs]
    poses, shifts, residuals, encoder = (np.concatenate([np.asarray(p[i]) for p in parts]) for i in range(4))
    return {
        "poses": poses.reshape(-1, 3, 3),
        "shifts": shifts,
        "residuals": residuals,
        "encoder": encoder.reshape(-1, 3, 3),
    }
