"""Samples, the shadow renderer, tf.data pipelines and MNIST."""

from toolkit.data.mnist import (
    MnistFileError,
    MnistSplits,
    load_mnist,
    mnist_dataset,
    read_mnist_npz,
    stratified_split,
    write_mnist_npz,
)
from toolkit.data.objects import BlobSample, gaussian_blobs, letter_f
from toolkit.data.render import pixel_centers, pixel_size, render_shadows
from toolkit.data.shadows import OrientationSampler, ShadowData

__all__ = [
    "BlobSample",
    "MnistFileError",
    "MnistSplits",
    "OrientationSampler",
    "ShadowData",
    "gaussian_blobs",
    "letter_f",
    "load_mnist",
    "mnist_dataset",
    "pixel_centers",
    "pixel_size",
    "read_mnist_npz",
    "render_shadows",
    "stratified_split",
    "write_mnist_npz",
]
