"""`toolkit reconstruct`: a 3D map from particles at their poses, by direct Fourier inversion."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("reconstruct")
@click.argument("particles", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="MRC map to write.")
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
@click.option("--overwrite", is_flag=True, help="Replace files already there.")
def reconstruct(
    particles, out, half_maps, regularization, invert_contrast, batch_size, seed, overwrite
) -> None:
    """Reconstruct PARTICLES (a RELION STAR file with poses) into a map.

    Applies each particle's shift (rlnOriginXAngst/YAngst) and, when the STAR file has CTF columns,
    corrects the CTF (Wiener-style, see --regularization). Symmetry is C1 (no --sym yet).
    """
    from toolkit.progress import particle_bar
    from toolkit.runs.reconstruct import reconstruct_star

    with particle_bar("reconstructing") as advance:
        summary = reconstruct_star(
            particles, out, half_maps, regularization, invert_contrast, batch_size, seed, overwrite, advance
        )
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
