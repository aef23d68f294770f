"""Ab initio: the F's map and every particle's pose from unlabeled particles, scored as the field scores them.

Usage: python benchmarks/ab_initio.py [--count 5000] [--ablation-epochs 4] [--no-ablations]
       [--cases [clean] [clean-voxels] [snr0.1]] [--json out.json]

(a) `toolkit simulate` writes --count 64x64 particles of the F with truth.mrc, clean
    (recipes/f_ab_initio.yaml) and through a CTF with 2-pixel shifts at SNR 0.1
    (recipes/f_ab_initio_snr0.1.yaml); `toolkit run` of that recipe learns from them as a STAR
    file (`data.type: particles`, phase-flipped when there is a CTF, so no true pose reaches
    it), timed as a whole; the case clean-voxels learns a voxel map from the clean particles
    instead of blobs (recipes/f_ab_initio_voxels.yaml);
(b) every particle's searched pose (the run's poses.star) and the encoder's pose (`toolkit infer`)
    are aligned globally to the true ones (orthogonal Procrustes, both hands): median and mean
    geodesic error, the fractions within 2, 5 and 10 degrees; the searched shifts and the shift
    head's are scored after fitting the learned map's offset (one 3D vector, by least squares);
(c) the learned map (map.mrc) and the particles reconstructed at their searched poses and shifts
    (`toolkit reconstruct` of poses.star, with the CTF) are each aligned to truth.mrc (rotation,
    shift, hand), and their FSC against the truth is compared with a reconstruction from the
    true poses (0.5 and 0.143);
(d) ablations on the clean particles with --ablation-epochs each: without the soft first stage,
    with one grid candidate per image, without local refinement, without frequency marching, the
    encoder-only comparison (the encoder's poses render the shadows, no search), and with
    gradient steps on the poses after the local refinement (`model.pose_steps`).
The blob density is made of Gaussian blobs, as the simulated F is: it has the form of the truth,
which a real sample's density does not; the voxel map has no such form. Every figure is measured in this
run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import mrcfile
import numpy as np

from toolkit.data.simulate import simulate
from toolkit.geometry import error_statistics, relion_to_matrix
from toolkit.geometry.alignment import align_poses
from toolkit.io.particles import read_particles
from toolkit.recipes.loader import load_recipe
from toolkit.reconstruction.align import align_map
from toolkit.reconstruction.fsc import fsc_curve, resolution
from toolkit.runs.infer import infer
from toolkit.runs.reconstruct import reconstruct_star

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CASES = {  # name: (recipe, the case whose particles it learns from)
    "clean": (RECIPES / "f_ab_initio.yaml", "clean"),
    "clean-voxels": (RECIPES / "f_ab_initio_voxels.yaml", "clean"),
    "snr0.1": (RECIPES / "f_ab_initio_snr0.1.yaml", "snr0.1"),
}
STAGES_WITHOUT_MARCHING = "[{downsample: 2, blur: 1.0, temperature: 0.0, until: 1.0}]"
STAGES_WITHOUT_SOFT_START = (
    "[{downsample: 4, blur: 4.0, until: 0.2}, {downsample: 4, blur: 3.0, until: 0.4}, "
    "{downsample: 2, blur: 2.0, until: 0.6}, {downsample: 2, blur: 1.5, until: 0.8}, "
    "{downsample: 2, blur: 1.0, until: 1.0}]"
)
ABLATIONS = {  # name: overrides on top of the recipe
    "without the soft first stage": [f"model.stages={STAGES_WITHOUT_SOFT_START}"],
    "one grid candidate per image": ["model.candidates=1"],
    "without local refinement": ["model.local_rounds=0"],
    "without frequency marching": [f"model.stages={STAGES_WITHOUT_MARCHING}"],
    "the encoder alone (no search; cryoAI's symmetric loss)": ["model.poses=encoder"],
    "with 4 gradient steps on each pose after the stencils (cryoDRGN-AI's refinement)": [
        "model.pose_steps=4"
    ],
}


def particle_overrides(star: Path, noisy: bool) -> list[str]:
    return [
        "data.type=particles",
        f"data.star={star}",
        # Clean particles have no background noise to normalize by, nor a CTF.
        f"data.normalize={str(noisy).lower()}",
        f"data.ctf={'phase_flip' if noisy else 'none'}",
        "data.validation_size=512",
    ]


def train(recipe: Path, overrides: list[str], out: Path) -> float:
    """`toolkit run` of the recipe with these overrides; its wall time in seconds."""
    command = [
        sys.executable,
        "-m",
        "toolkit",
        "run",
        str(recipe),
        "--out",
        str(out),
        "--quiet",
        "--overwrite",
    ]
    for override in overrides:
        command += ["--set", override]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def pose_scores(predicted: np.ndarray, true: np.ndarray) -> dict:
    aligned = align_poses(predicted, true)
    row = {"hand": aligned["hand"]}
    for hand in ("same", "mirrored"):
        errors = aligned[hand]["errors_deg"]
        stats = error_statistics(errors)
        row[hand] = {
            "median_deg": round(stats["median_error_deg"], 2),
            "mean_deg": round(stats["mean_error_deg"], 2),
            **{f"within_{t}_deg": round(float(np.mean(errors <= t)), 3) for t in (2, 5, 10)},
        }
    return row


def fsc(volume: np.ndarray, truth: np.ndarray, apix: float) -> dict:
    curve = fsc_curve(volume, truth)
    found = {t: resolution(curve, t, apix) for t in (0.5, 0.143)}
    return {f"fsc_{t}_angstrom": (None if r is None else round(r.angstrom, 2)) for t, r in found.items()}


def shift_errors(star: Path, poses: Path) -> np.ndarray:
    """Pixels between each searched shift and the true one, once the learned map's offset is fitted.

    A map moved by d shifts the particle at pose R by (R d)_xy: the searched shifts t' relate to
    the true ones t by t' - t = -(R' d)_xy, solved for d over all particles by least squares.
    """
    true, found = read_particles(star), read_particles(poses)
    t_true = -true.origins / true.pixel_size[:, None]
    t_found = -found.origins / found.pixel_size[:, None]
    rows = relion_to_matrix(found.angles.astype(np.float32)).numpy()[:, :2, :]  # [N, 2, 3]
    offset, *_ = np.linalg.lstsq(rows.reshape(-1, 3), (t_true - t_found).reshape(-1), rcond=None)
    return np.linalg.norm(t_found - t_true + rows @ offset, axis=1)


def read_map(path: Path) -> np.ndarray:
    return mrcfile.read(path).astype(np.float32)


def score_run(run_dir: Path, star: Path, truth: np.ndarray, apix: float) -> dict:
    true = relion_to_matrix(read_particles(star).angles.astype(np.float32)).numpy()
    searched = relion_to_matrix(read_particles(run_dir / "poses.star").angles.astype(np.float32)).numpy()
    infer(run_dir, star, run_dir / "encoder_poses.star", overwrite=True)
    encoder = relion_to_matrix(
        read_particles(run_dir / "encoder_poses.star").angles.astype(np.float32)
    ).numpy()
    # The particles reconstructed at their searched poses (in the learned frame), as a cryo-EM
    # program makes its map once it has poses.
    reconstruct_star(run_dir / "poses.star", run_dir / "map_from_searched_poses.mrc", overwrite=True)
    row = {"searched_poses": pose_scores(searched, true), "encoder_poses": pose_scores(encoder, true)}
    if read_particles(star).origins is not None:
        for name, poses in (("searched_shifts", "poses.star"), ("encoder_shifts", "encoder_poses.star")):
            if read_particles(run_dir / poses).origins is not None:
                errors = shift_errors(star, run_dir / poses)
                row[name] = {
                    "median_px": round(float(np.median(errors)), 3),
                    "within_1_px": round(float(np.mean(errors <= 1)), 3),
                }
    for name in ("map", "map_from_searched_poses"):
        aligned = align_map(read_map(run_dir / f"{name}.mrc"), truth)
        row[name] = {"correlation": round(aligned.correlation, 4), "mirrored": aligned.mirrored}
        row[name].update(fsc(aligned.volume, truth, apix))
    return row


def particles_of(case: str, folder: Path, count: int) -> Path:
    """The STAR file of a case's simulated particles, simulated once per benchmark run."""
    star = folder / case / "data" / "particles.star"
    if not star.is_file():
        simulate(load_recipe(CASES[case][0]), count, star.parent)
    return star


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--ablation-epochs", type=int, default=4)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--cases", nargs="*", choices=tuple(CASES), default=list(CASES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ab_initio_"))
    result = {"particles": args.count}
    for case in args.cases:
        recipe, particles = CASES[case]
        star = particles_of(particles, folder, args.count)
        truth, apix = read_map(star.parent / "truth.mrc"), float(read_particles(star).pixel_size[0])
        overrides = particle_overrides(star, noisy=particles != "clean")
        seconds = train(recipe, overrides, folder / case / "run")
        result[case] = {"wall_seconds": round(seconds), **score_run(folder / case / "run", star, truth, apix)}
        true_poses = star.parent / "map_from_true_poses.mrc"
        if not true_poses.is_file():
            reconstruct_star(star, true_poses)
        result[case]["map_from_true_poses"] = fsc(read_map(true_poses), truth, apix)
        print(case, json.dumps(result[case], indent=2), flush=True)
    if not args.no_ablations:
        star = particles_of("clean", folder, args.count)
        truth, apix = read_map(star.parent / "truth.mrc"), float(read_particles(star).pixel_size[0])
        epochs = [f"train.epochs={args.ablation_epochs}"]
        recipe = CASES["clean"][0]
        for name, overrides in {"all of them": [], **ABLATIONS}.items():
            out = folder / name.replace(" ", "_")
            seconds = train(recipe, particle_overrides(star, False) + epochs + overrides, out)
            result[f"ablation: {name}"] = {
                "wall_seconds": round(seconds),
                **score_run(out, star, truth, apix),
            }
            print(name, json.dumps(result[f"ablation: {name}"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
