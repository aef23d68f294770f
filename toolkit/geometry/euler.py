"""Euler angles in any of scipy's 24 conventions, to and from matrices and quaternions."""

import numpy as np
import tensorflow as tf
from tensorflow.types.experimental import TensorLike

from toolkit.geometry._utils import (
    check_trailing_shape,
    from_radians,
    matrix_from_rows,
    safe_atan2,
    safe_norm,
    to_float_tensor,
    to_radians,
)
from toolkit.geometry.quaternion import (
    canonical_quaternion,
    matrix_to_quaternion,
    quaternion_multiply,
)

_EXTRINSIC = [a + b + c for a in "xyz" for b in "xyz" for c in "xyz" if a != b != c]
#: The 24 accepted convention strings: uppercase intrinsic, lowercase extrinsic (as scipy).
CONVENTIONS = tuple(s.upper() for s in _EXTRINSIC) + tuple(_EXTRINSIC)


def parse_convention(convention: str) -> tuple[list[int], bool]:
    """Axis indices (x=0, y=1, z=2) and whether the convention is intrinsic.

    Raises:
        ValueError: if `convention` is not one of the 24 in `CONVENTIONS`.
    """
    if convention not in CONVENTIONS:
        raise ValueError(
            f"Unknown Euler convention {convention!r}: expected 3 axes from 'xyz' "
            "(uppercase intrinsic, lowercase extrinsic) with no two consecutive axes "
            "equal, e.g. 'ZYZ' or 'xyz'."
        )
    return ["xyz".index(axis) for axis in convention.lower()], convention.isupper()


def _axis_matrix(axis: int, angle: tf.Tensor) -> tf.Tensor:
    """Rotation by `angle` about the coordinate axis `axis`, [..., 3, 3]."""
    c, s = tf.cos(angle), tf.sin(angle)
    one, zero = tf.ones_like(angle), tf.zeros_like(angle)
    rows = {
        0: [[one, zero, zero], [zero, c, -s], [zero, s, c]],
        1: [[c, zero, s], [zero, one, zero], [-s, zero, c]],
        2: [[c, -s, zero], [s, c, zero], [zero, zero, one]],
    }[axis]
    return matrix_from_rows(rows)


def _axis_quaternion(axis: int, angle: tf.Tensor) -> tf.Tensor:
    """Quaternion of a rotation by `angle` about the coordinate axis `axis`, [..., 4]."""
    half = angle / 2
    zero = tf.zeros_like(half)
    parts = [tf.cos(half), zero, zero, zero]
    parts[axis + 1] = tf.sin(half)
    return tf.stack(parts, axis=-1)


def _prepare_angles(angles: TensorLike, degrees: bool) -> tf.Tensor:
    angles = to_float_tensor(angles)
    check_trailing_shape(angles, (3,), "angles")
    return to_radians(angles, degrees)


def euler_to_matrix(angles: TensorLike, convention: str = "ZYZ", degrees: bool = False) -> tf.Tensor:
    """Rotation matrices from Euler angles, equal to scipy's `Rotation.from_euler`.

    Intrinsic "XYZ" with angles (a, b, c) is Rx(a) @ Ry(b) @ Rz(c); extrinsic "xyz" is
    Rz(c) @ Ry(b) @ Rx(a).

    Args:
        angles: Euler angles `[..., 3]`, in the order of the convention's axes.
        convention: 3 axes from "xyz", uppercase intrinsic, lowercase extrinsic, no two
            consecutive axes equal (see `CONVENTIONS`). Default value: `"ZYZ"`.
        degrees: whether the angles are in degrees. Default value: `False` (radians).

    Returns:
        Rotation matrices `[..., 3, 3]` (x' = R x), same dtype as `angles`.

    Raises:
        ValueError: for an unknown convention.

    Example:

    >>> import numpy as np
    >>> np.round(euler_to_matrix([90.0, 0.0, 0.0], "ZYZ", degrees=True).numpy(), 3) + 0.0
    array([[ 0., -1.,  0.],
           [ 1.,  0.,  0.],
           [ 0.,  0.,  1.]], dtype=float32)
    """
    axes, intrinsic = parse_convention(convention)
    angles = _prepare_angles(angles, degrees)
    mats = [_axis_matrix(axis, angles[..., i]) for i, axis in enumerate(axes)]
    if not intrinsic:
        mats = mats[::-1]  # extrinsic: the first rotation is applied first (rightmost)
    return mats[0] @ mats[1] @ mats[2]


def euler_to_quaternion(angles: TensorLike, convention: str = "ZYZ", degrees: bool = False) -> tf.Tensor:
    """Unit quaternions (scalar-first, canonical w >= 0) from Euler angles.

    Args:
        angles: Euler angles `[..., 3]`.
        convention: scipy-style convention string. Default value: `"ZYZ"`.
        degrees: whether the angles are in degrees. Default value: `False`.

    Returns:
        Quaternions `[..., 4]` (w, x, y, z) with w >= 0, same dtype as `angles`.

    Example:

    >>> import numpy as np
    >>> np.round(euler_to_quaternion([0.0, 0.0, 90.0], "xyz", degrees=True).numpy(), 3)
    array([0.707, 0.   , 0.   , 0.707], dtype=float32)
    """
    axes, intrinsic = parse_convention(convention)
    angles = _prepare_angles(angles, degrees)
    quats = [_axis_quaternion(axis, angles[..., i]) for i, axis in enumerate(axes)]
    if not intrinsic:
        quats = quats[::-1]
    q = quaternion_multiply(quaternion_multiply(quats[0], quats[1]), quats[2])
    return canonical_quaternion(q)


