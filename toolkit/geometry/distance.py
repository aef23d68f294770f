"""Geodesic (rotation-angle) distance between rotations."""

import numpy as np
import tensorflow as tf
from tensorflow.types.experimental import TensorLike

from toolkit.geometry._utils import (
    check_trailing_shape,
    from_radians,
    safe_norm,
    to_float_tensor,
)


def geodesic_angle(r1: TensorLike, r2: TensorLike, degrees: bool = False) -> tf.Tensor:
    """Angle in [0, pi] of the relative rotation r1^T r2 (broadcasting batch dimensions).

    Computed as atan2(||skew part||, trace - 1) (= atan2(2 sin t, 2 cos t)) instead of
    arccos((trace - 1) / 2), which loses half the digits near 0 and pi and has an
    infinite gradient there. The gradient is finite everywhere and 0 for identical
    rotations (a valid subgradient of the kink at 0).

    Args:
        r1: rotation matrices `[..., 3, 3]`.
        r2: rotation matrices `[..., 3, 3]`, broadcastable against `r1`.
        degrees: whether to return degrees. Default value: `False` (radians).

    Returns:
        Angles `[...]`, same dtype as the inputs.

    Example:

    >>> import numpy as np
    >>> from toolkit.geometry.euler import euler_to_matrix
    >>> a = euler_to_matrix([[0.0, 0.0, 0.0], [0.0, 0.0, 30.0]], "xyz", degrees=True)
    >>> np.round(geodesic_angle(a[0], a, degrees=True).numpy(), 3)
    array([ 0., 30.], dtype=float32)
    """
    r1 = to_float_tensor(r1)
    r2 = to_float_tensor(r2, dtype_hint=r1.dtype)
    check_trailing_shape(r1, (3, 3), "r1")
    check_trailing_shape(r2, (3, 3), "r2")
    rel = tf.linalg.matmul(r1, r2, transpose_a=True)
    skew = tf.stack(
        [
            rel[..., 2, 1] - rel[..., 1, 2],
            rel[..., 0, 2] - rel[..., 2, 0],
            rel[..., 1, 0] - rel[..., 0, 1],
        ],
        axis=-1,
    )
    cos_part = tf.linalg.trace(rel) - 1
    return from_radians(tf.math.atan2(safe_norm(skew), cos_part), degrees)


#: Angles (degrees) of the "fraction within" statistics of orientation errors.
ERROR_THRESHOLDS = (5, 10, 15)


def orientation_errors(predicted: TensorLike, true: TensorLike) -> np.ndarray:
    """Geodesic angles in degrees, float64 numpy `[N]`, between predicted and true matrices `[..., 3, 3]`."""
    predicted = tf.cast(to_float_tensor(predicted), tf.float64)
    true = tf.cast(to_float_tensor(true), tf.float64)
    return geodesic_angle(predicted, true, degrees=True).numpy().ravel()


def error_statistics(errors_deg, thresholds=ERROR_THRESHOLDS, prefix: str = "") -> dict:
    """Median and mean of orientation errors (degrees) and the fraction at or under each threshold.

    Keys: `{prefix}median_error_deg`, `{prefix}mean_error_deg`, `{prefix}within_{t}_deg`.

    >>> error_statistics([1.0, 5.0, 20.0], thresholds=(5,))
    {'median_error_deg': 5.0, 'mean_error_deg': 8.666666666666666, 'within_5_deg': 0.6666666666666666}
    """
    errors = np.asarray(errors_deg, np.float64)
    return {
        f"{prefix}median_error_deg": float(np.median(errors)),
        f"{prefix}mean_error_deg": float(np.mean(errors)),
        **{f"{prefix}within_{t}_deg": float(np.mean(errors <= t)) for t in thresholds},
    }
