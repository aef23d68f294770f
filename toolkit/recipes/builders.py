"""Turn a validated recipe into data, a model and a tf.distribute strategy."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from toolkit.data import objects
from toolkit.data.shadows import CTFDraws, OrientationSampler, ShadowData
from toolkit.errors import RunError
from toolkit.layers import (
    LSTMSampler,
    OrientationEncoding,
    OrientationHead,
    ProjectionDecoder,
    RotationConditionedEncoder,
)
from toolkit.models import ConditionalVAE, OrientationEstimator, make_latent

LAYERS = {
    "RotationConditionedEncoder": RotationConditionedEncoder,
    "LSTMSampler": LSTMSampler,
    "ProjectionDecoder": ProjectionDecoder,
    "OrientationHead": OrientationHead,
}


@dataclass
class DataBundle:
    """The data of a run: a training-batch factory, the fixed validation set, and its shape."""

    kind: str
    train_dataset: object  # callable(batch_size, start_batch) -> tf.data.Dataset of dicts
    validation: dict
    image_size: int
    channels: int
    sequence: bool
    condition: str | None  # "orientation", "label" or None
    source: object = None  # ShadowData for shadows


def build_sample(spec: dict) -> objects.BlobSample:
    """The 3D sample of a shadows data section."""
    if spec["type"] == "letter_f":
        return objects.letter_f(size=spec["size"], thickness=spec["thickness"], blob_sigma=spec["blob_sigma"])
    return objects.gaussian_blobs(
        spec["count"], radius=spec["radius"], sigma=spec["sigma"], seed=spec["seed"]
    )


def build_data(recipe: dict) -> DataBundle:
    """The data set a recipe declares."""
    spec = recipe["data"]
    if spec["type"] == "shadows":
        model = recipe["model"]
        orientations = spec["orientations"]
        sampler = OrientationSampler(
            kind=orientations["type"],
            **(
                {
                    "convention": orientations["convention"],
                    "ranges": tuple(tuple(r) for r in orientations["ranges"]),
                }
                if orientations["type"] == "euler_ranges"
                else {}
            ),
        )
        source = ShadowData.create(
            sample=build_sample(spec["sample"]),
            image_size=spec["image_size"],
            extent=spec["extent"],
            sequence_length=spec["sequence_length"],
            orientations=sampler,
            representation=model.get("condition", "matrix"),
            convention=model.get("euler_convention", "ZYZ"),
            snr=spec["snr"],
            seed=spec["seed"],
            pixel_size=spec["pixel_size"],
            ctf=CTFDraws(**spec["ctf"]) if spec["ctf"] else None,
        )
        return DataBundle(
            kind="shadows",
            train_dataset=lambda batch_size, start=0: source.train_dataset(batch_size, start),
            validation=source.validation_set(spec["validation_size"]),
            image_size=spec["image_size"],
            channels=1,
            sequence=True,
            condition="orientation",
            source=source,
        )
    return build_mnist(spec)


def build_mnist(spec: dict) -> DataBundle:
    """MNIST digits as a DataBundle; labels become a one-hot condition for a conditional model."""
    from toolkit.data.mnist import MnistFileError, load_mnist

    try:
        splits = load_mnist(spec["source"], spec["path"], spec["validation_fraction"], spec["seed"])
    except MnistFileError as error:  # a bad or missing file is the user's input: a one-line CLI error
        raise RunError(str(error)) from None
    conditional = spec["conditional"]

    def as_inputs(images, labels):
        out = {"images": images, "labels": labels}
        if conditional:
            out["condition"] = (
                tf.one_hot(labels, 10) if tf.is_tensor(labels) else np.eye(10, dtype="float32")[labels]
            )
        return out

    def train_dataset(batch_size, start=0):
        count = len(splits.train_labels)
        per_epoch = count // batch_size
        if per_epoch == 0:  # else the batch index below divides by zero inside tf.data
            raise RunError(f"train.global_batch_size: {batch_size} exceeds the {count} MNIST training images")

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
        kind="mnist",
        train_dataset=train_dataset,
        validation=as_inputs(splits.val_images, splits.val_labels),
        image_size=28,
        channels=1,
        sequence=False,
        condition="label" if conditional else None,
    )


def layer_kwargs(spec: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "type"}


def build_model(recipe: dict, data: DataBundle, seed: int | None = None):
    """The model a recipe declares, sized for its data; layers are made under the current scope."""
    spec = recipe["model"]
    keras.utils.set_random_seed(recipe["train"]["seed"] if seed is None else seed)
    if spec["type"] == "orientation_estimator":
        return OrientationEstimator(
            encoder=LAYERS[spec["encoder"]["type"]](name="encoder", **layer_kwargs(spec["encoder"])),
            head=LAYERS[spec["head"]["type"]](name="head", **layer_kwargs(spec["head"])),
            name=recipe["name"].replace("-", "_"),
        )
    latent_dim = spec["latent_dim"]
    likelihood = spec["likelihood"]
    encoder = LAYERS[spec["encoder"]["type"]](name="encoder", **layer_kwargs(spec["encoder"]))
    if spec["sampler"]["type"] == "Dense":
        from toolkit.layers import GaussianLatent

        sampler = keras.layers.Dense(
            GaussianLatent.params_size(latent_dim), use_bias=spec["sampler"]["use_bias"], name="sampler"
        )
    else:
        sampler = LAYERS[spec["sampler"]["type"]](
            latent_dim=latent_dim, name="sampler", **layer_kwargs(spec["sampler"])
        )
    decoder = LAYERS[spec["decoder"]["type"]](
        image_size=data.image_size, channels=data.channels, name="decoder", **layer_kwargs(spec["decoder"])
    )
    encoding = (
        OrientationEncoding(spec["condition"], name="orientation_encoding")
        if (data.condition == "orientation")
        else None
    )
    return ConditionalVAE(
        encoder=encoder,
        sampler=sampler,
        latent=make_latent(latent_dim, seed=recipe["train"]["seed"]),
        decoder=decoder,
        condition_encoding=encoding,
        likelihood=likelihood["type"],
        likelihood_scale=likelihood.get("scale", 0.1),
        beta=spec["beta"],
        name=recipe["name"].replace("-", "_"),
    )


def build_strategy(spec: dict) -> tf.distribute.Strategy:
    """The tf.distribute strategy of a recipe's `strategy:` section."""
    kind = spec["type"]
    if kind == "multi_worker":
        # First, before anything lists devices: MWMS must configure collectives before TF initializes.
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "auto":
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        devices = spec["devices"] or [d.name for d in gpus] or None
        if devices:
            known = {d.name.lower() for d in tf.config.list_logical_devices()}
            known |= {n.replace("/job:localhost/replica:0/task:0/device:", "/") for n in known}
            missing = [d for d in devices if d.lower() not in known]
            if missing:
                raise ValueError(
                    f"strategy.devices: {missing} not found; available: "
                    f"{sorted(d.name for d in tf.config.list_logical_devices())}"
                )
        return tf.distribute.MirroredStrategy(devices=devices)
    raise ValueError(f"strategy.type: unknown strategy {kind!r}")
