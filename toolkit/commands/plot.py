"""`toolkit plot RUN_DIR`: the figures of a trained run, drawn again."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("plot")
@click.argument("run_dir", type=click.Path(path_type=Path))
def plot(run_dir) -> None:
    """Draw the figures of a trained RUN_DIR again, from its checkpoint and metrics."""
    from toolkit.runs.directory import load_run
    from toolkit.runs.figures import write_figures

    loaded = load_run(run_dir, with_data=True)
    write_figures(loaded.directory, loaded.task, loaded.model, loaded.data)
    click.echo(f"{loaded.directory.figures}: figures written")
