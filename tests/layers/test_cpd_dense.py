"""Tests for the CP-decomposed Dense layer (TensorLy is the independent reference).

Config and serialization round trips, `model.fit` in user models, the `.keras` file,
SavedModel, MirroredStrategy, mixed precision and XLA are checked for the `cpd_dense`,
`cpd_dense_regularized`, `encoder_cpd_dense` and `decoder_cpd_dense` goldens by the
conformance suite (`test_conformance.py`); this file checks what is particular to CPDDense.
"""

import itertools

import keras
import numpy as np
import pytest
import tensorly as tl

from toolkit.layers.cpd_dense import CPDDense, auto_factors, count_cp_params


def _dense(in_features, units, seed=0, activation=None):
    """A built Dense with a random (full-rank, non-trivial) kernel and bias."""
    rng = np.random.default_rng(seed)
    dense = keras.layers.Dense(units, activation=activation)
    dense.build((None, in_features))
    dense.kernel.assign(rng.standard_normal((in_features, units)).astype("float32"))
    dense.bias.assign(rng.standard_normal(units).astype("float32"))
    return dense


def _random_inputs(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    ("input_factors", "output_factors"),
    [((2, 4), (2, 3)), ((2, 3, 4), (5, 2)), ((7,), (3, 2, 2))],
)
def test_kernel_matches_tensorly_cp_to_tensor(input_factors, output_factors):
    layer = CPDDense(int(np.prod(output_factors)), 3, input_factors, output_factors)
    layer.build((None, int(np.prod(input_factors))))
    factors = [_numpy(f).astype(np.float64) for f in layer.factors]

    expected = tl.cp_to_tensor((np.ones(3), factors)).reshape(layer.kernel.shape)

    np.testing.assert_allclose(_numpy(layer.kernel), expected, rtol=1e-5, atol=1e-6)


def test_from_dense_at_rank_bound_reproduces_kernel():
    # A 2x4x2x3 tensor has CP rank <= 48 / max(dims) = 12 (one term per fibre of the
    # largest mode), so rank 12 can represent any such kernel exactly.
    dense = _dense(8, 6)

    layer, info = CPDDense.from_dense(dense, rank=12, input_shape_factors=(2, 4), output_shape_factors=(2, 3))

    kernel = _numpy(dense.kernel)
    relative = np.linalg.norm(_numpy(layer.kernel) - kernel) / np.linalg.norm(kernel)
    assert relative < 1e-4
    assert info["relative_error"] < 1e-4
    np.testing.assert_array_equal(_numpy(layer.bias), _numpy(dense.bias))


@pytest.mark.parametrize("rank", [2, 6])
def test_from_dense_outputs_bounded_by_kernel_error(rank):
    dense = _dense(24, 20, activation="linear")
    layer, info = CPDDense.from_dense(dense, rank=rank)
    x = _random_inputs((64, 24))

    # Same bias on both sides, so y - y_hat = x (W - W_hat) and
    # ||y - y_hat||_F <= ||x||_2 ||W - W_hat||_F <= ||x||_F * rel_err * ||W||_F.
    error = np.linalg.norm(_numpy(layer(x)) - _numpy(dense(x)))
    bound = np.linalg.norm(x) * info["relative_error"] * np.linalg.norm(_numpy(dense.kernel))
    assert info["relative_error"] > 1e-3  # a real approximation, not an exact fit
    assert error <= bound * (1 + 1e-4)


@pytest.mark.parametrize(
    ("units", "rank", "input_factors", "output_factors", "use_bias"),
    [
        (6, 4, (2, 4), (2, 3), True),
        (1024, 8, (32, 32), (32, 32), True),
        (30, 5, (2, 3, 4), (5, 6), False),
        (13, 2, (7,), (13,), True),
    ],
)
def test_parameter_count(units, rank, input_factors, output_factors, use_bias):
    layer = CPDDense(units, rank, input_factors, output_factors, use_bias=use_bias)
    layer.build((None, int(np.prod(input_factors))))

    expected = rank * (sum(input_factors) + sum(output_factors)) + (units if use_bias else 0)
    assert layer.count_params() == expected
    assert count_cp_params(rank, input_factors, output_factors, use_bias) == expected


def test_auto_factors_chosen_at_build():
    layer = CPDDense(12, 2)
    layer.build((None, 1024))

    assert (layer.input_modes, layer.output_modes) == ((32, 32), (3, 4))
    assert auto_factors(17) == (17,)
    assert auto_factors(64, modes=3) == (4, 4, 4)


@pytest.mark.parametrize(
    ("input_factors", "output_factors", "input_shape"),
    [
        ((4, 6), (2, 5), (7, 24)),
        ((2, 3, 4), (2, 2, 3), (3, 5, 24)),
        ((24,), (10,), (4, 24)),
    ],
)
def test_factored_and_reconstructed_forward_agree(input_factors, output_factors, input_shape):
    units = int(np.prod(output_factors))
    factored = CPDDense(units, 5, input_factors, output_factors, activation="tanh")
    x = _random_inputs(input_shape)
    y = factored(x)
    reconstructed = CPDDense(units, 5, input_factors, output_factors, activation="tanh", factored=False)
    reconstructed.build(x.shape)
    reconstructed.set_weights(factored.get_weights())

    assert tuple(y.shape) == (*input_shape[:-1], units)
    np.testing.assert_allclose(_numpy(y), _numpy(reconstructed(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"units": 6, "rank": 0}, "`rank` must be a positive integer, got 0."),
        ({"units": -3, "rank": 2}, "`units` must be a positive integer, got -3."),
        ({"units": 6, "rank": 2.5}, "got 2.5"),
        (
            {"units": 6, "rank": 2, "output_shape_factors": (2, 4)},
            r"\(2, 4\) multiply to 8, but `units` is 6",
        ),
        ({"units": 6, "rank": 2, "input_shape_factors": (0, 4)}, r"got \(0, 4\)"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CPDDense(**kwargs)


def test_input_factors_mismatch_raises_at_build():
    layer = CPDDense(6, 2, input_shape_factors=(4, 8))

    with pytest.raises(
        ValueError,
        match=r"\(4, 8\) multiply to 32, but the layer input has 64 features",
    ):
        layer.build((None, 64))


def test_als_error_curve():
    # Read from tensorly 0.10 `parafac`: one entry per ALS sweep, each the relative
    # reconstruction error ||T - T_hat|| / ||T|| of the factors after that sweep.
    dense = _dense(24, 20, seed=3)
    _, info = CPDDense.from_dense(dense, rank=4, n_iter_max=60, tol=0.0)
    errors = info["als_errors"]

    assert len(errors) == 60
    assert errors[-1] <= errors[0]
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(errors))  # ALS is monotone
    # The stored factors are float32, so allow a small gap to the float64 ALS value.
    assert info["relative_error"] == pytest.approx(errors[-1], abs=1e-5)
