"""`toolkit simulate` and `toolkit infer`: particle stacks in and out, in cryo-EM's file formats."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("simulate")
@click.argument("recipe", type=click.Path(path_type=Path))
@click.option("--count", type=int, default=1000, show_default=True, help="Particles to draw.")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help="Override a recipe value.")
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="Folder for the stack and STAR file."
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace particles.mrcs, particles.star, particles.png and truth.mrc there.",
)
def simulate(recipe, count, overrides, out, overwrite) -> None:
    """Draw particles from RECIPE's shadow data: an MRCS stack, a RELION STAR file of true poses and shifts,
    and truth.mrc, the true map (same box and pixel size) to score reconstructions against.

    The files mean what they mean to RELION and cryoDRGN: pixel N/2 is the origin, the CTF has RELION's
    sign (no contrast inversion needed), rlnOriginXAngst/YAngst centre each particle. Symmetry is C1.
    """
    from toolkit.data.simulate import simulate as simulate_particles
    from toolkit.progress import particle_bar
    from toolkit.recipes.loader import load_recipe

    with particle_bar("simulating") as advance:
        summary = simulate_particles(load_recipe(recipe, overrides), count, out, overwrite, advance)
    click.echo(
        f"{summary['stack']}: {summary['particles']} particles at {summary['pixel_size']} A/pixel; "
        f"poses in {summary['star']}; the true map in {summary['truth']}; a preview in particles.png"
    )


@click.command("infer")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("particles", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="STAR file to write.")
@click.option("--batch-size", type=int, default=256, show_default=True, help="Images per model call.")
@click.option("--overwrite", is_flag=True, help="Replace an existing STAR file.")
@click.option(
    "--invert-contrast",
    is_flag=True,
    help="Negate the images first (dark particles; toolkit simulate's are white).",
)
@click.option(
    "--shard", metavar="I/N", help="Take every N-th particle from the I-th on (N processes share the work)."
)
def infer(model, particles, out, batch_size, overwrite, invert_contrast, shard) -> None:
    """Orientations of PARTICLES (a STAR file or an MRC/MRCS stack) by MODEL (a run or a SavedModel).

    Writes RELION angles (_rlnAngleRot, _rlnAngleTilt, _rlnAnglePsi); when the input STAR
    holds angles, prints the geodesic error against them.
    """
    from toolkit.progress import particle_bar
    from toolkit.runs.infer import infer as infer_poses

    with particle_bar("inferring") as advance:
        summary = infer_poses(model, particles, out, batch_size, overwrite, invert_contrast, shard, advance)
    line = f"{summary['star']}: poses of {summary['particles']} particles"
    if summary.get("aligned"):
        line += "; in the learned map's frame, aligned globally to the input's angles"
    if "median_error_deg" in summary:
        line += (
            f"; against the input's angles: median error {summary['median_error_deg']:.1f} degrees, "
            f"{summary['within_10_deg']:.0%} within 10"
        )
    click.echo(line)
