"""OrientationEstimator: the orientation of a sample given its shadow (the poster's next step)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="toolkit")
class OrientationEstimator(keras.Model):
    """Regress the rotation matrix of each shadow: an image encoder, then an `OrientationHead`.

    Inputs are a dict with `"images"` (`[batch, (time,) height, width, channels]`) and, for
    training, `"rotations"` (the true matrices, `[batch, (time,) 3, 3]`). The loss is the
    squared chordal distance `||R_pred - R_true||_F^2 = 4 (1 - cos angle)`, smooth everywhere
    and monotone in the geodesic angle.

    Args:
        encoder: maps images to features, e.g. `RotationConditionedEncoder` without condition.
        head: maps features to rotation matrices, e.g. `OrientationHead`.
        **kwargs: standard `keras.Model` arguments.
    """

    def __init__(self, encoder, head, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head

    #: Weight of each per-example loss term in the training objective.
    @property
    def term_weights(self) -> dict:
        return {"orientation": 1.0}

    def call(self, inputs, training=None):
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        return self.head(self.encoder(images))

    def loss_terms(self, inputs, training=None) -> dict:
        """Per-example squared chordal distance (summed over views) and the predictions."""
        predicted = self(inputs, training=training)
        squared = ops.sum(ops.square(predicted - ops.cast(inputs["rotations"], "float32")), axis=(-2, -1))
        axes = tuple(range(1, len(squared.shape)))
        return {"orientation": ops.sum(squared, axis=axes) if axes else squared, "prediction": predicted}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean squared chordal distance, for users' `model.fit` on dict inputs with rotations."""
        return ops.mean(self.loss_terms(x, training=training)["orientation"])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "head": keras.saving.serialize_keras_object(self.head),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
