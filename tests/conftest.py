"""Test-wide setup: quiet TensorFlow and two logical CPU devices for distribution tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf  # noqa: E402

from toolkit.training.devices import ensure_logical_cpus  # noqa: E402

ensure_logical_cpus(2)

import pytest  # noqa: E402

RECIPES = __import__("pathlib").Path(__file__).resolve().parents[1] / "recipes"

#: Overrides that shrink f_shadow to a model and data set trained in seconds.
TINY_F_SHADOW = [
    "data.image_size=16",
    "data.sequence_length=2",
    "data.validation_size=8",
    "model.latent_dim=3",
    "model.encoder.filters=[4]",
    "model.encoder.units=8",
    "model.encoder.condition_units=4",
    "model.sampler.units=4",
    "model.decoder.filters=[4]",
    "model.decoder.units=8",
    "model.decoder.condition_units=4",
    "train.global_batch_size=4",
    "train.epochs=2",
    "train.steps_per_epoch=2",
    "train.checkpoint_every=2",
]


@pytest.fixture(scope="session")
def recipes_dir():
    """The shipped recipes/ folder."""
    return RECIPES


@pytest.fixture(scope="session")
def tiny_f_shadow():
    """(recipe path, overrides) of a tiny f_shadow run."""
    return RECIPES / "f_shadow.yaml", list(TINY_F_SHADOW)


@pytest.fixture(scope="session")
def two_cpus():
    """One MirroredStrategy over two logical CPUs for the whole session.

    Several MirroredStrategy objects in one process reuse collective instance keys and
    abort each other's all-reduces, so every test shares this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
