"""`model.type: orientation_estimator`: the orientation of each shadow from the image alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.data.sources.base import DataBundle, DataShapes
from toolkit.geometry import error_statistics, matrix_to_relion, orientation_errors
from toolkit.models import OrientationEstimator
from toolkit.recipes.spec import ENCODERS, HEADS
from toolkit.tasks.base import Task
from toolkit.tasks.figures import training_views_map
from toolkit.training.evaluate import batches, compiled_per_model


class OrientationEstimatorTask(Task):
    """Regress the pose of each shadow, trained against the true poses of its batch.

    Held-out metrics: the geodesic error in degrees, its median and mean and the fraction
    within 5, 10 and 15 degrees (`toolkit.geometry.error_statistics`).
    """

    name = "orientation_estimator"
    required_keys = ("images", "rotations")
    input_keys = ("images", "rotations")
    shown_metrics = ("val_median_error_deg", "val_within_15_deg", "train_seconds")
    compared_metrics = ("val_median_error_deg", "val_mean_error_deg")

    def check(self, shapes: DataShapes) -> list[str]:
        return self.layer_errors((("encoder", ENCODERS, {}), ("head", HEADS, {})))

    def build_model(self, shapes: DataShapes) -> OrientationEstimator:
        spec = self.spec
        return OrientationEstimator(
            encoder=ENCODERS[spec["encoder"]["type"]].make(spec["encoder"], name="encoder"),
            head=HEADS[spec["head"]["type"]].make(spec["head"], name="head"),
            name=self.recipe["name"].replace("-", "_"),
        )

    def evaluate(self, model, validation: dict) -> dict:
        errors = validation_errors(model, validation)
        return error_statistics(errors, prefix="val_")

    def validation_loss(self, metrics: dict) -> float:
        """The mean geodesic error in degrees."""
        return metrics["val_mean_error_deg"]

    def figures(self, model, data: DataBundle, directory: Path) -> None:
        from toolkit.figures import plots

        plots.error_histogram(validation_errors(model, data.validation), directory / "orientation_errors.png")
        training_views_map(data, directory)

    def export_module(self, model, shapes: DataShapes):
        module = ExportedEstimator(model, shapes)
        return module, {"orientation": module.orientation}


@compiled_per_model
def predict_rotations(model, images):
    return model(images, training=False)


def validation_errors(model, validation: dict, batch_size: int = 256) -> np.ndarray:
    """Geodesic errors in degrees of the model's poses of every validation image."""
    return np.concatenate(
        [
            orientation_errors(predict_rotations(model, batch["images"]), batch["rotations"])
            for batch in batches({k: validation[k] for k in ("images", "rotations")}, batch_size)
        ]
    )


class ExportedEstimator(tf.Module):
    """A small module around a trained OrientationEstimator.

    `orientation(images)` returns the predicted `rotations` (matrices, x' = R x, beam along
    +z) and the same poses as RELION angles `relion_rot_tilt_psi` in degrees.
    """

    def __init__(self, model, shapes: DataShapes):
        super().__init__(name="toolkit_export")
        self.model = model
        images = tf.TensorSpec(shapes.open_batch_shape, tf.float32, name="images")
        self.orientation = tf.function(self._orientation, input_signature=[images])

    def _orientation(self, images):
        return self.outputs(self.model(images, training=False))

    @staticmethod
    def outputs(rotations) -> dict:
        """The signature's outputs for predicted rotation matrices."""
        rotations = tf.cast(rotations, tf.float32)
        return {"rotations": rotations, "relion_rot_tilt_psi": matrix_to_relion(rotations)}
