"""Dense layer whose kernel is held as a rank-R CP (CANDECOMP/PARAFAC) decomposition."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from toolkit.layers.cp_fit import InputStatistics, cp_fit, fit_errors, rebuild_kernel


def auto_factors(n: int, modes: int = 2) -> tuple[int, ...]:
    """Split `n` into at most `modes` integer factors, ascending, with the smallest sum.

    With the product fixed, the smallest sum is the most balanced split, and the sum is
    what a CP layer pays per rank. Factors equal to 1 are dropped (they would only waste
    parameters), so a prime gives a single mode.

    >>> auto_factors(1024), auto_factors(1024, modes=3), auto_factors(13)
    ((32, 32), (8, 8, 16), (13,))
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}.")
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 1:
        raise ValueError(f"`modes` must be a positive integer, got {modes!r}.")
    best = min(_factorizations(n, modes, 1), key=lambda f: (sum(f), max(f)))
    return tuple(f for f in best if f > 1) or (1,)


def count_cp_params(
    rank: int,
    input_shape_factors: Sequence[int],
    output_shape_factors: Sequence[int],
    use_bias: bool = True,
) -> int:
    """Parameters of a `CPDDense`: `rank * (sum of all mode sizes)` plus the bias."""
    bias = math.prod(output_shape_factors) if use_bias else 0
    return rank * (sum(input_shape_factors) + sum(output_shape_factors)) + bias


