"""`cp_fit` against closed forms: Eckart-Young for the weights, reduced-rank regression for the outputs."""

import keras
import numpy as np
import pytest

from toolkit.layers import CPDDense
from toolkit.layers.cp_fit import choose_ranks, cp_fit, rebuild_kernel, whitened_spectrum


def correlated_inputs(rows: int, features: int, seed: int = 0) -> np.ndarray:
    """Inputs with a few strong directions, a mean away from zero and one dead feature (as ReLUs give)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4)) @ rng.standard_normal((4, features)) * 3.0
    x += 0.1 * rng.standard_normal((rows, features)) + 2.0
    x[:, 0] = 0.0
    return x


def test_a_weights_fit_of_a_matrix_is_the_truncated_svd():
    kernel = np.random.default_rng(1).standard_normal((12, 20))
    factors, info = cp_fit(kernel, 4, (12,), (20,))
    singular = np.linalg.svd(kernel, compute_uv=False)
    best = np.sqrt(np.sum(singular[4:] ** 2)) / np.linalg.norm(kernel)
    assert info["relative_error"] == pytest.approx(best, rel=1e-6)
    assert np.linalg.matrix_rank(rebuild_kernel(factors, 1)) == 4


def test_an_outputs_fit_reaches_the_reduced_rank_regression_optimum():
    """The best rank-r W_hat for ||X_c (W - W_hat)|| projects X_c W on its top r right singular vectors."""
    x = correlated_inputs(500, 16)
    kernel = np.random.default_rng(2).standard_normal((16, 24))
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred @ kernel, full_matrices=False)
    top = vt[:3].T
    optimum = np.linalg.norm(centred @ kernel @ (np.eye(24) - top @ top.T)) / np.linalg.norm(centred @ kernel)
    _, outputs = cp_fit(kernel, 3, (16,), (24,), inputs=x)
    weights_factors, weights = cp_fit(kernel, 3, (16,), (24,))
    assert outputs["output_error"] == pytest.approx(optimum, rel=0.02)
    gap = centred @ (kernel - rebuild_kernel(weights_factors, 1))
    assert outputs["output_error"] < 0.5 * np.linalg.norm(gap) / np.linalg.norm(centred @ kernel)
    assert outputs["relative_error"] > weights["relative_error"]  # it gives up weights nobody reads


def test_from_dense_with_inputs_keeps_the_mean_output():
    x = correlated_inputs(400, 10).astype("float32")
    dense = keras.layers.Dense(12, bias_initializer="ones")
    dense.build((None, 10))
    layer, info = CPDDense.from_dense(
        dense, 2, input_shape_factors=(10,), output_shape_factors=(12,), inputs=x
    )
    original, compressed = np.asarray(dense(x)), np.asarray(layer(x))
    np.testing.assert_allclose(compressed.mean(axis=0), original.mean(axis=0), atol=1e-4)
    centred = original - original.mean(axis=0)
    measured = np.linalg.norm(compressed - original) / np.linalg.norm(centred)
    assert measured == pytest.approx(info["output_error"], rel=1e-3)


def test_an_outputs_fit_needs_the_input_axis_whole():
    with pytest.raises(ValueError, match=r"needs the input axis as one mode, got input modes \(2, 5\)"):
        cp_fit(np.ones((10, 4)), 2, (2, 5), (4,), inputs=np.ones((8, 10)))
    with pytest.raises(ValueError, match=r"do not tensorize a kernel of shape \(10, 4\)"):
        cp_fit(np.ones((10, 4)), 2, (10,), (2, 3))
    with pytest.raises(ValueError, match=r"`inputs` must be \(examples >= 2, 10\), got shape \(8, 9\)"):
        cp_fit(np.ones((10, 4)), 2, (10,), (4,), inputs=np.ones((8, 9)))


def test_choose_ranks_buys_the_largest_share_per_parameter():
    spectra = {"a": np.array([0.5, 0.3, 0.2]), "b": np.array([0.9, 0.05, 0.05])}
    # Rank 1 each costs 11; b's next shares (0.05 per parameter) beat a's (0.03), so b takes two
    # more (13), then a one (23); a's last rank would need 33 > 30.
    assert choose_ranks(spectra, {"a": 10, "b": 1}, budget=30) == {"a": 2, "b": 3}
    assert choose_ranks(spectra, {"a": 10, "b": 1}, budget=11) == {"a": 1, "b": 1}


def test_the_whitened_spectrum_is_the_share_of_each_rank():
    kernel = np.random.default_rng(3).standard_normal((6, 9))
    spectrum = whitened_spectrum(kernel)
    assert spectrum.sum() == pytest.approx(1.0) and np.all(np.diff(spectrum) <= 0)
    _, info = cp_fit(kernel, 2, (6,), (9,))
    assert info["relative_error"] ** 2 == pytest.approx(spectrum[2:].sum(), rel=1e-6)
