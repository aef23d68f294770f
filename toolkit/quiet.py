"""Import TensorFlow without its start-up chatter, so the CLI's own output stays readable."""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up lines (oneDNN, CUDA stubs) kept off the terminal."""
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
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    return tf
