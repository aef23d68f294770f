"""Per-epoch metrics: metrics.csv (deterministic values only) and TensorBoard scalars."""

from __future__ import annotations

import csv
from pathlib import Path

import tensorflow as tf

from toolkit.io.atomic import replace_atomically


class MetricsLog:
    """Append one row per epoch to `path` (CSV) and the same scalars to the `tensorboard` folder.

    A run resumed at `start_step` first drops the rows and TensorBoard events past that step,
    written before the crash, so the epochs it repeats appear once.
    """

    def __init__(
        self, path: Path | None, tensorboard: Path | None, enabled: bool = True, start_step: int = 0
    ):
        self.path = path
        self.tensorboard = tensorboard
        self.enabled = enabled and path is not None
        self.writer = None
        if self.enabled:
            self._truncate_after(start_step)
            self.writer = tf.summary.create_file_writer(str(tensorboard))

    def _truncate_after(self, step: int) -> None:
        if self.path.exists():
            rows = read_metrics(self.path)
            kept = [r for r in rows if int(r["step"]) <= step]
            if len(kept) != len(rows):
                write_rows(self.path, kept)
        for events in sorted(self.tensorboard.glob("events.*")):
            drop_events_after(events, step)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        rows = read_metrics(self.path) if self.path.exists() else []
        rows.append({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in row.items()})
        write_rows(self.path, rows)  # the whole file, atomically: a crash never leaves half a row
        with self.writer.as_default(step=int(row["step"])):
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    tf.summary.scalar(key, value)
        self.writer.flush()  # visible in TensorBoard now, not at the next periodic flush

    def image(self, name: str, images, step: int) -> None:
        if self.enabled:
            with self.writer.as_default(step=step):
                tf.summary.image(name, images, max_outputs=8)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()


def drop_events_after(path: Path, step: int) -> None:
    """Rewrite a TensorBoard event file without its summaries past `step` (atomically)."""
    events, complete = [], True
    try:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            events.append(event)
    except tf.errors.DataLossError:
        complete = False  # a record cut short by the crash: keep what came before it
    kept = [e for e in events if e.step <= step or not e.HasField("summary")]
    if complete and len(kept) == len(events):
        return

    def write(temporary: Path) -> None:
        with tf.io.TFRecordWriter(str(temporary)) as writer:  # event files are TFRecord files
            for event in kept:
                writer.write(event.SerializeToString())

    replace_atomically(path, write)


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict]) -> None:
    """Replace `path` with `rows` atomically."""

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            if rows:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)

    replace_atomically(path, write)
