"""The same recipe and seed give the same run, byte for byte."""

import numpy as np

from toolkit.runs.train import run


def test_the_same_recipe_and_seed_give_identical_metrics(longer_recipe, reference_run, tmp_path):
    path, overrides = longer_recipe
    out = tmp_path / "again"
    run(path, overrides + ["strategy.type=default"], out=out, quiet=True)
    assert (out / "metrics.csv").read_bytes() == (reference_run / "metrics.csv").read_bytes()
    with (
        np.load(out / "checkpoints" / "step-12.npz") as got,
        np.load(reference_run / "checkpoints" / "step-12.npz") as want,
    ):
        assert got.files == want.files
        for name in want.files:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
