"""Logical CPU devices, so multi-replica code runs (and is tested) on a CPU-only machine."""

import tensorflow as tf


def ensure_logical_cpus(count: int) -> int:
    """Split the first physical CPU into `count` logical devices if TensorFlow is not yet initialized.

    Returns the number of logical CPU devices available afterwards.
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        if tf.config.get_logical_device_configuration(cpus[0]) is None and count > 1:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * count
            )
    except RuntimeError:
        pass  # already initialized: keep what exists
    return len(tf.config.list_logical_devices("CPU"))
