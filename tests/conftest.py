"""Test-wide setup: quiet TensorFlow and two logical CPU devices for distribution tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from toolkit.training.devices import ensure_logical_cpus  # noqa: E402

ensure_logical_cpus(2)

import pytest  # noqa: E402

RECIPES = __import__("pathlib").Path(__file__).resolve().parents[1] / "recipes"

#: Overrides that shrink f_shadow to a model and data set trained in seconds.
TINY_F_SHADOW = [
    "data.image_size=16",
    "data.sequence_length=2",
    "data.validation_size=8",
    "model.latent_dim=3",
    "model.encoder.filters=[4]",
    "model.encoder.units=8",
    "model.encoder.condition_units=4",
    "model.sampler.units=4",
    "model.decoder.filters=[4]",
    "model.decoder.units=8",
    "model.decoder.condition_units=4",
    "train.global_batch_size=4",
    "train.epochs=2",
    "train.steps_per_epoch=2",
    "train.checkpoint_every=2",
]

#: Overrides that shrink f_orientation to a model trained in seconds.
TINY_F_ORIENTATION = [
    "data.image_size=16",
    "data.validation_size=8",
    "model.encoder.filters=[4]",
    "model.encoder.units=8",
    "model.head.hidden_units=[8]",
    "train.global_batch_size=4",
    "train.epochs=1",
    "train.steps_per_epoch=2",
]


@pytest.fixture(scope="session")
def recipes_dir():
    """The shipped recipes/ folder."""
    return RECIPES


@pytest.fixture(scope="session")
def tiny_f_shadow():
    """(recipe path, overrides) of a tiny f_shadow run."""
    return RECIPES / "f_shadow.yaml", list(TINY_F_SHADOW)


@pytest.fixture(scope="session")
def tiny_f_orientation():
    """(recipe path, overrides) of a tiny f_orientation run."""
    return RECIPES / "f_orientation.yaml", list(TINY_F_ORIENTATION)


@pytest.fixture(scope="session")
def two_cpus():
    """One MirroredStrategy over two logical CPUs for the whole session.

    Several MirroredStrategy objects in one process reuse collective instance keys and
    abort each other's all-reduces, so every test shares this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


# A CTF written out from CTFFIND4's equations in float64 numpy, independent of toolkit.data.ctf,
# with RELION's overall sign (the negative of CTFFIND4's eq. 1).
def numpy_wavelength(kv):
    volts = kv * 1e3
    return 12.2643247 / np.sqrt(volts * (1 + 0.978466e-6 * volts))


def numpy_ctf(size, pixel, du, dv, angle_deg, kv, cs_mm, amp, shift_deg=0.0, bfac=0.0):
    """CTFFIND4 eqs. 1-3 in float64, negated to RELION's sign; parameters broadcast as [N]."""
    f = np.fft.fftfreq(size, d=pixel)
    kx, ky = f[None, :], f[:, None]  # x along columns, y along rows
    k2 = kx**2 + ky**2
    theta = np.arctan2(ky, kx)
    du, dv, angle, shift, bfac = (
        np.asarray(v, float)[..., None, None] for v in (du, dv, angle_deg, shift_deg, bfac)
    )
    lam = numpy_wavelength(kv)
    defocus = 0.5 * (du + dv + (du - dv) * np.cos(2 * (theta - np.deg2rad(angle))))
    chi = np.pi * lam * defocus * k2 - np.pi / 2 * cs_mm * 1e7 * lam**3 * k2**2 + np.deg2rad(shift)
    w1, w2 = np.sqrt(1 - amp**2), amp
    ctf = (w1 * np.sin(chi) + w2 * np.cos(chi)) * np.exp(-bfac * k2 / 4)
    mirror = -np.arange(size) % size  # index of -k; differs from the formula only on even Nyquist lines
    return 0.5 * (ctf + ctf[..., mirror, :][..., mirror])


@pytest.fixture(scope="session")
def ctf_reference():
    """The independent numpy CTF: `.ctf(size, pixel, du, dv, angle, kv, cs, amp[, shift, b])`."""
    from types import SimpleNamespace

    return SimpleNamespace(ctf=numpy_ctf, wavelength=numpy_wavelength)
