"""The `toolkit` command line: thin commands that parse, call a library function and print."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

EXIT_BAD_INPUT = 2


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("toolkit")
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def fail(message: str, code: int = EXIT_BAD_INPUT):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
def cli(verbose: bool) -> None:
    """Learn the orientation of a sample from its 2D projections (shadows)."""
    setup_logging(verbose)


@cli.command()
@click.argument("recipe", type=click.Path(path_type=Path), required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a recipe value.")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default runs/<name>-<timestamp>).")
@click.option("--overwrite", is_flag=True, help="Allow writing into an existing, non-empty run directory.")
@click.option("--resume", type=click.Path(path_type=Path), help="Continue a run directory from its last checkpoint.")
@click.option("--dry-run", is_flag=True, help="Validate, build and summarize the model without training.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def run(recipe, overrides, out, overwrite, resume, dry_run, quiet) -> None:
    """Train, evaluate, plot and export the model a RECIPE declares."""
    if (recipe is None) == (resume is None):
        fail("give a RECIPE to start a run, or --resume RUN_DIR to continue one (not both)")
    from toolkit.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from toolkit.run import run as run_recipe

    summary = run_recipe(recipe, overrides, out, overwrite, resume, quiet, dry_run)
    if summary:
        shown = {k: summary[k] for k in ("val_elbo", "val_mse", "val_ssim", "val_ssim_prior", "train_seconds")
                 if k in summary}
        click.echo(" ".join(f"{k}={v:.4g}" for k, v in shown.items()))


@cli.command()
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a recipe value.")
def validate(recipe, overrides) -> None:
    """Check a RECIPE against the schema without training."""
    from toolkit.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from toolkit.recipes.loader import load_recipe

    loaded = load_recipe(recipe, overrides)
    click.echo(f"{recipe}: valid recipe '{loaded['name']}' (version {loaded['version']})")


@cli.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=None,
              help="Folder of recipes (default: the shipped recipes/).")
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
    return Path(__file__).resolve().parent.parent / "recipes"


def main() -> None:
    from toolkit.errors import NonFiniteLossError, RecipeError, RunError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        sys.exit(130)
    except RecipeError as error:
        for line in str(error).splitlines():
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except RunError as error:
        fail(str(error))
    except NonFiniteLossError as error:
        fail(f"{error}; the last good checkpoint is kept", code=1)
