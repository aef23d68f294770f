"""The verbs of the `toolkit` command line, one module per verb or small group of verbs."""

from toolkit.commands.compress import compress
from toolkit.commands.export import export
from toolkit.commands.maps import fsc
from toolkit.commands.particles import infer, simulate
from toolkit.commands.plot import plot
from toolkit.commands.reconstruct import reconstruct
from toolkit.commands.refine import refine
from toolkit.commands.run import recipes, run, validate

#: Every command of the `toolkit` group.
COMMANDS = (run, validate, recipes, export, plot, compress, simulate, infer, refine, reconstruct, fsc)

__all__ = ["COMMANDS"]
