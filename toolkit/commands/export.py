"""`toolkit export RUN_DIR`: the SavedModel of a trained run, without rebuilding its data."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from toolkit.errors import RunError


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write (default RUN_DIR/saved_model).")
@click.option("--overwrite", is_flag=True, help="Replace an existing SavedModel there.")
def export(run_dir, out, overwrite) -> None:
    """Write the SavedModel of a trained RUN_DIR with its task's signatures (e.g. encode, decode)."""
    from toolkit.runs.directory import RunDirectory, load_run
    from toolkit.runs.export import export_saved_model

    out = out or RunDirectory(run_dir).saved_model
    if out.exists() and not overwrite:
        raise RunError(f"{out}: already exists; pass --overwrite or choose another --out")
    loaded = load_run(run_dir)
    if out.exists():
        shutil.rmtree(out)
    signatures = export_saved_model(loaded.task, loaded.model, loaded.shapes, out)
    click.echo(f"{out}: SavedModel of step {loaded.step} with signatures {', '.join(signatures)}")
