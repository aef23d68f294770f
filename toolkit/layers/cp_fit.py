"""Fitting CP factors to a Dense kernel: to its weights, or to its outputs on given inputs.

`cp_fit` is the function behind `CPDDense.from_dense`; `whitened_spectrum` gives what a rank
buys, so that ranks can be chosen from a parameter budget before any fit.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Ridge added to the input covariance, relative to its mean eigenvalue: directions the inputs
#: never take (dead ReLU units) are then fitted as the weights are, at a small weight.
RIDGE = 1e-3


@dataclass(frozen=True)
class InputStatistics:
    """What an outputs fit needs of a layer's inputs, computed once: `||X_c M||_F^2 = count tr(M^T C M)`.

    `root` is `L` with `L L^T = C + ridge` (so `||X_c M|| ~ sqrt(count) ||L^T M||`) and
    `inverse_root` is `L^-T`, which maps a kernel fitted in whitened coordinates back.
    """

    count: int
    mean: np.ndarray
    covariance: np.ndarray
    root: np.ndarray
    inverse_root: np.ndarray

    @classmethod
    def of(cls, inputs, features: int | None = None) -> InputStatistics:
        """The statistics of rows `inputs` `[examples, features]`; an `InputStatistics` is returned as is."""
        if isinstance(inputs, cls):
            statistics = inputs
        else:
            inputs = np.asarray(inputs, dtype=np.float64)
            if inputs.ndim != 2 or len(inputs) < 2 or (features is not None and inputs.shape[1] != features):
                wanted = "features" if features is None else features
                raise ValueError(
                    f"cp_fit: `inputs` must be (examples >= 2, {wanted}), got shape {tuple(inputs.shape)}."
                )
            mean = inputs.mean(axis=0)
            centred = inputs - mean
            covariance = centred.T @ centred / len(inputs)
            values, vectors = np.linalg.eigh(covariance)
            values = np.maximum(values, 0.0) + RIDGE * max(float(np.mean(values)), 1e-300)
            statistics = cls(
                len(inputs), mean, covariance, vectors * np.sqrt(values), vectors / np.sqrt(values)
            )
        if features is not None and len(statistics.mean) != features:
            raise ValueError(
                f"cp_fit: `inputs` have {len(statistics.mean)} features, the kernel takes {features}."
            )
        return statistics


def cp_fit(
    kernel: np.ndarray,
    rank: int,
    input_modes: Sequence[int],
    output_modes: Sequence[int],
    inputs: np.ndarray | InputStatistics | None = None,
    n_iter_max: int = 200,
    tol: float = 1e-8,
    random_state: int | None = 0,
    init: str = "svd",
) -> tuple[list[np.ndarray], dict]:
    """Rank-`rank` CP factors of an `(in, out)` kernel tensorized as `(*input_modes, *output_modes)`.

    Without `inputs` the factors minimize `||W - W_hat||_F` (ALS, `tensorly.decomposition.parafac`).
    With `inputs` (rows of the layer's input, e.g. activations on training data, or their
    `InputStatistics`, to share them between fits) they minimize
    the error of the layer's outputs, `||(X - mean) (W - W_hat)||_F`: the kernel is fitted in the
    inputs' whitened coordinates and mapped back, which needs the input axis as one mode
    (`input_modes == (in,)`). With one input and one output mode the ALS starts at, and keeps,
    the truncated SVD, the best fit of its rank (Eckart-Young).

    The CP weights are absorbed and every rank-one term's norm is spread evenly over the modes,
    so float32 can hold the factors.

    Returns:
        `(factors, info)`: float64 factor matrices `(mode_size, rank)` in mode order, and
        `{"als_errors": [...], "relative_error": ||W - W_hat|| / ||W||}`, plus `"output_error"`
        (`||X_c (W - W_hat)|| / ||X_c W||`, `X_c` the centred inputs) when `inputs` are given.
    """
    import tensorly as tl
    from tensorly.decomposition import parafac

    kernel = np.asarray(kernel, dtype=np.float64)
    input_modes, output_modes = tuple(input_modes), tuple(output_modes)
    if kernel.ndim != 2 or (math.prod(input_modes), math.prod(output_modes)) != kernel.shape:
        raise ValueError(
            f"cp_fit: modes {input_modes} x {output_modes} do not tensorize a kernel of shape {kernel.shape}."
        )
    norm = np.linalg.norm(kernel)
    if norm == 0.0:
        raise ValueError("cp_fit: the kernel is all zeros; nothing to fit.")
    target, unwhiten = kernel, None
    if inputs is not None:
        if len(input_modes) != 1:
            raise ValueError(
                "cp_fit: a fit to the outputs needs the input axis as one mode, "
                f"got input modes {input_modes}."
            )
        inputs = InputStatistics.of(inputs, kernel.shape[0])
        target, unwhiten = inputs.root.T @ kernel, inputs.inverse_root
    tensor = target.reshape(*input_modes, *output_modes)
    if init == "svd" and tensor.ndim == 2 and rank > min(tensor.shape):
        init = "random"  # TensorLy's SVD init of a matrix breaks past full rank (mismatched factors)
    with tl.backend_context("numpy"), warnings.catch_warnings():
        # Expected when rank > a mode size: TensorLy pads the SVD init randomly.
        warnings.filterwarnings("ignore", message="Trying to compute SVD with n_eigenvecs")
        (weights, factors), errors = parafac(
            tensor,
            rank,
            n_iter_max=n_iter_max,
            init=init,
            tol=tol,
            return_errors=True,
            random_state=random_state,
        )
    factors = [np.asarray(f, dtype=np.float64) for f in factors]
    if unwhiten is not None:
        factors[0] = unwhiten @ factors[0]
    factors = balance_factors(factors, np.asarray(weights, dtype=np.float64))
    info = {"als_errors": [float(e) for e in errors]}
    info.update(fit_errors(kernel, factors, len(input_modes), inputs))
    return factors, info


def fit_errors(kernel: np.ndarray, factors: Sequence[np.ndarray], input_count: int, inputs=None) -> dict:
    """`relative_error` of the kernel rebuilt from `factors`, and `output_error` on `inputs` if given.

    `inputs` are rows or their `InputStatistics`; the output error is read from the covariance.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    approx = rebuild_kernel([np.asarray(f, np.float64) for f in factors], input_count)
    out = {"relative_error": float(np.linalg.norm(kernel - approx) / np.linalg.norm(kernel))}
    if inputs is not None:
        covariance = InputStatistics.of(inputs, kernel.shape[0]).covariance
        gap = kernel - approx
        energy = np.sum(kernel * (covariance @ kernel))
        out["output_error"] = float(np.sqrt(max(np.sum(gap * (covariance @ gap)), 0.0) / max(energy, 1e-300)))
    return out


