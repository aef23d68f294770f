"""Per-epoch metrics: metrics.csv (deterministic values only) and TensorBoard scalars."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import tensorflow as tf


class MetricsLog:
    """Append one row per epoch to `metrics.csv` and the same scalars to TensorBoard."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = run_dir / "metrics.csv"
        self.enabled = enabled
        self.writer = tf.summary.create_file_writer(str(run_dir / "tensorboard")) if enabled else None

    def truncate_after(self, step: int) -> None:
        """Drop rows past `step`, so a resumed run rewrites the epochs it repeats."""
        if not self.enabled or not self.path.exists():
            return
        rows = read_metrics(self.path)
        kept = [r for r in rows if int(r["step"]) <= step]
        if len(kept) != len(rows):
            write_rows(self.path, kept)

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


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict]) -> None:
    """Replace `path` with `rows` atomically (temporary name, then rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with open(temporary, "w", newline="") as handle:
            if rows:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
