"""Crash safety: a `toolkit run` killed with SIGKILL resumes to the result of an uninterrupted run."""

import signal

from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.training.checkpoints import list_checkpoints


def test_a_killed_run_resumes_to_the_uninterrupted_result(runs, longer_recipe, reference_run, tmp_path):
    path, overrides = longer_recipe
    out = tmp_path / "run"
    process = runs.start_toolkit(
        "run", path, *runs.as_sets(overrides + ["strategy.type=default"]), "--out", out, "--quiet"
    )
    runs.wait_for(out / "checkpoints" / "step-6.npz", [process])
    process.send_signal(signal.SIGKILL)
    code, _, _ = runs.finish(process)
    assert code == -signal.SIGKILL
    assert not (out / "summary.json").exists()  # it really stopped before the end
    killed_at = list_checkpoints(out / "checkpoints")[-1][0]
    assert killed_at in (6, 9), killed_at  # inside epoch 2 or 3: the partial-epoch sums matter

    code, stdout, stderr = runs.finish(runs.start_toolkit("run", "--resume", out, "--quiet"))
    assert code == 0, stderr
    assert "val_elbo=" in stdout
    assert f"from step {killed_at}" in (out / "run.log").read_text()
    runs.assert_same_metrics(out, reference_run, rtol=1e-5)
    runs.assert_same_summary(out, reference_run, rtol=1e-5)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [9, 12]  # the newest keep_checkpoints
    runs.assert_same_weights(
        out / "checkpoints" / "step-12.npz",
        reference_run / "checkpoints" / "step-12.npz",
        rtol=1e-5,
        atol=1e-7,
    )

    again = CliRunner().invoke(cli, ["run", "--resume", str(out)])
    assert again.exit_code == 2 and "the run completed its 12 steps; nothing to resume" in again.stderr
