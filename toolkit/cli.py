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


class ToolkitGroup(click.Group):
    """Turns the known failures into one-line errors and exit codes; bugs keep their traceback."""

    def invoke(self, ctx):
        from toolkit.errors import NonFiniteLossError, RecipeError, RunError

        try:
            return super().invoke(ctx)
        except RecipeError as error:
            for line in str(error).splitlines():
                click.echo(f"error: {line}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except RunError as error:
            fail(str(error))
        except NonFiniteLossError as error:
            fail(str(error), code=1)  # the message says which checkpoint is the last good one


@click.group(cls=ToolkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
def cli(verbose: bool) -> None:
    """Learn the orientation of a sample from its 2D projections (shadows)."""
    setup_logging(verbose)


@cli.command()
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
        fail("give a RECIPE to start a run, or --resume RUN_DIR to continue one (not both)")
    if quiet:  # the terminal shows warnings and errors only; run.log still gets every line
        for handler in logging.getLogger("toolkit").handlers:
            handler.setLevel(max(handler.level, logging.WARNING))
    from toolkit.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from toolkit.run import run as run_recipe

    summary = run_recipe(recipe, overrides, out, overwrite, resume, quiet, dry_run)
    if summary:
        keys = (
            "val_elbo",
            "val_mse",
            "val_ssim",
            "val_ssim_prior",
            "val_median_error_deg",
            "val_within_15_deg",
            "train_seconds",
        )
        shown = {k: summary[k] for k in keys if k in summary}
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


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="Where to write (default RUN_DIR/saved_model).")
@click.option("--overwrite", is_flag=True, help="Replace an existing SavedModel there.")
def export(run_dir, out, overwrite) -> None:
    """Write the SavedModel of a trained RUN_DIR, with `encode` and `decode` endpoints."""
    import shutil

    from toolkit.errors import RunError

    out = out or run_dir / "saved_model"
    if out.exists() and not overwrite:
        raise RunError(f"{out}: already exists; pass --overwrite or choose another --out")
    from toolkit.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from toolkit.run import export as export_model
    from toolkit.run import load_run

    _, data, model, _, step = load_run(run_dir)
    if out.exists():
        shutil.rmtree(out)
    export_model(model, data, out)
    signatures = "encode, decode" if hasattr(model, "decode") else "orientation"
    click.echo(f"{out}: SavedModel of step {step} with signatures {signatures}")


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def plot(run_dir) -> None:
    """Draw the figures of a trained RUN_DIR again, from its checkpoint and metrics."""
    from toolkit.quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    from toolkit.run import load_run, write_figures

    _, data, model, _, _ = load_run(run_dir)
    write_figures(Path(run_dir), model, data)
    click.echo(f"{Path(run_dir) / 'figures'}: figures written")


from toolkit.commands.compress import compress  # noqa: E402
from toolkit.commands.particles import infer, simulate  # noqa: E402

for command in (compress, simulate, infer):
    cli.add_command(command)


def shipped_recipes() -> Path:
    """recipes/ of the current directory, else of the source checkout toolkit runs from."""
    local = Path("recipes")
    return local if local.is_dir() else Path(__file__).resolve().parent.parent / "recipes"


def main() -> None:
    cli(prog_name="toolkit")
