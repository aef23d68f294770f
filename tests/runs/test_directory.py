"""The run directory: data.json, and loading a finished run without rebuilding its data."""

import json

import numpy as np
import pytest

from toolkit.errors import RunError
from toolkit.runs.directory import RunDirectory, load_run
from toolkit.runs.export import export_saved_model
from toolkit.runs.train import run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_f_orientation):
    recipe, overrides = tiny_f_orientation
    out = tmp_path_factory.mktemp("runs") / "tiny"
    run(recipe, overrides + ["output.figures=false", "output.export=false"], out, quiet=True)
    return out


def test_data_json_holds_the_shapes_and_the_measured_intensity_scale(tiny_run, tiny_f_orientation):
    from toolkit.data.objects import letter_f
    from toolkit.data.render import render_shadows
    from toolkit.geometry import quaternion_to_matrix
    from toolkit.recipes.loader import load_recipe

    stored = json.loads((tiny_run / "data.json").read_text())
    recipe = load_recipe(tiny_run / "recipe.yaml")
    assert stored["image_size"] == recipe["data"]["image_size"] == 16
    assert stored["sequence_length"] == 1 and stored["keys"] == ["images", "condition", "rotations"]
    # The scale is the brightest pixel over 1,024 Haar views of the sample: recompute it.
    sample = recipe["data"]["sample"]
    views = quaternion_to_matrix(np.random.default_rng(0).standard_normal((1024, 4)).astype("float32"))
    peak = float(
        np.max(
            render_shadows(
                letter_f(sample["size"], sample["thickness"], sample["blob_sigma"]), views, 16, 0.75
            )
        )
    )
    assert stored["measured"]["intensity_scale"] == pytest.approx(peak, rel=0.05)


def test_export_renders_no_training_data(tiny_run, tmp_path, monkeypatch):
    import toolkit.data.shadows

    def refuse(*args, **kwargs):
        raise AssertionError("a shadow was rendered")

    monkeypatch.setattr(toolkit.data.shadows, "project_sample", refuse)
    loaded = load_run(tiny_run)
    assert loaded.data is None and loaded.step == 2
    assert export_saved_model(loaded.task, loaded.model, loaded.shapes, tmp_path / "export") == [
        "orientation"
    ]


def test_loading_with_data_reuses_the_measured_scale(tiny_run):
    stored = json.loads((tiny_run / "data.json").read_text())["measured"]["intensity_scale"]
    loaded = load_run(tiny_run, with_data=True)
    assert loaded.data.source.intensity_scale == stored
    assert loaded.data.shapes == loaded.shapes


def test_a_run_without_data_json_still_loads(tiny_run, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    (old / "data.json").unlink()
    loaded = load_run(old)
    reference = load_run(tiny_run)
    images = np.random.default_rng(0).random((3, 1, 16, 16, 1), dtype="float32")
    np.testing.assert_array_equal(loaded.model(images), reference.model(images))


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(RunError, match="no recipe.yaml"):
        load_run(tmp_path)
    (tmp_path / "recipe.yaml").write_text("version: 1\\n")
    with pytest.raises(RunError, match="checkpoints: no checkpoint to load"):
        load_run(tmp_path)


def test_create_refuses_a_non_empty_directory_and_overwrite_keeps_other_files(tmp_path):
    directory = RunDirectory(tmp_path / "run")
    directory.create()
    directory.write_json(directory.summary, {"status": "completed"})
    (directory.path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not empty; pass --overwrite"):
        directory.create()
    directory.create(overwrite=True)
    assert sorted(p.name for p in directory.path.iterdir()) == ["notes.txt"]
