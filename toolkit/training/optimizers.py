"""The Keras optimizers a recipe can name (`train.optimizer`)."""

from __future__ import annotations

import keras

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


DECAYS = ("constant", "cosine")


def make_optimizer(
    name: str, learning_rate: float, decay: str = "constant", total_steps: int | None = None
) -> keras.optimizers.Optimizer:
    """A fresh optimizer of `OPTIMIZERS[name]` (variables are made by `optimizer.build`).

    `decay="cosine"` lowers the rate along a half cosine to zero at `total_steps`. The schedule
    reads the optimizer's own step counter, which checkpoints keep, so a resumed run goes on
    where it stopped.
    """
    if decay == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    elif decay != "constant":
        raise ValueError(f"make_optimizer: `decay` must be one of {', '.join(DECAYS)}, got {decay!r}.")
    return OPTIMIZERS[name](learning_rate=learning_rate)
