"""Pieces every task's held-out evaluation uses: compiled per-model functions and batching."""

from __future__ import annotations

import functools
import weakref

import tensorflow as tf


def compiled_per_model(function):
    """`function(model, *args)` run as one tf.function per model.

    One tf.function taking the model as an argument would retrace for every new model, and
    could not create the variables of a model not yet built after its first trace.
    """
    functions = weakref.WeakKeyDictionary()

    @functools.wraps(function)
    def call(model, *args):
        if model not in functions:
            owner = weakref.ref(model)  # the compiled function must not keep its model alive
            functions[model] = tf.function(lambda *a: function(owner(), *a), reduce_retracing=True)
        return functions[model](*args)

    return call


def batches(arrays: dict, size: int):
    """Slices of a dict of equal-length arrays."""
    count = len(next(iter(arrays.values())))
    for start in range(0, count, size):
        yield {k: v[start : start + size] for k, v in arrays.items()}


def images_2d(x) -> tf.Tensor:
    """Fold any (batch, time) prefix so images are [N, H, W, C]."""
    x = tf.convert_to_tensor(x, tf.float32)
    return tf.reshape(x, [-1] + x.shape[-3:].as_list())
