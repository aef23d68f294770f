"""Console progress for training: a Keras progress bar on a terminal, a line per epoch elsewhere."""

from __future__ import annotations

import contextlib
import logging
import sys

import keras

log = logging.getLogger("toolkit")


class Progress:
    """Shows step, loss and throughput with an ETA; quiet when asked or when not a terminal."""

    def __init__(self, quiet: bool = False, stream=None):
        self.stream = stream or sys.stderr
        self.bar_enabled = not quiet and self.stream.isatty()
        self.quiet = quiet
        self.bar = None

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        self.epoch, self.epochs = epoch, epochs
        if self.bar_enabled:
            self.stream.write(f"epoch {epoch}/{epochs}\n")
            with contextlib.redirect_stdout(self.stream):  # Progbar checks sys.stdout.isatty()
                self.bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "samples_per_second"])

    def update(self, done: int, **values) -> None:
        if self.bar is not None:
            with contextlib.redirect_stdout(self.stream):  # the bar belongs on stderr, not in stdout
                self.bar.update(done, values=list(values.items()))

    def end_epoch(self, row: dict) -> None:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("epoch", "step"))
        message = f"epoch {self.epoch}/{self.epochs} step {row['step']}: {shown}"
        if self.quiet or self.bar_enabled:
            log.debug(message)
        else:
            log.info(message)


@contextlib.contextmanager
def particle_bar(label: str):
    """A click progress bar on stderr, created on the first call of the `advance(done, total)` it yields."""
    import click

    bars = []

    def advance(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=total, label=label, file=click.get_text_stream("stderr")))
            bars[0].__enter__()
        bars[0].update(done)

    try:
        yield advance
    finally:
        if bars:
            bars[0].__exit__(None, None, None)
