"""Ab initio: the F's map and every particle's pose from unlabeled particles, scored as the field scores them.

Usage: python benchmarks/ab_initio.py [--count 5000] [--ablation-epochs 4] [--no-ablations] [--json out.json]

(a) `toolkit simulate` writes --count clean 64x64 particles of the F (recipes/f_ab_initio.yaml's
    data) with truth.mrc; `toolkit run recipes/f_ab_initio.yaml` learns from them as a STAR file
    (`data.type: particles`, so no true pose reaches it), timed as a whole;
(b) every particle's searched pose (the model's search at its last stage) and the encoder's pose
    are aligned globally to the true ones (orthogonal Procrustes, both hands): median and mean
    geodesic error, the fractions within 2, 5 and 10 degrees;
(c) the learned map (map.mrc) and the particles reconstructed at their searched poses are each
    aligned to truth.mrc (rotation, shift, hand), and their FSC against the truth is compared
    with a reconstruction from the true poses (0.5 and 0.143);
(d) ablations on the same particles with --ablation-epochs each: without the soft first stage,
    with one grid candidate per image, without local refinement, without frequency marching.
The learned density is made of Gaussian blobs, as the simulated F is: it has the form of the
truth, which a real sample's density does not. Every figure is measured in this run.
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
from toolkit.reconstruction.backproject import reconstruct
from toolkit.reconstruction.fsc import fsc_curve, resolution
from toolkit.runs.directory import load_run
from toolkit.tasks.ab_initio import search_validation

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "f_ab_initio.yaml"
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
}


def particle_overrides(star: Path) -> list[str]:
    return [
        "data.type=particles",
        f"data.star={star}",
        "data.normalize=false",  # clean particles have no background noise to normalize by
        "data.ctf=none",
        "data.validation_size=512",
    ]


def train(overrides: list[str], out: Path) -> float:
    """`toolkit run` of the recipe with these overrides; its wall time in seconds."""
    command = [
        sys.executable,
        "-m",
        "toolkit",
        "run",
        str(RECIPE),
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


def score_run(run_dir: Path, images: np.ndarray, true: np.ndarray, truth: np.ndarray, apix: float) -> dict:
    run = load_run(run_dir)
    found = search_validation(run.model, {"images": images[:, None, :, :, None]})
    maps = {
        "map": mrcfile.read(run_dir / "map.mrc").astype(np.float32),
        # The particles reconstructed at their searched poses (in the learned frame), as a
        # cryo-EM program makes its map once it has poses.
        "map_from_searched_poses": reconstruct(images, found["poses"], regularization=1.0),
    }
    row = {
        "searched_poses": pose_scores(found["poses"], true),
        "encoder_poses": pose_scores(found["encoder"], true),
    }
    for name, volume in maps.items():
        aligned = align_map(volume, truth)
        row[name] = {"correlation": round(aligned.correlation, 4), "mirrored": aligned.mirrored}
        row[name].update(fsc(aligned.volume, truth, apix))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--ablation-epochs", type=int, default=4)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ab_initio_"))
    simulate(load_recipe(RECIPE), args.count, folder / "data")
    star = folder / "data" / "particles.star"
    particles = read_particles(star)
    true = relion_to_matrix(particles.angles.astype(np.float32)).numpy()
    images = mrcfile.read(folder / "data" / "particles.mrcs").astype(np.float32)
    truth = mrcfile.read(folder / "data" / "truth.mrc").astype(np.float32)
    apix = float(particles.pixel_size[0])
    result = {"particles": args.count, "image_size": images.shape[-1]}
    seconds = train(particle_overrides(star), folder / "run")
    result["clean"] = {"wall_seconds": round(seconds), **score_run(folder / "run", images, true, truth, apix)}
    result["clean"]["map_from_true_poses"] = fsc(reconstruct(images, true, regularization=1.0), truth, apix)
    print(json.dumps(result, indent=2), flush=True)
    if not args.no_ablations:
        epochs = [f"train.epochs={args.ablation_epochs}"]
        for name, overrides in {"all of them": [], **ABLATIONS}.items():
            out = folder / name.replace(" ", "_")
            seconds = train(particle_overrides(star) + epochs + overrides, out)
            result[f"ablation: {name}"] = {
                "wall_seconds": round(seconds),
                **score_run(out, images, true, truth, apix),
            }
            print(name, json.dumps(result[f"ablation: {name}"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
