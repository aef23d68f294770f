"""The MNIST recipes: valid, a tiny run of each writes its metrics and figures, bad files fail cleanly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.recipes.loader import load_recipe
from toolkit.runs.train import run

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

#: Overrides that shrink an MNIST recipe to a run of seconds (the data stay the 5,000 digits).
TINY = [
    "train.epochs=1",
    "train.steps_per_epoch=3",
    "train.global_batch_size=16",
    "model.encoder.filters=[4, 8]",
    "model.decoder.filters=[8, 4]",
    "output.export=false",
]
FIGURES = {
    "mnist_vae": ["latent_clusters", "reconstructions", "prior_samples", "loss_curves"],
    "mnist_cvae": ["latent_clusters", "reconstructions", "prior_samples", "latent_sweep", "class_samples"],
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_recipe_is_valid_mnist(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe["data"]["type"] == "mnist" and recipe["data"]["source"] == "builtin"
    assert recipe["data"]["conditional"] == (name == "mnist_cvae")
    assert recipe["model"]["likelihood"]["type"] == "bernoulli"
    assert recipe["model"]["latent_dim"] <= 4


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_tiny_run_writes_the_mnist_metrics_and_figures(name, tmp_path):
    out = tmp_path / "run"
    summary = run(RECIPES / f"{name}.yaml", TINY, out=out, quiet=True)
    written = json.loads((out / "summary.json").read_text())
    assert written["status"] == "completed"
    assert written["val_neg_elbo"] == pytest.approx(-written["val_elbo"]) and written["val_neg_elbo"] > 0
    assert 0.0 <= written["knn5_accuracy"] <= 1.0
    assert -1.0 <= written["silhouette"] <= 1.0
    assert summary["knn5_accuracy"] == written["knn5_accuracy"]
    for figure in FIGURES[name]:
        assert (out / "figures" / f"{figure}.png").stat().st_size > 0, figure


def test_knn_accuracy_is_fitted_on_the_training_digits_as_scikit_learn_fits_it(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier

    from toolkit.analysis.latent import latent_means
    from toolkit.data.mnist import load_mnist
    from toolkit.runs.directory import load_run

    summary = run(RECIPES / "mnist_vae.yaml", TINY, out=tmp_path / "run", quiet=True)
    model = load_run(tmp_path / "run").model
    splits = load_mnist("builtin", None, 0.1, 0)  # the recipe's split
    train = latent_means(model, {"images": splits.train_images})
    held_out = latent_means(model, {"images": splits.val_images})
    truth = KNeighborsClassifier(5).fit(train, splits.train_labels).score(held_out, splits.val_labels)
    assert summary["knn5_accuracy"] == pytest.approx(truth)


def write_not_npz(tmp_path: Path) -> Path:
    path = tmp_path / "digits.npz"
    path.write_text("not a zip archive\n")
    return path


@pytest.mark.parametrize(
    "make_path, expected",
    [
        (lambda tmp_path: tmp_path / "missing.npz", "file not found"),
        (write_not_npz, "is not a zip/npz archive"),
    ],
    ids=["missing", "not-npz"],
)
def test_bad_data_path_exits_2_with_one_line_naming_the_file(tmp_path, make_path, expected):
    path, out = make_path(tmp_path), tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "toolkit",
            "run",
            str(RECIPES / "mnist_vae.yaml"),
            "--out",
            str(out),
            "--set",
            "data.source=keras",
            "--set",
            f"data.path={path}",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and str(path) in lines[0] and expected in lines[0], result.stderr
    assert not out.exists()