@keras.saving.register_keras_serializable(package="toolkit")
class CPDDense(keras.layers.Layer):
    """Densely connected layer with a CP-decomposed (canonical polyadic) kernel.

    The `(in, out)` kernel is reshaped (row-major) into a tensor of shape
    `(i1, ..., id, o1, ..., oe)`, with `in = i1 * ... * id` and `out = o1 * ... * oe`,
    and stored as `rank` sums of outer products: one factor matrix of shape
    `(mode_size, rank)` per mode. That costs `rank * (i1 + ... + oe)` parameters
    instead of `in * out`. With `factored=True` the input is contracted with the
    factors one mode at a time, so a forward pass costs about `rank * (in + out)`
    multiply-adds per example instead of `in * out`. Inputs may have leading batch
    dimensions; only the last axis is transformed.

    Use `CPDDense.from_dense` to compress a trained `keras.layers.Dense` (`cp_fit`: alternating
    least squares with TensorLy, to the kernel or to the layer's outputs on given inputs).

    Args:
        units: Positive integer, dimensionality of the output space.
        rank: Positive integer, number of rank-one terms in the CP decomposition.
        input_shape_factors: Tuple of positive integers whose product is the number
            of input features, or `None` to pick two balanced factors at build
            time (see `auto_factors`). Default value: `None`.
        output_shape_factors: Tuple of positive integers whose product is `units`,
            or `None` to pick two balanced factors. Default value: `None`.
        activation: Activation function, name or `None` (linear).
            Default value: `None`.
        use_bias: Boolean, whether to add a bias vector. Default value: `True`.
        factored: Boolean. `True` runs the mode-by-mode contraction; `False`
            reconstructs the full kernel and does one matmul (for comparison).
            Default value: `True`.
        kernel_initializer: Initializer for every factor matrix. Variance-scaling
            initializers (e.g. Glorot, He) are rescaled so that the reconstructed
            kernel has the variance they would give a plain `(in, out)` kernel.
            Default value: `"glorot_uniform"`.
        bias_initializer: Initializer for the bias. Default value: `"zeros"`.
        kernel_regularizer: Regularizer applied to each factor matrix.
            Default value: `None`.
        bias_regularizer: Regularizer applied to the bias. Default value: `None`.
        **kwargs: Base layer keyword arguments (`name`, `dtype`, `trainable`, ...).

    Example:

    >>> import numpy as np
    >>> layer = CPDDense(6, rank=4, input_shape_factors=(2, 4), output_shape_factors=(2, 3))
    >>> tuple(layer(np.ones((5, 8), dtype="float32")).shape)
    (5, 6)
    >>> layer.count_params()  # 4 * (2 + 4 + 2 + 3) + 6 bias
    50
    >>> tuple(layer.kernel.shape)
    (8, 6)

    References:
        - [Lebedev et al., 2015. Speeding-up Convolutional Neural Networks Using
          Fine-tuned CP-Decomposition](https://arxiv.org/abs/1412.6553)
        - [Kolda & Bader, 2009. Tensor Decompositions and Applications](
          https://doi.org/10.1137/07070111X)
    """

    def __init__(
        self,
        units: int,
        rank: int,
        input_shape_factors: Sequence[int] | None = None,
        output_shape_factors: Sequence[int] | None = None,
        activation: Any = None,
        use_bias: bool = True,
        factored: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_positive_int("units", units)
        _check_positive_int("rank", rank)
        input_shape_factors = _check_shape_factors("input_shape_factors", input_shape_factors)
        output_shape_factors = _check_shape_factors("output_shape_factors", output_shape_factors)
        if output_shape_factors is not None and math.prod(output_shape_factors) != units:
            raise ValueError(
                f"CPDDense: `output_shape_factors` {output_shape_factors} multiply to "
                f"{math.prod(output_shape_factors)}, but `units` is {units}."
            )

        self.units = int(units)
        self.rank = int(rank)
        self.input_shape_factors = input_shape_factors
        self.output_shape_factors = output_shape_factors
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.factored = bool(factored)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

        # Resolved mode sizes: the output ones are known now, the input ones at build.
        self.input_modes: tuple[int, ...] | None = None
        self.output_modes: tuple[int, ...] = output_shape_factors or auto_factors(units)
        self.input_spec = keras.InputSpec(min_ndim=2)

    def build(self, input_shape: Sequence[int | None]) -> None:
        in_features = input_shape[-1]
        if in_features is None:
            raise ValueError(f"CPDDense: the last input axis must be known, got input shape {input_shape}.")
        in_features = int(in_features)
        if self.input_shape_factors is None:
            self.input_modes = auto_factors(in_features)
        elif math.prod(self.input_shape_factors) != in_features:
            raise ValueError(
                f"CPDDense: `input_shape_factors` {self.input_shape_factors} multiply to "
                f"{math.prod(self.input_shape_factors)}, but the layer input has "
                f"{in_features} features."
            )
        else:
            self.input_modes = self.input_shape_factors

        sizes = [*self.input_modes, *self.output_modes]
        names = [f"input_factor_{m}" for m in range(len(self.input_modes))]
        names += [f"output_factor_{m}" for m in range(len(self.output_modes))]
        factors = [
            self.add_weight(
                name=name,
                shape=(size, self.rank),
                initializer=self._factor_initializer(index, in_features),
                regularizer=self.kernel_regularizer,
            )
            for index, (name, size) in enumerate(zip(names, sizes))
        ]
        self.input_factors = factors[: len(self.input_modes)]
        self.output_factors = factors[len(self.input_modes) :]
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
            )
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: in_features})

    @property
    def factors(self) -> list:
        """Factor matrices in tensor-mode order: input modes, then output modes."""
        return [*self.input_factors, *self.output_factors]

    @property
    def kernel(self):
        """The full `(in, out)` kernel reconstructed from the factors."""
        return ops.matmul(
            _khatri_rao_rows(self.input_factors),
            ops.transpose(_khatri_rao_rows(self.output_factors)),
        )

    def call(self, inputs):
        batch_shape = ops.shape(inputs)[:-1]
        if self.factored:
            outputs = self._factored_matmul(inputs)
        else:
            outputs = ops.matmul(ops.reshape(inputs, (-1, math.prod(self.input_modes))), self.kernel)
        outputs = ops.reshape(outputs, (*batch_shape, self.units))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self.activation(outputs)

    def _factored_matmul(self, inputs):
        rank = self.rank
        # Contract the last (contiguous) input mode first: it is a plain matmul and
        # leaves the remaining modes as leading axes, so no transposes are needed.
        last = self.input_factors[-1]
        t = ops.matmul(ops.reshape(inputs, (-1, self.input_modes[-1])), last)
        for size, factor in zip(self.input_modes[-2::-1], self.input_factors[-2::-1]):
            t = ops.sum(ops.reshape(t, (-1, size, rank)) * factor, axis=1)
        # t is (batch, rank); expand output modes one by one, the last by a matmul.
        for factor in self.output_factors[:-1]:
            t = ops.reshape(ops.expand_dims(t, 1) * factor, (-1, rank))
        return ops.matmul(t, ops.transpose(self.output_factors[-1]))

    def _factor_initializer(self, index: int, in_features: int):
        init = _reseeded(self.kernel_initializer, index)
        if not isinstance(init, keras.initializers.VarianceScaling):
            return init
        # Each factor drawn as-is would give the product of d+e small variances; scale
        # them equally so Var(kernel) = R * prod(Var(factor)) matches a plain kernel.
        sizes = [*self.input_modes, *self.output_modes]
        kernel_var = _variance_scaling_var(init, in_features, self.units)
        factor_vars = [_variance_scaling_var(init, size, self.rank) for size in sizes]
        multiplier = (kernel_var / (self.rank * math.prod(factor_vars))) ** (0.5 / len(sizes))

        def scaled(shape, dtype=None):
            return ops.multiply(init(shape, dtype=dtype), ops.cast(multiplier, dtype or "float32"))

        return scaled

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "rank": self.rank,
                "input_shape_factors": _as_list(self.input_shape_factors),
                "output_shape_factors": _as_list(self.output_shape_factors),
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "factored": self.factored,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            }
        )
        return config

    @classmethod
    def from_dense(
        cls,
        dense: keras.layers.Dense,
        rank: int,
        input_shape_factors: Sequence[int] | None = None,
        output_shape_factors: Sequence[int] | None = None,
        inputs: np.ndarray | InputStatistics | None = None,
        n_iter_max: int = 200,
        tol: float = 1e-8,
        random_state: int | None = 0,
        factored: bool = True,
        init: str = "svd",
    ) -> tuple[CPDDense, dict[str, Any]]:
        """Compress a built `Dense` layer into a `CPDDense` whose factors `cp_fit` fits.

        Without `inputs` the factors fit the kernel; with `inputs` (rows of the layer's input,
        e.g. activations on training data, or their `InputStatistics`) they fit the layer's
        outputs on them, and the bias is shifted so the mean output is kept; that needs
        `input_shape_factors=(in,)`. Activation, `use_bias`, the bias values and the dtype
        policy are copied; the kernel regularizer is not (it would mean something else on the
        factors).

        Returns:
            `(layer, info)`: the built `CPDDense` and `cp_fit`'s info (`"als_errors"`,
            `"relative_error"`, and `"output_error"` with `inputs`), measured on the factors
            as stored in the layer.
        """
        if not dense.built:
            raise ValueError(
                "CPDDense.from_dense: `dense` must be built before compression, "
                f"got unbuilt layer {dense.name!r}."
            )
        kernel = np.asarray(ops.convert_to_numpy(dense.kernel), dtype=np.float64)
        in_features, units = kernel.shape
        if not np.any(kernel):
            raise ValueError(
                f"CPDDense.from_dense: `dense` kernel of {dense.name!r} is all zeros; nothing to fit."
            )
        layer = cls(
            units,
            rank,
            input_shape_factors=input_shape_factors,
            output_shape_factors=output_shape_factors,
            activation=dense.activation,
            use_bias=dense.use_bias,
            factored=factored,
            dtype=dense.dtype_policy,
        )
        layer.build((None, in_features))
        if inputs is not None:
            inputs = InputStatistics.of(inputs, in_features)
        factors, info = cp_fit(
            kernel,
            rank,
            layer.input_modes,
            layer.output_modes,
            inputs=inputs,
            n_iter_max=n_iter_max,
            tol=tol,
            random_state=random_state,
            init=init,
        )
        for variable, value in zip(layer.factors, factors):
            variable.assign(value.astype(variable.dtype))
        stored = [np.asarray(ops.convert_to_numpy(v), dtype=np.float64) for v in layer.factors]
        if dense.use_bias:
            bias = np.asarray(ops.convert_to_numpy(dense.bias), dtype=np.float64)
            if inputs is not None:  # the mean input keeps its output
                approx = rebuild_kernel(stored, len(layer.input_modes))
                bias = bias + inputs.mean @ (kernel - approx)
            layer.bias.assign(bias.astype(layer.bias.dtype))
        info.update(fit_errors(kernel, stored, len(layer.input_modes), inputs))
        return layer, info


