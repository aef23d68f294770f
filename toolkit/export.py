"""SavedModel export with named, deterministic endpoints: `encode`, `decode`, `orientation`."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


class ExportedModel(tf.Module):
    """A small module around a trained ConditionalVAE with fixed input signatures.

    `encode(images, condition)` returns the posterior `loc` and `scale`; `decode(latent,
    condition)` returns the mean `images`. No sampling happens inside, so both are
    deterministic. A model without a condition takes no `condition` argument.
    """

    def __init__(self, model, image_shape: tuple, condition_width: int | None, sequence: bool):
        super().__init__(name="toolkit_export")
        self.model = model
        time = [None] if sequence else []
        images = tf.TensorSpec([None, *time, *image_shape], tf.float32, name="images")
        latent = tf.TensorSpec([None, model.latent.latent_dim], tf.float32, name="latent")
        if condition_width is None:
            self.encode = tf.function(lambda images: self._encode(images, None), input_signature=[images])
            self.decode = tf.function(lambda latent: self._decode(latent, None), input_signature=[latent])
        else:
            condition = tf.TensorSpec([None, *time, condition_width], tf.float32, name="condition")
            self.encode = tf.function(self._encode, input_signature=[images, condition])
            self.decode = tf.function(self._decode, input_signature=[latent, condition])

    def _encode(self, images, condition):
        inputs = {"images": images} if condition is None else {"images": images, "condition": condition}
        loc, scale = self.model.encode(inputs)
        return {"loc": loc, "scale": scale}

    def _decode(self, latent, condition):
        return {"images": self.model.decode(latent, condition)}


class ExportedEstimator(tf.Module):
    """A small module around a trained OrientationEstimator.

    `orientation(images)` returns the predicted `rotations` (matrices, x' = R x, beam along
    +z) and the same poses as RELION angles `relion_rot_tilt_psi` in degrees.
    """

    def __init__(self, model, image_shape: tuple, sequence: bool):
        super().__init__(name="toolkit_export")
        self.model = model
        time = [None] if sequence else []
        images = tf.TensorSpec([None, *time, *image_shape], tf.float32, name="images")
        self.orientation = tf.function(self._orientation, input_signature=[images])

    def _orientation(self, images):
        from toolkit.geometry import matrix_to_relion

        rotations = tf.cast(self.model(images, training=False), tf.float32)
        return {"rotations": rotations, "relion_rot_tilt_psi": matrix_to_relion(rotations)}


def export_saved_model(
    model, path: Path, image_shape: tuple, condition_width: int | None, sequence: bool
) -> Path:
    """Write a SavedModel: `encode` and `decode` for a VAE, `orientation` for an estimator."""
    if hasattr(model, "decode"):
        module = ExportedModel(model, image_shape, condition_width, sequence)
        signatures = {"encode": module.encode, "decode": module.decode}
    else:
        module = ExportedEstimator(model, image_shape, sequence)
        signatures = {"orientation": module.orientation}
    tf.saved_model.save(module, str(path), signatures=signatures)
    return Path(path)
