"""The `toolkit` command line: the click group and the mapping of errors to exit codes.

Every verb lives in `toolkit.commands`. The group sets up logging and imports TensorFlow
quietly before any command runs, so no command prints TensorFlow's start-up lines.
"""

from __future__ import annotations

import logging
import sys

import click

from toolkit.commands import COMMANDS

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
    from toolkit.quiet import import_tensorflow_quietly

    setup_logging(verbose)
    import_tensorflow_quietly()


for command in COMMANDS:
    cli.add_command(command)


def main() -> None:
    cli(prog_name="toolkit")