def _khatri_rao_rows(factors: Sequence) -> Any:
    """Row-wise Khatri-Rao product: row (i1, ..., ik) in C order is prod_m U_m[i_m]."""
    rank = ops.shape(factors[0])[-1]
    result = factors[0]
    for factor in factors[1:]:
        result = ops.reshape(ops.expand_dims(result, 1) * factor, (-1, rank))
    return result


def _reseeded(init: Any, index: int) -> Any:
    """A copy of `init` that draws different values for factor `index`.

    Keras initializers seeded with an int, or unseeded (they pick one int at
    construction), return the same values for the same shape on every call, so
    equal-sized factors would start identical. Int seeds are offset to stay
    reproducible; a `SeedGenerator` already advances, so it is shared.
    """
    if not isinstance(init, keras.initializers.Initializer):
        return init
    config = init.get_config()
    seed = config.get("seed", "absent")
    if seed is None:
        return init.__class__.from_config(config)
    if isinstance(seed, int):
        return init.__class__.from_config({**config, "seed": seed + index})
    return init


def _variance_scaling_var(init: keras.initializers.VarianceScaling, fan_in: int, fan_out: int) -> float:
    """Variance a VarianceScaling initializer gives a 2D `(fan_in, fan_out)` weight."""
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[init.mode]
    return init.scale / max(1.0, fan)


