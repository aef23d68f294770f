"""The numpy latent metrics against scikit-learn, the independent reference."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score as sklearn_silhouette
from sklearn.model_selection import LeaveOneOut, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from toolkit.analysis import latent as latent_analysis
from toolkit.analysis.latent import knn_accuracy, pca_2d, silhouette_score


def clustered(count=240, dims=3, centers=6, spread=2.5, seed=0):
    """Overlapping Gaussian clusters, so neither accuracy nor silhouette is trivially 1."""
    points, labels = make_blobs(
        count, n_features=dims, centers=centers, cluster_std=spread, random_state=seed
    )
    return points, labels


@pytest.mark.parametrize("k", [1, 5, 8])
def test_leave_one_out_knn_matches_sklearn(k):
    points, labels = clustered()
    expected = cross_val_score(KNeighborsClassifier(k), points, labels, cv=LeaveOneOut()).mean()
    assert 0.3 < expected < 1.0
    assert knn_accuracy(points, labels, k=k) == pytest.approx(expected, abs=1e-12)


def test_knn_with_a_reference_set_matches_sklearn_and_labels_need_not_be_0_to_c():
    points, labels = clustered(count=400, seed=1)
    labels = labels * 3 + 7  # arbitrary integer labels
    reference, queries = slice(0, 300), slice(300, None)
    expected = (
        KNeighborsClassifier(5)
        .fit(points[reference], labels[reference])
        .score(points[queries], labels[queries])
    )
    got = knn_accuracy(points[queries], labels[queries], 5, points[reference], labels[reference])
    assert got == pytest.approx(expected, abs=1e-12)


def test_knn_rejects_too_many_neighbours():
    points, labels = clustered(count=6)
    with pytest.raises(ValueError, match="`k` must be in"):
        knn_accuracy(points, labels, k=6)  # leave-one-out leaves 5


@pytest.mark.parametrize("seed", [0, 1])
def test_silhouette_matches_sklearn(seed):
    points, labels = clustered(seed=seed)
    expected = sklearn_silhouette(points, labels)
    assert silhouette_score(points, labels) == pytest.approx(expected, abs=1e-10)


def test_silhouette_in_blocks_with_a_singleton_cluster_matches_sklearn(monkeypatch):
    monkeypatch.setattr(latent_analysis, "BLOCK", 37)  # several blocks, the last one partial
    points, labels = clustered(count=150, dims=2, centers=4, seed=2)
    labels[0] = 99  # a cluster of one point scores 0
    expected = sklearn_silhouette(points, labels)
    assert silhouette_score(points, labels) == pytest.approx(expected, abs=1e-10)
    assert knn_accuracy(points, labels, 5) == pytest.approx(
        cross_val_score(KNeighborsClassifier(5), points, labels, cv=LeaveOneOut()).mean(), abs=1e-12
    )


def test_silhouette_needs_two_clusters():
    with pytest.raises(ValueError, match="distinct labels"):
        silhouette_score(np.zeros((5, 2)), np.zeros(5))


def test_pca_matches_sklearn_up_to_sign():
    points, _ = clustered(count=200, dims=5, seed=3)
    points = points @ np.random.default_rng(0).normal(size=(5, 5))  # unequal variances
    ours, theirs = pca_2d(points), PCA(2).fit_transform(points)
    signs = np.sign((ours * theirs).sum(0))
    np.testing.assert_allclose(ours * signs, theirs, atol=1e-8)


def test_pca_of_one_dimension_is_centred_and_padded():
    out = pca_2d(np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(out, [[-1.0, 0.0], [1.0, 0.0]])
