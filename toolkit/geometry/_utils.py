"""Shared helpers for the geometry functions: tensor conversion, shape checks, safe math."""

import numpy as np
import tensorflow as tf


def to_float_tensor(x, dtype_hint: tf.DType | None = None) -> tf.Tensor:
    """Convert `x` to a tensor, keeping float dtypes; other dtypes become float32.

    `dtype_hint` is the dtype Python lists/scalars get (tensors and arrays keep theirs).
    """
    x = tf.convert_to_tensor(x, dtype_hint=dtype_hint)
    if not x.dtype.is_floating:
        x = tf.cast(x, tf.float32)
    return x


def check_trailing_shape(x: tf.Tensor, dims: tuple[int, ...], name: str) -> None:
    """Raise ValueError if the statically known trailing dimensions of `x` are not `dims`."""
    shape = x.shape
    if shape.rank is None:
        return  # unknown rank (rare, inside tf.function): nothing to check statically
    tail = list(shape)[-len(dims) :] if shape.rank >= len(dims) else None
    if tail is None or any(t is not None and t != d for t, d in zip(tail, dims)):
        expected = ", ".join(["..."] + [str(d) for d in dims])
        raise ValueError(f"`{name}` must have shape [{expected}], got {shape}.")


def safe_norm(x: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """Euclidean norm whose gradient is 0 (not NaN) at the zero vector."""
    squared = tf.reduce_sum(tf.square(x), axis=axis)
    positive = squared > 0
    # Double tf.where: sqrt never sees 0, so its infinite derivative cannot reach the tape.
    norm = tf.sqrt(tf.where(positive, squared, tf.ones_like(squared)))
    return tf.where(positive, norm, tf.zeros_like(norm))


def safe_atan2(y: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """atan2 that returns 0 with a zero gradient at (0, 0), where tf.math.atan2's is NaN."""
    origin = tf.logical_and(tf.equal(x, 0), tf.equal(y, 0))
    # Double tf.where: feed a harmless point to atan2 so no NaN reaches the backward pass.
    angle = tf.math.atan2(tf.where(origin, tf.zeros_like(y), y), tf.where(origin, tf.ones_like(x), x))
    return tf.where(origin, tf.zeros_like(angle), angle)


def matrix_from_rows(rows: list[list[tf.Tensor]]) -> tf.Tensor:
    """Stack a nested list of same-shaped tensors [...] into a [..., n, m] matrix."""
    return tf.stack([tf.stack(row, axis=-1) for row in rows], axis=-2)


def to_radians(x: tf.Tensor, degrees: bool) -> tf.Tensor:
    """Convert degrees to radians when `degrees` is set."""
    return x * tf.constant(np.pi / 180.0, x.dtype) if degrees else x


def from_radians(x: tf.Tensor, degrees: bool) -> tf.Tensor:
    """Convert radians to degrees when `degrees` is set."""
    return x * tf.constant(180.0 / np.pi, x.dtype) if degrees else x
