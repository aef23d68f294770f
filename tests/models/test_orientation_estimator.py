"""OrientationEstimator: chordal loss against the formula, geodesic metrics against scipy.

Config and `.keras` round trips, SavedModel, the MirroredStrategy step, mixed precision, XLA
and a `model.fit` step are checked for the `orientation_estimator` golden by the
conformance suite (tests/layers/test_conformance.py).
"""

import keras
import numpy as np
from scipy.spatial.transform import Rotation

from toolkit.geometry import error_statistics
from toolkit.layers import OrientationHead, RotationConditionedEncoder
from toolkit.models import OrientationEstimator
from toolkit.tasks.orientation_estimator import validation_errors


def estimator():
    keras.utils.set_random_seed(0)
    return OrientationEstimator(RotationConditionedEncoder(filters=(4,), units=8), OrientationHead((8,)))


def batch(count=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "images": rng.random((count, 1, 8, 8, 1)).astype("float32"),
        "rotations": Rotation.random(count, rng=seed).as_matrix().astype("float32")[:, None],
    }


def test_loss_is_the_squared_chordal_distance_which_is_4_1_minus_cos():
    model, data = estimator(), batch()
    terms = model.loss_terms(data)
    predicted = terms["prediction"].numpy()
    assert predicted.shape == (6, 1, 3, 3)
    np.testing.assert_allclose(np.linalg.det(predicted), 1.0, atol=1e-5)
    angles = (
        Rotation.from_matrix(predicted[:, 0]).inv() * Rotation.from_matrix(data["rotations"][:, 0])
    ).magnitude()
    np.testing.assert_allclose(terms["orientation"].numpy(), 4 * (1 - np.cos(angles)), rtol=1e-4, atol=1e-5)


def test_geodesic_metrics_match_scipy():
    data = batch(40, seed=1)
    built = estimator()
    built(data["images"][:1])
    for model in (built, estimator()):  # then a model not built yet: evaluation must build it
        metrics = error_statistics(validation_errors(model, data, batch_size=16), prefix="val_")
        predicted = model(data["images"]).numpy()[:, 0]
        errors = np.degrees(
            (
                Rotation.from_matrix(predicted).inv() * Rotation.from_matrix(data["rotations"][:, 0])
            ).magnitude()
        )
        np.testing.assert_allclose(metrics["val_median_error_deg"], np.median(errors), rtol=1e-5)
        np.testing.assert_allclose(metrics["val_mean_error_deg"], errors.mean(), rtol=1e-5)
        np.testing.assert_allclose(metrics["val_within_15_deg"], np.mean(errors <= 15))


def test_fit_learns_a_fixed_orientation():
    # Saving and reloading (same outputs) is checked for every model golden by the
    # conformance suite: tests/layers/test_conformance.py::test_model_keras_file_round_trip.
    model, data = estimator(), batch(8)
    data["rotations"] = np.repeat(
        Rotation.from_euler("ZYZ", [0.3, 1.0, -0.4]).as_matrix()[None, None], 8, 0
    ).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(data, epochs=30, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]


def test_orientation_recipe_trains_and_exports_poses(tmp_path, tiny_f_orientation):
    import tensorflow as tf

    from toolkit.runs.directory import load_run
    from toolkit.runs.train import run

    summary = run(*tiny_f_orientation, tmp_path / "run", quiet=True)
    assert 0 <= summary["val_median_error_deg"] <= 180 and summary["steps"] == 2
    assert (tmp_path / "run" / "figures" / "orientation_errors.png").exists()
    loaded = load_run(tmp_path / "run", with_data=True)
    data, model = loaded.data, loaded.model
    images = data.validation["images"][:3]
    exported = tf.saved_model.load(str(tmp_path / "run" / "saved_model")).signatures["orientation"]
    outputs = exported(images=tf.constant(images))
    np.testing.assert_allclose(outputs["rotations"].numpy(), model(images).numpy(), atol=1e-5)
    # RELION angles of a pose R are scipy's ZYZ angles of R transposed.
    expected = Rotation.from_matrix(np.swapaxes(model(images).numpy()[:, 0], -1, -2)).as_matrix()
    relion = outputs["relion_rot_tilt_psi"].numpy()[:, 0]
    np.testing.assert_allclose(
        Rotation.from_euler("ZYZ", relion, degrees=True).as_matrix(), expected, atol=1e-4
    )