def _lock_tolerance(dtype: tf.DType) -> float:
    # scipy treats a middle angle within 1e-7 rad of a singularity as gimbal lock; float32
    # cannot resolve that, so widen the band to a few ulps there.
    return max(1e-7, 10 * float(np.finfo(dtype.as_numpy_dtype).eps))


def quaternion_to_euler(q: TensorLike, convention: str = "ZYZ", degrees: bool = False) -> tf.Tensor:
    """Euler angles of quaternions, equal to scipy's `Rotation.as_euler`.

    Uses the general quaternion method of Bernardes & Viollet (2022), like scipy: only
    atan2 calls, so it is accurate everywhere including near gimbal lock. Ranges: first
    and third angles in [-pi, pi), the middle one in [0, pi] for proper conventions
    ("ZYZ", ...) and in [-pi/2, pi/2] for Tait-Bryan ones ("XYZ", ...). Within 1e-7 rad
    of gimbal lock (1.2e-6 in float32) the third angle is set to 0, as scipy does.
    Gradients are finite everywhere; at exact gimbal lock they ignore the undefined angle.

    Args:
        q: quaternions `[..., 4]`, scalar-first; need not be normalized, sign is ignored.
        convention: scipy-style convention string. Default value: `"ZYZ"`.
        degrees: whether to return degrees. Default value: `False` (radians).

    Returns:
        Euler angles `[..., 3]`, same dtype as `q`.

    Example:

    >>> import numpy as np
    >>> q = euler_to_quaternion([10.0, 20.0, 30.0], "ZYZ", degrees=True)
    >>> np.round(quaternion_to_euler(q, "ZYZ", degrees=True).numpy(), 3)
    array([10., 20., 30.], dtype=float32)
    """
    axes, intrinsic = parse_convention(convention)
    q = to_float_tensor(q)
    check_trailing_shape(q, (4,), "q")
    # The method is stated for extrinsic sequences; an intrinsic one is the reversed
    # extrinsic sequence with first and third angles swapped.
    i, j, k = axes[::-1] if intrinsic else axes
    proper = i == k
    if proper:
        k = 3 - i - j
    parity = (i - j) * (j - k) * (k - i) / 2  # +1 for cyclic (even) axis order, else -1
    w, v = q[..., 0], [q[..., 1], q[..., 2], q[..., 3]]
    if proper:
        a, b, c, d = w, v[i], v[j], parity * v[k]
    else:  # compose with a 90-degree turn about axis j (unscaled): now a proper sequence
        a, b, c, d = w - v[j], v[i] + parity * v[k], v[j] + w, parity * v[k] - v[i]
    middle = 2 * safe_atan2(safe_norm(tf.stack([c, d], -1)), safe_norm(tf.stack([a, b], -1)))
    half_sum, half_diff = safe_atan2(b, a), safe_atan2(d, c)

    pi = tf.constant(np.pi, q.dtype)
    tol = _lock_tolerance(q.dtype)
    near_zero = tf.abs(middle) <= tol
    regular = tf.logical_not(tf.logical_or(near_zero, tf.abs(middle - pi) <= tol))
    # At gimbal lock only the sum (or difference) of the outer angles is defined: put it
    # all in the first angle of the output and 0 in the third.
    locked = tf.where(near_zero, 2 * half_sum, (-2 if not intrinsic else 2) * half_diff)
    zero = tf.zeros_like(locked)
    first = tf.where(regular, half_sum - half_diff, zero if intrinsic else locked)
    third = tf.where(regular, half_sum + half_diff, locked if intrinsic else zero)
    if not proper:
        third = third * parity
        middle = middle - pi / 2
    angles = [third, middle, first] if intrinsic else [first, middle, third]
    angles[0] = tf.math.floormod(angles[0] + pi, 2 * pi) - pi
    angles[2] = tf.math.floormod(angles[2] + pi, 2 * pi) - pi
    return from_radians(tf.stack(angles, axis=-1), degrees)


def matrix_to_euler(matrix: TensorLike, convention: str = "ZYZ", degrees: bool = False) -> tf.Tensor:
    """Euler angles of rotation matrices, equal to scipy's `Rotation.as_euler`.

    Goes through `matrix_to_quaternion` and `quaternion_to_euler`; see the latter for the
    angle ranges and the gimbal-lock rule.

    Args:
        matrix: rotation matrices `[..., 3, 3]`.
        convention: scipy-style convention string. Default value: `"ZYZ"`.
        degrees: whether to return degrees. Default value: `False` (radians).

    Returns:
        Euler angles `[..., 3]`, same dtype as `matrix`.

    Example:

    >>> import numpy as np
    >>> m = euler_to_matrix([0.1, 0.2, 0.3], "XYZ")
    >>> np.round(matrix_to_euler(m, "XYZ").numpy(), 3)
    array([0.1, 0.2, 0.3], dtype=float32)
    """
    parse_convention(convention)  # fail fast, before any tensor work
    return quaternion_to_euler(matrix_to_quaternion(matrix), convention, degrees)
