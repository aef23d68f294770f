"""`toolkit run`, `toolkit validate` and `toolkit recipes`: the verbs of recipes."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from toolkit.errors import RunError


@click.command("run")
@click.argument("recipe", type=click.Path(path_type=Path), required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a recipe value.")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run directory (default runs/<name>-<timestamp>)."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the run in an existing, non-empty run directory (other files stay).",
)
@click.option(
    "--resume", type=click.Path(path_type=Path), help="Continue a run directory from its last checkpoint."
)
@click.option("--dry-run", is_flag=True, help="Validate, build and summarize the model without training.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; only warnings and errors shown.")
def run(recipe, overrides, out, overwrite, resume, dry_run, quiet) -> None:
    """Train, evaluate, plot and export the model a RECIPE declares."""
    if (recipe is None) == (resume is None):
        raise RunError("give a RECIPE to start a run, or --resume RUN_DIR to continue one (not both)")
    if quiet:  # the terminal shows warnings and errors only; run.log still gets every line
        for handler in logging.getLogger("toolkit").handlers:
            handler.setLevel(max(handler.level, logging.WARNING))
    from toolkit.recipes.loader import load_recipe
    from toolkit.recipes.registry import task_for
    from toolkit.runs.directory import RunDirectory
    from toolkit.runs.train import run as run_recipe

    summary = run_recipe(recipe, overrides, out, overwrite, resume, quiet, dry_run)
    if summary:
        path = RunDirectory(resume).recipe if resume is not None else recipe
        keys = task_for(load_recipe(path, overrides)).shown_metrics
        shown = {k: summary[k] for k in keys if k in summary}
        click.echo(" ".join(f"{k}={v:.4g}" for k, v in shown.items()))


@click.command("validate")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a recipe value.")
def validate(recipe, overrides) -> None:
    """Check a RECIPE against the schema without training."""
    from toolkit.recipes.loader import load_recipe

    loaded = load_recipe(recipe, overrides)
    click.echo(f"{recipe}: valid recipe '{loaded['name']}' (version {loaded['version']})")


@click.command("recipes")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of recipes (default: the shipped recipes/).",
)
def recipes(directory) -> None:
    """List the shipped recipes, one line each."""
    import yaml

    directory = directory or shipped_recipes()
    for path in sorted(Path(directory).glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError:
            data = {}
        click.echo(f"{path.name:24s} {data.get('description', '') if isinstance(data, dict) else ''}")


def shipped_recipes() -> Path:
    """recipes/ of the current directory, else of the source checkout toolkit runs from."""
    local = Path("recipes")
    return local if local.is_dir() else Path(__file__).resolve().parents[2] / "recipes"