def rebuild_kernel(factors: Sequence[np.ndarray], input_count: int) -> np.ndarray:
    """The `(in, out)` kernel of CP factors whose first `input_count` modes are the input's."""
    rank = factors[0].shape[1]

    def rows(parts):
        result = parts[0]
        for part in parts[1:]:
            result = (result[:, None, :] * part[None, :, :]).reshape(-1, rank)
        return result

    return rows(factors[:input_count]) @ rows(factors[input_count:]).T


def balance_factors(factors: list[np.ndarray], weights: np.ndarray) -> list[np.ndarray]:
    """Absorb the CP weights and give every mode the same column norms.

    ALS leaves the scale of each rank-one term wherever it happened to land (one factor
    can be huge, another tiny), which overflows or underflows in float32; spreading
    the norm of each term evenly over the modes keeps the same product.
    """
    factors = [f.copy() for f in factors]
    factors[0] = factors[0] * weights[None, :]
    norms = np.stack([np.linalg.norm(f, axis=0) for f in factors])  # (modes, rank)
    target = np.prod(norms, axis=0) ** (1.0 / len(factors))
    safe = np.where(norms > 0, norms, 1.0)
    return [f * (target / safe[m])[None, :] for m, f in enumerate(factors)]


def whitened_spectrum(kernel: np.ndarray, inputs: np.ndarray | InputStatistics | None = None) -> np.ndarray:
    """Squared singular values of the kernel (in the inputs' whitened coordinates when given), over their sum.

    Entry k is the share of the squared (output) error that the k-th rank of a matrix-mode
    fit removes: what `choose_ranks` trades against parameters.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if inputs is not None:
        kernel = InputStatistics.of(inputs, kernel.shape[0]).root.T @ kernel
    values = np.linalg.svd(kernel, compute_uv=False) ** 2
    return values / values.sum()


def choose_ranks(spectra: dict, costs: dict, budget: int) -> dict:
    """Ranks per layer, greedily buying the largest error share per parameter until `budget` is spent.

    Args:
        spectra: per layer, `whitened_spectrum` (error shares, descending).
        costs: per layer, parameters one rank costs (the sum of its mode sizes).
        budget: parameters the factors may take in all (every layer gets at least rank 1).

    Returns:
        `{layer: rank}`. Because each spectrum descends, the greedy choice is the best
        one for the summed relative squared error of the layers, up to the last purchase.
    """
    ranks = dict.fromkeys(spectra, 1)
    spent = sum(costs.values())
    while True:
        offers = [
            (spectra[name][ranks[name]] / costs[name], name)
            for name in spectra
            if ranks[name] < len(spectra[name]) and spent + costs[name] <= budget
        ]
        if not offers:
            return ranks
        _, best = max(offers)
        ranks[best] += 1
        spent += costs[best]
