"""Shared by the run-level tests: a 12-step tiny recipe, `toolkit run` subprocesses, a reference run.

The helpers reach the tests through the `runs` fixture (tests are imported with importlib,
so a helper module would not be importable by name).
"""

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from toolkit.runs.train import run

#: On top of the tiny f_shadow overrides: 3 epochs of 4 steps, a checkpoint every 3 steps
#: (steps 3, 6 and 9 fall inside an epoch), the newest 2 kept, no figures or SavedModel.
LONGER = [
    "train.epochs=3",
    "train.steps_per_epoch=4",
    "train.checkpoint_every=3",
    "train.keep_checkpoints=2",
    "output.figures=false",
    "output.export=false",
]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


@pytest.fixture(scope="session")
def longer_recipe(tiny_f_shadow):
    """(recipe path, overrides) of the 12-step tiny run."""
    path, overrides = tiny_f_shadow
    return path, overrides + LONGER


def as_sets(overrides) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def start_toolkit(*args, env=None) -> subprocess.Popen:
    """`python -m toolkit ARGS` as a background process (stdout and stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "toolkit", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, **(env or {})},
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def wait_for(path: Path, processes, timeout: float = 240) -> None:
    """Poll until `path` exists; fail early if a process ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        for process in processes:
            if process.poll() is not None:
                pytest.fail(
                    f"process ended (code {process.returncode}) before {path.name}: "
                    f"{process.stderr.read()[-2000:]}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear in {timeout} s")
        time.sleep(0.01)


def metric_rows(run_dir: Path) -> list[dict]:
    if not (run_dir / "metrics.csv").exists():  # no epoch finished
        return []
    with open(run_dir / "metrics.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def assert_same_metrics(run_dir: Path, reference: Path, rtol: float) -> None:
    """Same epochs (none repeated or missing) with the same values, within `rtol`."""
    rows, expected = metric_rows(run_dir), metric_rows(reference)
    assert [(r["epoch"], r["step"]) for r in rows] == [(r["epoch"], r["step"]) for r in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row.keys() == want.keys()
        for key in row:
            np.testing.assert_allclose(
                float(row[key]), float(want[key]), rtol=rtol, err_msg=f"epoch {row['epoch']} {key}"
            )


def assert_same_summary(run_dir: Path, reference: Path, rtol: float) -> None:
    summary, expected = (json.loads((d / "summary.json").read_text()) for d in (run_dir, reference))
    assert summary["status"] == expected["status"] == "completed" and summary["steps"] == expected["steps"]
    for key in [k for k in expected if k.startswith(("train_", "val_")) and k != "train_seconds"]:
        np.testing.assert_allclose(summary[key], expected[key], rtol=rtol, err_msg=key)


def assert_same_weights(path, reference, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Two .npz files hold the same variables (checkpoint extras may differ)."""
    with np.load(path) as got, np.load(reference) as want:
        names = [n for n in want.files if not n.startswith("extra/")]
        assert names and set(names) <= set(got.files)
        for name in names:
            np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.fixture(scope="session")
def runs():
    """The helper functions above, as attributes."""
    helpers = (
        as_sets,
        start_toolkit,
        finish,
        wait_for,
        metric_rows,
        assert_same_metrics,
        assert_same_summary,
        assert_same_weights,
    )
    return SimpleNamespace(**{f.__name__: f for f in helpers})


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, longer_recipe):
    """The 12-step run uninterrupted, in this process, on one device (the default strategy)."""
    path, overrides = longer_recipe
    out = tmp_path_factory.mktemp("reference") / "run"
    run(path, overrides + ["strategy.type=default"], out=out, quiet=True)
    return out
