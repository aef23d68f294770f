"""What a run shows while it trains: a progress bar with ETA on a terminal, run.log, TensorBoard."""

import io
import logging
import re
import time
from collections import defaultdict

import tensorflow as tf

from toolkit.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def show_an_epoch(progress):
    progress.start_epoch(1, 2, 3)
    for done in (1, 2):
        time.sleep(0.06)  # past the bar's update interval
        progress.update(done, loss=1.5, samples_per_second=10.0)
    progress.end_epoch({"epoch": 1, "step": 3, "train_loss": 1.5})


def test_a_terminal_gets_a_progress_bar_with_eta_on_stderr_only(capsys):
    terminal = Terminal()
    show_an_epoch(Progress(stream=terminal))
    shown = terminal.getvalue()
    assert "epoch 1/2" in shown and "2/3" in shown and "loss: 1.5" in shown
    assert re.search(r"\x1b\[1m\d+s\x1b\[0m", shown), shown  # the ETA, e.g. "0s" in bold
    assert capsys.readouterr().out == ""  # stdout stays for the command's result


def test_quiet_or_not_a_terminal_shows_no_bar(caplog):
    terminal, pipe = Terminal(), io.StringIO()
    with caplog.at_level(logging.DEBUG, logger="toolkit"):
        show_an_epoch(Progress(quiet=True, stream=terminal))
        show_an_epoch(Progress(stream=pipe))
    assert terminal.getvalue() == "" and pipe.getvalue() == ""
    levels = [r.levelno for r in caplog.records if r.getMessage().startswith("epoch 1/2 step 3")]
    assert levels == [logging.DEBUG, logging.INFO]  # quiet: run.log only; a pipe: one line per epoch


def test_run_log_and_tensorboard_of_a_quiet_run(reference_run):
    log = (reference_run / "run.log").read_text()
    assert [int(m) for m in re.findall(r"epoch (\d)/3 step \d+:", log)] == [1, 2, 3]
    seen = defaultdict(list)
    for path in (reference_run / "tensorboard").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen[value.tag].append((event.step, value))
    for tag in ("train_loss", "train_kl", "val_elbo", "val_ssim"):
        assert [step for step, _ in seen[tag]] == [4, 8, 12], tag
    images = seen["reconstructions"]
    assert [step for step, _ in images] == [4, 8, 12]
    width, height = (int(x) for x in images[0][1].tensor.string_val[:2])
    assert (width, height) == (32, 16)  # truth and reconstruction side by side
    assert len(images[0][1].tensor.string_val) == 2 + 4  # four examples


def summary_steps(run_dir) -> dict:
    """Every TensorBoard scalar tag of a run and the steps it was written at, in the order written.

    A name is `events.out.tfevents.<seconds>.<host>.<pid>.<counter>.v2`: two writers opened within
    one second differ by the counter, which sorts as text ("102" before "98"), so it is compared
    as a number.
    """

    def opened(path):
        parts = path.name.split(".")
        return int(parts[3]), int(parts[-2])

    seen = defaultdict(list)
    for path in sorted((run_dir / "tensorboard").glob("events.*"), key=opened):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen[value.tag].append(event.step)
    return seen


def test_a_resumed_log_drops_what_the_crash_left_past_its_checkpoint(tmp_path):
    from toolkit.training.metrics import MetricsLog, read_metrics

    first = MetricsLog(tmp_path / "metrics.csv", tmp_path / "tensorboard")
    for step in (4, 8):  # epochs 1 and 2 logged, then a crash after the checkpoint of step 6
        first.write({"epoch": step // 4, "step": step, "train_loss": float(step)})
    first.close()
    with open(next((tmp_path / "tensorboard").glob("events.*")), "ab") as events:
        events.write(b"\x10\x00\x00")  # and a record cut short
    resumed = MetricsLog(tmp_path / "metrics.csv", tmp_path / "tensorboard", start_step=6)
    for step in (8, 12):
        resumed.write({"epoch": step // 4, "step": step, "train_loss": float(step) + 0.5})
    resumed.close()
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.csv")] == ["4", "8", "12"]
    assert summary_steps(tmp_path)["train_loss"] == [4, 8, 12]
