"""`toolkit reconstruct`: a 3D map from particles at their poses, by direct Fourier inversion."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("reconstruct")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), required=True, help="MRC map to write (a shard: PART.npz)."
)
@click.option(
    "--half-maps",
    is_flag=True,
    help="Also reconstruct two random halves (or the STAR file's rlnRandomSubset), write OUT_half1/2.mrc, "
    "their FSC (OUT_halves_fsc.csv, .png) and the split (OUT_particles.star).",
)
@click.option(
    "--regularization",
    type=float,
    default=1.0,
    show_default=True,
    help="Wiener constant added to the sum of CTF^2: the noise-to-signal power of one particle. "
    "0 for noise-free data; larger damps frequencies few particles reach.",
)
@click.option("--invert-contrast", is_flag=True, help="Negate the images first (for dark-particle data).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Particles inserted at once.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random half split.")
@click.option(
    "--shard",
    metavar="I/N",
    help="Insert every N-th particle from the I-th on and write the Fourier sums to --out PART.npz.",
)
@click.option(
    "--merge", is_flag=True, help="INPUTS are the PART.npz of every shard: add them, write the maps."
)
@click.option("--overwrite", is_flag=True, help="Replace files already there.")
def reconstruct(
    inputs, out, half_maps, regularization, invert_contrast, batch_size, seed, shard, merge, overwrite
) -> None:
    """Reconstruct INPUTS (one RELION STAR file with poses) into a map.

    Applies each particle's shift (rlnOriginXAngst/YAngst) and, when the STAR file has CTF columns,
    corrects the CTF (Wiener-style, see --regularization). Symmetry is C1 (no --sym yet). Many
    processes (any scheduler, any hosts) share the work with --shard 1/N ... N/N and --merge.
    """
    from toolkit.errors import RunError
    from toolkit.progress import particle_bar
    from toolkit.runs.reconstruct import reconstruct_star

    if merge:
        from toolkit.runs.reconstruct import merge_parts

        summary = merge_parts(list(inputs), out, half_maps, regularization, overwrite)
    else:
        if len(inputs) != 1:
            raise RunError(f"give one STAR file, got {len(inputs)}; pass --merge to add the sums of shards")
        with particle_bar("reconstructing") as advance:
            summary = reconstruct_star(
                inputs[0],
                out,
                half_maps,
                regularization,
                invert_contrast,
                batch_size,
                seed,
                overwrite,
                advance,
                shard,
            )
    if "parts" in summary:
        click.echo(
            f"{summary['parts']}: Fourier sums of {summary['particles']} particles; merge with --merge"
        )
        return
    line = f"{summary['map']}: map of {summary['particles']} particles at {summary['pixel_size']:g} A/pixel"
    line += ", CTF-corrected" if summary["ctf"] else ""
    click.echo(line)
    if half_maps:
        for threshold, found in summary["resolution"].items():
            where = (
                f"{found.angstrom:.1f} A ({found.pixels:.2f} px)"
                if found
                else "does not cross (Nyquist or better)"
            )
            click.echo(f"half maps, FSC {threshold}: {where}")
        if "star" in summary:
            click.echo(f"the split is in {summary['star']}")
