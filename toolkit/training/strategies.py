"""The tf.distribute strategies a recipe can name (`strategy.type`), one builder each.

The recipe schema (`toolkit.recipes.spec.STRATEGIES`) points each `type` at its builder,
called with the fields of the validated `strategy:` section.
"""

from __future__ import annotations

import tensorflow as tf

from toolkit.errors import RunError


def multi_worker() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable.

    Built before anything lists devices: MWMS must configure collectives before TF initializes.
    """
    return tf.distribute.MultiWorkerMirroredStrategy()


def auto() -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when there are any, else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()


def default() -> tf.distribute.Strategy:
    """One device, no distribution."""
    return tf.distribute.get_strategy()


def mirrored(devices=()) -> tf.distribute.Strategy:
    """MirroredStrategy over `devices` (all GPUs when empty), each checked to exist."""
    devices = list(devices) or [d.name for d in tf.config.list_logical_devices("GPU")] or None
    if devices:
        known = {d.name.lower() for d in tf.config.list_logical_devices()}
        known |= {n.replace("/job:localhost/replica:0/task:0/device:", "/") for n in known}
        missing = [d for d in devices if d.lower() not in known]
        if missing:
            raise RunError(
                f"strategy.devices: {missing} not found; available: "
                f"{sorted(d.name for d in tf.config.list_logical_devices())}"
            )
    return tf.distribute.MirroredStrategy(devices=devices)
