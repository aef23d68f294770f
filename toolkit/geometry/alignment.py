"""Global alignment of a pose set to another: poses learned without labels are defined only up to one
rotation of the whole set, and a mirror.

A map learned from unlabeled shadows may come out turned by any rotation G, or as its mirror image;
its poses then satisfy R_pred ~ R_true G, or F R_pred F ~ R_true G for the mirrored hand
(F = diag(1, 1, -1)). `align_poses` finds G for both hands (orthogonal Procrustes: the rotation
nearest the sum of R_true^T R_pred, refitted on the poses within twice the median error, so that
poses gone wrong do not pull it) and reports the geodesic errors after each, as cryoAI's pose metric does.

Example:

>>> from scipy.spatial.transform import Rotation
>>> true = Rotation.random(50, random_state=0).as_matrix()
>>> turn = Rotation.from_euler("z", 40, degrees=True).as_matrix()
>>> result = align_poses(true @ turn, true)
>>> result["hand"], round(float(np.median(result["errors_deg"])), 6)
('same', 0.0)
"""

from __future__ import annotations

import numpy as np

from toolkit.geometry.distance import orientation_errors

MIRROR = np.diag([1.0, 1.0, -1.0])


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation nearest a 3x3 matrix in the Frobenius norm (its polar factor, determinant +1)."""
    u, _, vt = np.linalg.svd(matrix)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def fit_global_rotation(predicted: np.ndarray, true: np.ndarray, rounds: int = 5):
    """The rotation G with predicted ~ true @ G, and the errors (degrees) of each pose after it.

    Each refit keeps the poses within twice the median error: all of the roughly right ones, few of
    the lost ones while they are fewer than half, and no preference among the right ones (keeping
    a fixed best fraction would favour those whose errors lean the way the fit already leans).

    Args:
        predicted: rotation matrices `[N, 3, 3]`.
        true: rotation matrices `[N, 3, 3]`.
        rounds: refits after the first fit on all poses. Default value: `5`.

    Returns:
        `(G [3, 3], errors [N])`.
    """
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    relative = np.einsum("nji,njk->nik", true, predicted)  # true_i^T predicted_i, each a candidate G
    rotation = nearest_rotation(relative.sum(axis=0))
    for _ in range(rounds):
        errors = orientation_errors(predicted, true @ rotation)
        inliers = errors <= 2.0 * np.median(errors)
        rotation = nearest_rotation(relative[inliers].sum(axis=0))
    return rotation, orientation_errors(predicted, true @ rotation)


def align_poses(predicted, true) -> dict:
    """Align predicted poses to true ones globally, in both hands, and say which hand fits.

    Args:
        predicted: rotation matrices `[N, 3, 3]`, e.g. learned without labels.
        true: the true rotation matrices `[N, 3, 3]`.

    Returns:
        A dict: `hand` ("same" or "mirrored", the one with the smaller median error),
        `rotation` (G of that hand), `errors_deg` (`[N]` after it), and `same` and `mirrored`,
        each a dict of that hand's `rotation` and `errors_deg`.

    Raises:
        ValueError: the inputs are not two `[N, 3, 3]` arrays of the same N >= 1.
    """
    predicted, true = np.asarray(predicted, np.float64), np.asarray(true, np.float64)
    if predicted.shape != true.shape or predicted.ndim != 3 or predicted.shape[1:] != (3, 3) or not len(true):
        raise ValueError(
            f"align_poses: expected two [N, 3, 3] rotation arrays of the same N >= 1, got "
            f"{predicted.shape} and {true.shape}"
        )
    hands = {}
    for hand, poses in (("same", predicted), ("mirrored", MIRROR @ predicted @ MIRROR)):
        rotation, errors = fit_global_rotation(poses, true)
        hands[hand] = {"rotation": rotation, "errors_deg": errors}
    hand = min(hands, key=lambda name: np.median(hands[name]["errors_deg"]))
    return {"hand": hand, **hands[hand], **hands}
