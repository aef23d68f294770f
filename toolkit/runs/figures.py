"""The figures of a run: the task's own, then the loss curves of `metrics.csv`."""

from __future__ import annotations

from toolkit.runs.directory import RunDirectory
from toolkit.training.metrics import read_metrics


def write_figures(directory: RunDirectory, task, model, data) -> None:
    """Draw every figure of a trained run into `directory.figures`."""
    from toolkit.figures import plots

    task.figures(model, data, directory.figures)
    if directory.metrics.exists():
        plots.loss_curves(read_metrics(directory.metrics), directory.figures / "loss_curves.png")
