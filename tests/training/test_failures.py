"""Failed runs: a diverging loss, an unwritable run directory, a full disk. Each says why in one line
and leaves what it had written intact."""

import errno
import json
import os
import re

import numpy as np
import pytest
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.runs.directory import load_run

#: A checkpoint every step; one step per epoch unless a test says otherwise.
EVERY_STEP = [
    "train.steps_per_epoch=1",
    "train.checkpoint_every=1",
    "train.keep_checkpoints=10",
    "output.figures=false",
    "output.export=false",
    "strategy.type=default",
]


def invoke(runs, recipe, overrides, out):
    result = CliRunner().invoke(
        cli, ["run", str(recipe), *runs.as_sets(overrides), "--out", str(out), "--quiet"]
    )
    return result.exit_code, [line for line in result.stderr.splitlines() if line]


def assert_intact(runs, out, good_step):
    """Checkpoints up to `good_step` only, no temporary files, and the newest one loads."""
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(
        f"step-{s}.npz" for s in range(1, good_step + 1)
    )
    loaded = load_run(out)
    model, step = loaded.model, loaded.step
    assert step == good_step and all(np.isfinite(v.numpy()).all() for v in model.variables)
    assert all(np.isfinite(float(v)) for row in runs.metric_rows(out) for v in row.values())


@pytest.mark.parametrize(
    "settings, term",
    [
        # Adam moves every weight by about 1e4 at step 1: the next training loss overflows.
        (["train.steps_per_epoch=3", "train.learning_rate=1e4"], r"the (reconstruction|KL) terms? (is|are)"),
        # One step per epoch: the held-out loss after a huge SGD step is caught before that step is kept.
        (
            ["train.steps_per_epoch=1", "train.optimizer=sgd", "train.learning_rate=30"],
            r"val_\w+ \(validation\) is",
        ),
    ],
    ids=["training term", "validation"],
)
def test_a_diverging_loss_fails_with_exit_1_and_keeps_the_last_good_checkpoint(
    runs, tiny_f_shadow, tmp_path, settings, term
):
    recipe, overrides = tiny_f_shadow
    out = tmp_path / "run"
    code, lines = invoke(runs, recipe, overrides + EVERY_STEP + ["train.epochs=4"] + settings, out)
    assert code == 1
    (line,) = lines
    match = re.fullmatch(
        rf"error: step (\d+): {term} not finite; the last good checkpoint \(step (\d+)\) is kept", line
    )
    assert match, line
    bad, good = int(match.group(1)), int(match.groups()[-1])
    assert bad == good + 1 and good >= 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"] == line.removeprefix("error: ")
    steps_per_epoch = int(settings[0].split("=")[1])
    assert len(runs.metric_rows(out)) == good // steps_per_epoch  # the epochs done before, as written
    assert_intact(runs, out, good)  # nothing at or after the bad step; the last one loads
    assert f"failed: step {bad}" in (out / "run.log").read_text()


def test_a_run_directory_that_cannot_be_made_exits_2(runs, tiny_f_shadow, tmp_path):
    recipe, overrides = tiny_f_shadow
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code, lines = invoke(runs, recipe, overrides + EVERY_STEP, blocker / "run")
    assert code == 2
    assert lines == [f"error: {blocker / 'run'}: cannot write the run directory (Not a directory)"]
    assert blocker.read_text() == "not a directory"


def test_a_full_disk_fails_with_exit_2_and_keeps_what_was_written(runs, tiny_f_shadow, tmp_path, monkeypatch):
    recipe, overrides = tiny_f_shadow
    out = tmp_path / "run"
    calls = []

    def fsync_then_full(fd):  # checkpoint writes end with fsync: the second one finds the disk full
        if "step-" in os.readlink(f"/proc/self/fd/{fd}"):
            calls.append(fd)
            if len(calls) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync_then_full)
    code, lines = invoke(runs, recipe, overrides + EVERY_STEP + ["train.epochs=3"], out)
    assert code == 2
    assert lines == [f"error: {out}: cannot write the run directory (No space left on device)"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "No space left on device" in summary["reason"]
    assert [r["step"] for r in runs.metric_rows(out)] == ["1", "2"]  # row 2 came before its checkpoint
    assert_intact(runs, out, 1)
