"""`toolkit refine`: poses good enough to reconstruct from, by projection matching to a reference."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("refine")
@click.argument("particles", type=click.Path(path_type=Path))
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    required=True,
    multiple=True,
    help="A map (.mrc, the particles' box and pixel size) or a recipe (.yaml) whose sample to project; "
    "given twice, the half maps of the STAR file's rlnRandomSubset halves, each half refined against its "
    "own.",
)
@click.option(
    "--init", type=click.Path(path_type=Path), help="A run (or SavedModel) whose poses to start from."
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="STAR file to write.")
@click.option(
    "--last-level",
    type=click.IntRange(2, 7),
    default=5,
    show_default=True,
    help="Finest SO(3) grid level searched (level k: about 60/2^k degrees), before the gradient polish.",
)
@click.option(
    "--max-shift", type=float, default=4.0, show_default=True, help="Largest shift searched, pixels."
)
@click.option("--invert-contrast", is_flag=True, help="Negate the images first (for dark-particle data).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Particles searched at once.")
@click.option("--overwrite", is_flag=True, help="Replace an existing STAR file.")
@click.option(
    "--shard", metavar="I/N", help="Take every N-th particle from the I-th on (N processes share the work)."
)
def refine(
    particles, reference, init, out, last_level, max_shift, invert_contrast, batch_size, shard, overwrite
) -> None:
    """Refine the poses and shifts of PARTICLES (a RELION STAR file) against a known reference.

    Searches an equal-volume SO(3) grid coarse to fine (HEALPix directions times in-plane angles)
    and a square of shifts, from --init's poses or globally, then polishes each pose and shift by
    gradient ascent. Writes the poses, origins, rlnMaxValueProbDistribution and
    rlnNrOfSignificantSamples, keeping every other column. Symmetry is C1 (no --sym yet).
    """
    from toolkit.progress import particle_bar
    from toolkit.reconstruction.refine import Schedule
    from toolkit.runs.refine import refine_star

    schedule = Schedule(last_level=last_level, max_shift=max_shift)
    with particle_bar("refining") as advance:
        summary = refine_star(
            particles, reference, out, init, invert_contrast, schedule, batch_size, overwrite, advance, shard
        )
    line = f"{summary['star']}: refined poses of {summary['particles']} particles"
    if "median_error_deg" in summary:
        line += (
            f"; against the input's angles: median error {summary['median_error_deg']:.2f} degrees, "
            f"{summary['within_5_deg']:.0%} within 5"
        )
    click.echo(line)
