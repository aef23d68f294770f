"""How a VAE's latent space is organised: posterior means, kNN accuracy, silhouette, PCA.

The metrics are plain numpy (scikit-learn is only a test dependency, used there as the
independent reference). Distances are computed in row blocks, so 7,000 validation digits of
the full Keras MNIST need tens of megabytes, not a 7,000 x 7,000 matrix at once.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from toolkit.training.evaluate import batches

#: Rows of a distance matrix computed at once.
BLOCK = 1024


def latent_means(model, inputs: dict, batch_size: int = 256) -> np.ndarray:
    """Posterior means of the latent code of every example.

    Args:
        model: a trained `ConditionalVAE`.
        inputs: a dict with `"images"` and, for a conditional model, `"condition"`
            (other keys, e.g. `"labels"`, are ignored).
        batch_size: examples encoded at once.

    Returns:
        float64 array `[N, latent_dim]`.
    """
    used = {k: v for k, v in inputs.items() if k in ("images", "condition")}
    parts = [_encode_mean(model, batch).numpy() for batch in batches(used, batch_size)]
    return np.concatenate(parts).astype(np.float64)


@tf.function(reduce_retracing=True)
def _encode_mean(model, batch):
    loc, _ = model.encode(batch)
    return loc


def squared_distances(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances `[len(queries), len(points)]`, clipped at 0 against round-off.

    Args:
        queries: `[M, D]` points.
        points: `[N, D]` points.
    """
    queries, points = np.asarray(queries, np.float64), np.asarray(points, np.float64)
    cross = queries @ points.T
    squared = (queries**2).sum(1)[:, None] + (points**2).sum(1)[None, :] - 2.0 * cross
    return np.maximum(squared, 0.0)


def knn_accuracy(
    points: np.ndarray,
    labels: np.ndarray,
    k: int = 5,
    reference_points: np.ndarray | None = None,
    reference_labels: np.ndarray | None = None,
) -> float:
    """Fraction of points whose label is the majority label of their `k` nearest neighbours.

    Without a reference set this is leave-one-out: each point is classified by the other
    points (never by itself). With one, `points` are the queries and the reference set is
    the labelled neighbours, like scikit-learn's `KNeighborsClassifier(k).fit(reference)`.
    A tied vote goes to the smallest label, as in scikit-learn.

    Args:
        points: `[N, D]` query points.
        labels: `[N]` their integer labels.
        k: number of neighbours. Default value: `5`.
        reference_points: `[R, D]` labelled neighbours, or `None` for leave-one-out.
        reference_labels: `[R]` their labels (required with `reference_points`).

    Returns:
        The accuracy in [0, 1].
    """
    points, labels = np.asarray(points, np.float64), np.asarray(labels)
    leave_one_out = reference_points is None
    if leave_one_out:
        reference_points, reference_labels = points, labels
    elif reference_labels is None:
        raise ValueError("knn_accuracy: `reference_labels` is required with `reference_points`.")
    reference_points = np.asarray(reference_points, np.float64)
    available = len(reference_points) - (1 if leave_one_out else 0)
    if not 1 <= k <= available:
        raise ValueError(f"knn_accuracy: `k` must be in [1, {available}], got {k}.")
    classes, reference_codes = np.unique(np.asarray(reference_labels), return_inverse=True)
    correct = 0
    for start in range(0, len(points), BLOCK):
        distances = squared_distances(points[start : start + BLOCK], reference_points)
        if leave_one_out:  # a point is not its own neighbour
            rows = np.arange(len(distances))
            distances[rows, start + rows] = np.inf
        nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
        votes = np.zeros((len(distances), len(classes)), np.int64)
        np.add.at(votes, (np.arange(len(distances))[:, None], reference_codes[nearest]), 1)
        predicted = classes[votes.argmax(1)]  # argmax takes the first, i.e. smallest, tied label
        correct += int((predicted == labels[start : start + BLOCK]).sum())
    return correct / len(points)


def silhouette_score(points: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette coefficient of labelled points (Euclidean), in [-1, 1].

    For each point, `a` is its mean distance to the other points of its cluster and `b` the
    smallest mean distance to the points of another cluster; its coefficient is
    `(b - a) / max(a, b)`, and 0 for a point alone in its cluster (Rousseeuw 1987, as in
    scikit-learn).

    Args:
        points: `[N, D]` points.
        labels: `[N]` cluster labels; between 2 and N - 1 distinct values.

    Returns:
        The mean coefficient over all points.
    """
    points = np.asarray(points, np.float64)
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    count, clusters = len(points), codes.max(initial=-1) + 1
    if not 2 <= clusters <= count - 1:
        raise ValueError(f"silhouette_score: needs 2 to {count - 1} distinct labels, got {clusters}.")
    members = np.eye(clusters)[codes]  # one-hot [N, C]
    sizes = members.sum(0)
    coefficients = np.empty(count)
    for start in range(0, count, BLOCK):
        block_codes = codes[start : start + BLOCK]
        rows = np.arange(len(block_codes))
        sums = np.sqrt(squared_distances(points[start : start + BLOCK], points)) @ members  # [B, C]
        own_size = sizes[block_codes]
        a = sums[rows, block_codes] / np.maximum(own_size - 1, 1)  # the zero self-distance is excluded
        others = sums / sizes
        others[rows, block_codes] = np.inf
        b = others.min(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = (b - a) / np.maximum(a, b)
        coefficients[start : start + BLOCK] = np.where(own_size > 1, np.nan_to_num(s), 0.0)
    return float(coefficients.mean())


def pca_2d(points: np.ndarray) -> np.ndarray:
    """The points projected on their first two principal components (numpy SVD), `[N, 2]`.

    Points with fewer than two dimensions are centred and padded with zeros.

    Args:
        points: `[N, D]` points.
    """
    centred = np.asarray(points, np.float64) - np.mean(points, axis=0)
    if centred.shape[1] < 2:
        return np.pad(centred, ((0, 0), (0, 2 - centred.shape[1])))
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    return centred @ directions[:2].T


__all__ = ["knn_accuracy", "latent_means", "pca_2d", "silhouette_score", "squared_distances"]
