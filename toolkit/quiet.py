"""Import TensorFlow without its start-up chatter, so the CLI's own output stays readable."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly():
    """Import TensorFlow with its start-up lines (oneDNN, CUDA stubs, the CUDA probe) kept off the terminal.

    Every `toolkit` command calls this first (the CLI group does), so none prints them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401  (it prints too on first import)

        # Loading the device platforms prints the CUDA probe ("failed call to cuInit" on a
        # machine without a GPU). Listing physical devices loads them without initializing
        # the runtime, so logical devices and MultiWorkerMirroredStrategy can still be set up.
        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    return tf
