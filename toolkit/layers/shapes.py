"""Shape checks, sequence-axis folding and the stride-2 stacks shared by the image layers."""

from keras import ops


def check_rank(layer, argument: str, shape, ranks: tuple, meaning: str) -> None:
    """Raise a ValueError naming the layer and argument when `len(shape)` is not in `ranks`."""
    if len(shape) not in ranks:
        raise ValueError(
            f"{type(layer).__name__}: `{argument}` must have rank "
            f"{' or '.join(str(r) for r in ranks)} ({meaning}), got shape {tuple(shape)}."
        )


def check_dim(layer, argument: str, shape, axis: int, expected: int, meaning: str) -> None:
    """Raise a ValueError when a known dimension of `shape` differs from `expected`."""
    if shape[axis] is not None and shape[axis] != expected:
        raise ValueError(
            f"{type(layer).__name__}: `{argument}` must have {expected} {meaning} "
            f"(axis {axis}), got shape {tuple(shape)}."
        )


def fold_time(x, item_rank: int):
    """Merge a (batch, time) prefix into one batch axis; returns the tensor and the time length.

    `item_rank` counts the axes of one item without batch (3 for an image, 1 for a vector).
    Returns `(x, None)` when there is no time axis.
    """
    if len(x.shape) == item_rank + 1:
        return x, None
    time = x.shape[1] if x.shape[1] is not None else ops.shape(x)[1]
    return ops.reshape(x, (-1,) + tuple(x.shape[2:])), time


def unfold_time(x, time):
    """Undo `fold_time`: split the batch axis back into (batch, time)."""
    if time is None:
        return x
    return ops.reshape(x, (-1, time) + tuple(x.shape[1:]))


def strided_stack(kind, filters, kernel_size: int, activation, prefix: str, shape: tuple):
    """Stride-2 convolutions of class `kind` (Conv2D or Conv2DTranspose), built in turn.

    Returns the list of built layers (named `{prefix}_{index}`) and the output shape.
    """
    stack = []
    for index, width in enumerate(filters):
        layer = kind(
            width, kernel_size, strides=2, padding="same", activation=activation, name=f"{prefix}_{index}"
        )
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
        stack.append(layer)
    return stack, shape
