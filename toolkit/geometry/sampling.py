"""Haar-uniform random rotations: normalized 4D Gaussians are uniform unit quaternions."""

import tensorflow as tf

from toolkit.geometry.quaternion import canonical_quaternion, quaternion_to_matrix


def _seed_pair(seed) -> tf.Tensor:
    # Stateless ops need a shape-[2] seed; an int seed s becomes [s, 0].
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int64)
    return tf.convert_to_tensor(seed)


def random_quaternions(n: int, seed: int | None = None, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """Uniformly distributed unit quaternions, scalar-first with w >= 0.

    Args:
        n: how many.
        seed: int (or shape-[2] int tensor) for reproducible draws with
            `tf.random.stateless_normal`; `None` uses TensorFlow's global generator.
            Default value: `None`.
        dtype: float dtype of the result. Default value: `tf.float32`.

    Returns:
        Quaternions `[n, 4]`.

    Example:

    >>> q = random_quaternions(3, seed=0)
    >>> q.shape, bool(((q.numpy()[:, 0]) >= 0).all())
    (TensorShape([3, 4]), True)
    """
    shape = [n, 4]
    if seed is None:
        gauss = tf.random.normal(shape, dtype=dtype)
    else:
        gauss = tf.random.stateless_normal(shape, seed=_seed_pair(seed), dtype=dtype)
    return canonical_quaternion(tf.math.l2_normalize(gauss, axis=-1))


def random_rotations(n: int, seed: int | None = None, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """Haar-uniform random rotation matrices.

    Args:
        n: how many.
        seed: int (or shape-[2] int tensor) for reproducible draws; `None` uses the
            global generator. Default value: `None`.
        dtype: float dtype of the result. Default value: `tf.float32`.

    Returns:
        Rotation matrices `[n, 3, 3]`.

    Example:

    >>> import numpy as np
    >>> r = random_rotations(2, seed=1, dtype=tf.float64)
    >>> np.round(np.linalg.det(r.numpy()), 6)
    array([1., 1.])
    """
    return quaternion_to_matrix(random_quaternions(n, seed=seed, dtype=dtype))