def _factorizations(n: int, modes: int, smallest: int) -> Iterator[tuple[int, ...]]:
    """All ascending tuples of `modes` factors >= `smallest` whose product is `n`."""
    if modes == 1:
        if n >= smallest:
            yield (n,)
        return
    for factor in range(smallest, math.isqrt(n) + 1):
        if n % factor == 0 and factor**modes <= n:
            yield from ((factor, *rest) for rest in _factorizations(n // factor, modes - 1, factor))


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"CPDDense: `{name}` must be a positive integer, got {value!r}.")


def _check_shape_factors(name: str, value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        value = (value,)
    value = tuple(value)
    if not value or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in value):
        raise ValueError(
            f"CPDDense: `{name}` must be a non-empty sequence of positive integers, got {value!r}."
        )
    return tuple(int(v) for v in value)


def _as_list(value: tuple[int, ...] | None) -> list[int] | None:
    return None if value is None else list(value)


def check_dense_rank(owner: str, value: Any) -> int | None:
    """Validate the `dense_rank` argument of a layer with CPD-capable Dense sublayers.

    Args:
        owner: class name of the layer, for the error message.
        value: `None` (plain `Dense` sublayers) or a positive integer (the CP rank).

    Returns:
        `None` or the rank as a Python int.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: `dense_rank` must be a positive integer or None, got {value!r}.")
    return int(value)


def check_dense_cp(owner: str, value: Any, sublayers: Sequence[str]) -> dict | None:
    """Validate the `dense_cp` argument: per sublayer, the CP rank and modes of its `CPDDense`.

    Args:
        owner: class name of the layer, for the error message.
        value: `None`, or `{sublayer: {"rank": R, "input_modes": [...], "output_modes": [...]}}`
            with sublayers from `sublayers`; modes may be left out or `None` (balanced pairs),
            and a sublayer mapped to `None` stays a plain `Dense`.
        sublayers: the names the layer accepts (its `CPD_SUBLAYERS`).

    Returns:
        `None` or the mapping without its `None` entries, modes as lists.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"{owner}: `dense_cp` must be a mapping of sublayer names or None, got {value!r}.")
    out = {}
    for name, spec in value.items():
        if name not in sublayers:
            raise ValueError(f"{owner}: `dense_cp` names {name!r}; expected some of {', '.join(sublayers)}.")
        if spec is None:
            continue
        if not isinstance(spec, dict) or not set(spec) <= {"rank", "input_modes", "output_modes"}:
            raise ValueError(
                f"{owner}: `dense_cp.{name}` must be a mapping of rank, input_modes and output_modes, "
                f"got {spec!r}."
            )
        rank = spec.get("rank")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"{owner}: `dense_cp.{name}.rank` must be a positive integer, got {rank!r}.")
        modes = {
            key: _as_list(_check_shape_factors(f"dense_cp.{name}.{key}", spec.get(key)))
            for key in ("input_modes", "output_modes")
        }
        out[name] = {"rank": int(rank), **modes}
    return out or None


def dense_or_cpd(name: str, units: int, activation: Any, dense_rank: int | None, dense_cp: dict | None):
    """The sublayer `name`: a `CPDDense` as `dense_cp` (else `dense_rank`) asks, or a plain `Dense`."""
    spec = (dense_cp or {}).get(name)
    if spec is not None:
        return CPDDense(
            units,
            spec["rank"],
            input_shape_factors=spec["input_modes"],
            output_shape_factors=spec["output_modes"],
            activation=activation,
            name=name,
        )
    if dense_rank is not None:
        return CPDDense(units, dense_rank, activation=activation, name=name)
    return keras.layers.Dense(units, activation=activation, name=name)
