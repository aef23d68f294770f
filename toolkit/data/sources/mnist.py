"""`data.type: mnist`: MNIST digits, with their labels as a one-hot condition when asked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.data.mnist import IMAGE_SIZE, NUM_CLASSES, MnistFileError, load_mnist
from toolkit.data.sources.base import DataBundle, DataShapes, DataSource
from toolkit.errors import RunError


class MnistSource(DataSource):
    """Seeded, stratified MNIST splits; every epoch a new seeded order of the training digits."""

    name = "mnist"

    def shapes(self, condition=None, measured=None) -> DataShapes:
        conditional = self.spec["conditional"]
        return DataShapes(
            image_size=IMAGE_SIZE,
            channels=1,
            sequence_length=None,
            keys=("images", "labels") + (("condition",) if conditional else ()),
            condition="label" if conditional else None,
            condition_width=NUM_CLASSES if conditional else None,
            unit_intensities=True,
            measured=dict(measured or {}),
        )

    def check(self) -> list[str]:
        spec = self.spec
        if spec["path"] is not None and spec["source"] != "keras":
            return ["data.path: only used with data.source: keras; remove it or set source: keras"]
        if spec["path"] is not None and not Path(spec["path"]).expanduser().is_file():
            return [f"data.path: {spec['path']}: file not found; give a Keras-format mnist.npz"]
        return []

    def build(self, condition=None, measured=None) -> DataBundle:
        spec = self.spec
        try:
            splits = load_mnist(spec["source"], spec["path"], spec["validation_fraction"], spec["seed"])
        except MnistFileError as error:  # a bad or missing file is the user's input: a one-line CLI error
            raise RunError(str(error)) from None
        conditional = spec["conditional"]

        def as_inputs(images, labels):
            out = {"images": images, "labels": labels}
            if conditional:
                out["condition"] = (
                    tf.one_hot(labels, NUM_CLASSES)
                    if tf.is_tensor(labels)
                    else np.eye(NUM_CLASSES, dtype="float32")[labels]
                )
            return out

        def train_dataset(batch_size, start=0):
            count = len(splits.train_labels)
            per_epoch = count // batch_size
            if per_epoch == 0:  # else the batch index below divides by zero inside tf.data
                raise RunError(
                    f"train.global_batch_size: {batch_size} exceeds the {count} MNIST training images"
                )

            def batch(index):
                epoch, position = index // per_epoch, index % per_epoch
                order = tf.random.experimental.stateless_shuffle(
                    tf.range(count), seed=tf.stack([tf.constant(spec["seed"], tf.int64), epoch])
                )
                rows = order[position * batch_size : (position + 1) * batch_size]
                return as_inputs(tf.gather(splits.train_images, rows), tf.gather(splits.train_labels, rows))

            indices = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
            return indices.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2)

        return DataBundle(
            train_dataset=train_dataset,
            validation=as_inputs(splits.val_images, splits.val_labels),
            shapes=self.shapes(condition, measured),
            labelled_training=as_inputs(splits.train_images, splits.train_labels),
        )
