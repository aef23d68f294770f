"""Test-wide setup: quiet TensorFlow and two logical CPU devices for distribution tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf  # noqa: E402

from toolkit.training.devices import ensure_logical_cpus  # noqa: E402

ensure_logical_cpus(2)
