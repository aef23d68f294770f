"""The Keras optimizers a recipe can name (`train.optimizer`)."""

from __future__ import annotations

import keras

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A fresh optimizer of `OPTIMIZERS[name]` (variables are made by `optimizer.build`)."""
    return OPTIMIZERS[name](learning_rate=learning_rate)
