"""The command line: a real run end to end, exports read by plain TensorFlow, and bad input."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from toolkit.cli import cli

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def toolkit(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_f_shadow):
    """A tiny f_shadow run made by `toolkit run` in a subprocess."""
    recipe, overrides = tiny_f_shadow
    out = tmp_path_factory.mktemp("runs") / "tiny"
    sets = [a for o in overrides for a in ("--set", o)]
    result = toolkit("run", recipe, *sets, "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    return out, result


def test_run_writes_a_complete_run_directory(tiny_run):
    out, result = tiny_run
    for name in (
        "recipe.yaml",
        "metrics.csv",
        "summary.json",
        "run.log",
        "saved_model/saved_model.pb",
        "figures/reconstructions.png",
        "figures/orientations_lambert.png",
        "figures/loss_curves.png",
    ):
        assert (out / name).exists(), name
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2.npz", "step-4.npz"]
    assert any((out / "tensorboard").iterdir())
    summary = json.loads((out / "summary.json").read_text())
    for key in ("val_elbo", "val_mse", "val_ssim", "val_ssim_prior", "train_seconds", "samples_per_second"):
        assert np.isfinite(summary[key]), key
    assert summary["status"] == "completed" and summary["steps"] == 4
    assert "val_ssim=" in result.stdout
    assert "oneDNN" not in result.stderr and "cuda" not in result.stderr.lower()
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["data"]["image_size"] == 16 and recipe["train"]["epochs"] == 2
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,train_loss") and len(rows) == 3


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    inputs = np.load(sys.argv[2])
    encoded = loaded.signatures["encode"](images=tf.constant(inputs["images"]),
                                          condition=tf.constant(inputs["condition"]))
    decoded = loaded.signatures["decode"](latent=encoded["loc"], condition=tf.constant(inputs["condition"]))
    assert not any(m.startswith("toolkit") for m in sys.modules), "the SavedModel needed toolkit code"
    np.savez(sys.argv[3], loc=encoded["loc"].numpy(), scale=encoded["scale"].numpy(),
             images=decoded["images"].numpy())
    """
)


def test_exported_endpoints_match_the_model_in_a_tensorflow_only_process(tiny_run, tmp_path):
    from toolkit.runs.directory import load_run

    out, _ = tiny_run
    loaded = load_run(out, with_data=True)
    data, model = loaded.data, loaded.model
    inputs = {k: data.validation[k][:3] for k in ("images", "condition")}
    np.savez(tmp_path / "inputs.npz", **inputs)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, out / "saved_model", tmp_path / "inputs.npz", tmp_path / "outputs.npz"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr
    outputs = np.load(tmp_path / "outputs.npz")
    loc, scale = (t.numpy() for t in model.encode(inputs))
    np.testing.assert_allclose(outputs["loc"], loc, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs["scale"], scale, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        outputs["images"], model.decode(loc, inputs["condition"]).numpy(), rtol=1e-5, atol=1e-6
    )


def test_export_and_plot_commands(tiny_run, tmp_path):
    out, _ = tiny_run
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(out), "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again" / "saved_model.pb").exists()
    refused = runner.invoke(cli, ["export", str(out), "--out", str(tmp_path / "again")])
    assert refused.exit_code == 2 and "already exists; pass --overwrite" in refused.output
    (out / "figures" / "loss_curves.png").unlink()
    assert runner.invoke(cli, ["plot", str(out)]).exit_code == 0
    assert (out / "figures" / "loss_curves.png").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "missing.yaml"],
        ["infer", "no-run", "no.star", "--out", "p.star"],
        ["export", "no-run"],
        ["simulate", "missing.yaml", "--out", "sim"],
    ],
    ids=lambda args: args[0],
)
def test_every_command_keeps_tensorflow_start_up_lines_off_the_terminal(tmp_path, args):
    """Even with TensorFlow's own logging fully on, a command prints its one error line only."""
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"},
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line] == [result.stderr.strip()]
    assert result.stderr.startswith("error: ") and "cuInit" not in result.stderr


def test_recipes_and_validate_and_dry_run(recipes_dir):
    runner = CliRunner()
    listing = runner.invoke(cli, ["recipes", "--dir", str(recipes_dir)])
    assert listing.exit_code == 0 and "f_shadow.yaml" in listing.output
    valid = runner.invoke(cli, ["validate", str(recipes_dir / "f_shadow.yaml")])
    assert valid.exit_code == 0 and "valid recipe 'f_shadow'" in valid.output
    dry = runner.invoke(cli, ["run", str(recipes_dir / "f_shadow.yaml"), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "parameters:" in dry.output and "strategy: _DefaultDistributionStrategy" in dry.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "train.epohcs=3"], "train.epohcs: unknown key (did you mean 'epochs'?)"),
        (["--set", "model.latent_dim=-2"], "model.latent_dim: expected a number >= 1, got -2"),
        (["--set", "model.encoder.type=Transformer"], "model.encoder.type: unknown type 'Transformer'"),
        (["--set", "data.image_size=ten"], "data.image_size: expected an integer, got 'ten'"),
    ],
)
def test_bad_recipe_exits_2_and_writes_nothing(tmp_path, recipes_dir, args, expected):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(recipes_dir / "f_shadow.yaml"), "--out", str(out), *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and expected in lines[0], result.output
    assert not out.exists()


def test_missing_recipe_file_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "nope.yaml: recipe file not found" in result.output


def test_existing_run_directory_is_left_untouched(tmp_path, recipes_dir):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    result = CliRunner().invoke(cli, ["run", str(recipes_dir / "f_shadow.yaml"), "--out", str(out)])
    assert result.exit_code == 2 and "exists and is not empty; pass --overwrite" in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "precious"


def test_overwrite_replaces_the_earlier_run_and_keeps_other_files(tmp_path, tiny_f_shadow):
    recipe, overrides = tiny_f_shadow
    out = tmp_path / "run"
    sets = [a for o in overrides for a in ("--set", o)]
    first = CliRunner().invoke(cli, ["run", str(recipe), *sets, "--set", "train.epochs=3", "--out", str(out)])
    assert first.exit_code == 0, first.output
    (out / "notes.txt").write_text("precious")
    second = CliRunner().invoke(
        cli, ["run", str(recipe), *sets, "--set", "train.epochs=1", "--out", str(out), "--overwrite"]
    )
    assert second.exit_code == 0, second.output
    # The first run's later checkpoints would otherwise be what export and --resume load.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2.npz"]
    assert len((out / "metrics.csv").read_text().splitlines()) == 2  # header and the one epoch
    assert json.loads((out / "summary.json").read_text())["step"] == 2
    assert (out / "notes.txt").read_text() == "precious"


def test_run_needs_a_recipe_or_resume():
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 2 and "give a RECIPE" in result.output
