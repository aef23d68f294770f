"""Differentiable, batched TensorFlow rotation conversions.

Conventions used throughout the project:

* Rotation matrices act on column vectors: a sample point x is rotated to x' = R x and
  then projected along the +z axis (the beam) onto the x-y detector plane, so the
  viewing direction in the sample frame is R^T e_z (`view_directions`).
* Quaternions are scalar-first (w, x, y, z), unit norm; returned with w >= 0.
* Euler convention strings follow `scipy.spatial.transform.Rotation` exactly: 3 axes
  from "xyz", UPPERCASE intrinsic, lowercase extrinsic, all 12 proper ("ZYZ", ...) and
  12 Tait-Bryan ("XYZ", ...) sequences. Results equal scipy's `from_euler`/`as_euler`,
  including angle ranges and the gimbal-lock rule (third angle set to 0).
* The 6D representation (Zhou et al. 2019) is the first two matrix columns, [..., 6].
* RELION uses intrinsic "ZYZ" (rot, tilt, psi) in degrees, but its matrix is the
  transpose (inverse) of scipy's: for a pose R, RELION's angles a satisfy
  `Rotation.from_euler("ZYZ", a, degrees=True).as_matrix() == R.T`. Use
  `relion_to_matrix` / `matrix_to_relion` rather than the generic Euler functions.

Every function takes any leading batch shape, keeps float32/float64 inputs' dtype
(other inputs become float32), is differentiable and works in `tf.function` and
`tf.data` pipelines.
"""

from toolkit.geometry.distance import ERROR_THRESHOLDS, error_statistics, geodesic_angle, orientation_errors
from toolkit.geometry.euler import (
    CONVENTIONS,
    euler_to_matrix,
    euler_to_quaternion,
    matrix_to_euler,
    quaternion_to_euler,
)
from toolkit.geometry.lambert import (
    lambert_hemisphere,
    lambert_projection,
    view_directions,
)
from toolkit.geometry.quaternion import (
    matrix_to_quaternion,
    quaternion_conjugate,
    quaternion_multiply,
    quaternion_to_matrix,
)
from toolkit.geometry.relion import matrix_to_relion, relion_to_matrix
from toolkit.geometry.representations import REPRESENTATION_WIDTHS, orientation_features
from toolkit.geometry.sampling import random_quaternions, random_rotations
from toolkit.geometry.sixd import matrix_to_sixd, sixd_to_matrix

__all__ = [
    "CONVENTIONS",
    "ERROR_THRESHOLDS",
    "REPRESENTATION_WIDTHS",
    "euler_to_matrix",
    "error_statistics",
    "euler_to_quaternion",
    "geodesic_angle",
    "lambert_hemisphere",
    "lambert_projection",
    "matrix_to_euler",
    "matrix_to_quaternion",
    "matrix_to_relion",
    "matrix_to_sixd",
    "orientation_errors",
    "orientation_features",
    "quaternion_conjugate",
    "quaternion_multiply",
    "quaternion_to_euler",
    "quaternion_to_matrix",
    "random_quaternions",
    "random_rotations",
    "relion_to_matrix",
    "sixd_to_matrix",
    "view_directions",
]
