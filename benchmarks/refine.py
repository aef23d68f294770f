"""Poses good enough to reconstruct from: projector speed, refinement accuracy, map resolution.

Usage: python benchmarks/refine.py [--count 2000] [--compare 24] [--case NAME] [--no-estimators]
    [--json out.json]

(a) projections per second at 64^3 and 128^3: the Fourier slice (XLA), real-space trilinear
    rays and the exact blob renderer, on the F;
(b) for the F at 64x64 with sharp blobs (blob_sigma 0.025, about a pixel), clean
    (f_orientation with sharp blobs) and with a CTF at SNR 0.1 and shifts of 2 px
    (recipes/f_orientation_snr0.1.yaml): particles from `toolkit simulate`'s code path, poses
    from an estimator trained on the case's recipe (`toolkit run`) and after a global `refine`
    against truth.mrc, scored by geodesic error; refinement speed in particles per second;
(c) on the first --compare particles, the hierarchical search against an exhaustive search of
    the grid at its last level (the same shifts of the first level's square, the same polish),
    timed one after the other: the speed ratio and both errors;
(d) maps reconstructed from the true, the estimator's and the refined poses, scored by their
    FSC against truth.mrc (resolution at 0.5 and 0.143, Angstrom).
Every figure is measured in this run.
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
import tensorflow as tf
from scipy.spatial.transform import Rotation

from toolkit.data import projector
from toolkit.data.objects import letter_f
from toolkit.data.render import render_shadows, render_volume
from toolkit.data.simulate import simulate
from toolkit.geometry import error_statistics, orientation_errors, relion_to_matrix
from toolkit.io.particles import read_particles
from toolkit.recipes.loader import load_recipe
from toolkit.reconstruction.backproject import reconstruct
from toolkit.reconstruction.fsc import fsc_curve, resolution
from toolkit.reconstruction.refine import MapReference, Schedule, refine
from toolkit.runs.infer import load_orientation_signature, predict
from toolkit.runs.reconstruct import microscope_of
from toolkit.runs.refine import refine_star

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
CASES = {  # name: (recipe, overrides)
    # f_orientation's former schedule, as for the cryo-EM cases (their recipes keep it).
    "clean": (
        RECIPES / "f_orientation.yaml",
        ["data.sample.blob_sigma=0.025", "train.epochs=25", "train.decay=constant"],
    ),
    "ctf_snr0.1_shift2": (RECIPES / "f_orientation_snr0.1.yaml", []),
}
THRESHOLDS = (1, 2, 5)


def pose_errors(truth: np.ndarray, poses: np.ndarray) -> dict:
    found = error_statistics(orientation_errors(truth, poses), thresholds=THRESHOLDS)
    return {key: round(value, 3) for key, value in found.items()}


def rate(function, count: int, repeats: int = 3) -> float:
    """Items per second of `function()` producing `count` items, after one warm-up call."""
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return count * repeats / (time.perf_counter() - start)


def projector_throughput(size: int, batch: int = 32) -> dict:
    sample, extent = letter_f(), 0.75
    volume = render_volume(sample, size, extent)
    poses = tf.constant(Rotation.random(batch, rng=np.random.default_rng(0)).as_matrix().astype(np.float32))
    spectrum = projector.volume_spectrum(volume)
    band = tf.constant(
        np.stack(np.meshgrid(*(2 * [(np.arange(size) - size // 2) / size]), indexing="xy"), -1).reshape(
            -1, 2
        ),
        tf.float32,
    )
    fourier = tf.function(projector.slice_at, jit_compile=True)
    real_space = tf.function(projector.project_real_space)
    exact = tf.function(lambda p: render_shadows(sample, p, size, extent))
    return {
        "fourier_slice": rate(lambda: fourier(spectrum, poses, band).numpy(), batch),
        "real_space_rays": rate(lambda: real_space(volume, poses[:4]).numpy(), 4, repeats=1),
        "exact_blobs": rate(lambda: exact(poses).numpy(), batch),
    }


def fsc_against_truth(volume: np.ndarray, truth: np.ndarray, apix: float) -> dict:
    curve = fsc_curve(volume, truth)
    found = {t: resolution(curve, t, apix) for t in (0.5, 0.143)}
    return {f"fsc_{t}_angstrom": (None if r is None else round(r.angstrom, 2)) for t, r in found.items()}


def train_estimator(recipe: Path, overrides: list[str], out: Path) -> tuple[Path, float]:
    """An orientation run of the case's recipe, by `toolkit run`, and its wall time in seconds."""
    command = [sys.executable, "-m", "toolkit", "run", str(recipe), "--out", str(out), "--quiet"]
    for override in overrides:
        command += ["--set", override]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return out, time.perf_counter() - start


def hierarchy_against_exhaustive(truth, images, ctf, poses, level: int) -> dict:
    """The shipped schedule against the exhaustive search at its last level, on the same particles."""
    row = {"particles": len(images), "level": level}
    reference = MapReference(truth)
    for label, schedule in (
        ("hierarchy", Schedule(last_level=level)),
        ("exhaustive", Schedule(last_level=level, exhaustive=True)),
    ):
        start = time.perf_counter()
        found = refine(reference, images, ctf, schedule=schedule)
        seconds = time.perf_counter() - start
        row[label] = {"seconds": round(seconds, 1), **pose_errors(poses, found.rotations)}
    row["speedup"] = round(row["exhaustive"]["seconds"] / row["hierarchy"]["seconds"], 1)
    return row


def case(name: str, recipe: Path, overrides: list[str], args, folder: Path):
    count, compare = args.count, args.compare
    out = folder / name
    simulate(load_recipe(recipe, overrides), count, out)
    star = out / "particles.star"
    particles = read_particles(star)
    truth_poses = relion_to_matrix(particles.angles.astype(np.float32)).numpy()
    images = mrcfile.read(out / "particles.mrcs").astype(np.float32)
    truth = mrcfile.read(out / "truth.mrc").astype(np.float32)
    apix = float(particles.pixel_size[0])
    shifts = None if particles.origins is None else particles.origins / apix
    row = {"particles": count}
    poses = {"true": (truth_poses, shifts)}
    if not args.no_estimators:
        run, seconds = train_estimator(recipe, overrides, folder / f"{name}_estimator")
        _, function, spec = load_orientation_signature(run)
        estimated = predict(function, spec, images, 256)
        row["estimator"] = {"train_seconds": round(seconds), **pose_errors(truth_poses, estimated)}
        poses["estimator"] = (estimated, shifts)
    start = time.perf_counter()
    refine_star(star, out / "truth.mrc", out / "refined.star", schedule=Schedule(last_level=args.level))
    seconds = time.perf_counter() - start
    refined = read_particles(out / "refined.star")
    refined_poses = relion_to_matrix(refined.angles.astype(np.float32)).numpy()
    row["refined"] = pose_errors(truth_poses, refined_poses)
    row["refine_particles_per_second"] = round(count / seconds, 2)
    poses["refined"] = (refined_poses, refined.origins / apix)
    microscope = microscope_of(star, particles, apix)
    first = np.arange(min(compare, count))
    ctf = None if microscope is None else microscope.ctf(first, images.shape[-1]).numpy()
    row["search"] = hierarchy_against_exhaustive(truth, images[first], ctf, truth_poses[first], args.level)
    for label, (rotations, centring) in poses.items():
        volume = reconstruct(images, rotations, centring, microscope, regularization=1.0)
        row[f"map_from_{label}_poses"] = fsc_against_truth(volume, truth, apix)
    return row


def table(result: dict) -> str:
    """The figures the issue asks for, one markdown table per case."""
    lines = []
    for name in (name for name in CASES if name in result):
        row = result[name]
        lines += [
            f"\n{name}, {row['particles']} particles",
            "| poses | median | mean | <=1 | <=2 | <=5 | FSC 0.5 | FSC 0.143 |",
        ]
        lines.append("|---|---|---|---|---|---|---|---|")
        for label in ("true", "estimator", "refined"):
            errors = row.get(label, {})
            fsc = row[f"map_from_{label}_poses"] if f"map_from_{label}_poses" in row else {}
            cells = [errors.get(f"{k}_error_deg", "") for k in ("median", "mean")]
            cells += [errors.get(f"within_{t}_deg", "") for t in THRESHOLDS]
            cells += [fsc.get("fsc_0.5_angstrom", ""), fsc.get("fsc_0.143_angstrom", "")]
            lines.append(f"| {label} | " + " | ".join(str(c) for c in cells) + " |")
        search = row["search"]
        timed = {
            k: (search[k]["seconds"], search[k]["median_error_deg"]) for k in ("hierarchy", "exhaustive")
        }
        lines.append(
            f"refine {row['refine_particles_per_second']} particles/s; on {search['particles']} particles at "
            f"level {search['level']}, seconds and median: hierarchy {timed['hierarchy']}, "
            f"exhaustive {timed['exhaustive']}; {search['speedup']}x faster"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--compare", type=int, default=24, help="particles for hierarchy vs exhaustive")
    parser.add_argument("--level", type=int, default=Schedule().last_level, help="the search's last level")
    parser.add_argument("--case", choices=sorted(CASES), action="append", help="run only these cases")
    parser.add_argument("--no-estimators", action="store_true", help="skip training the estimators")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {"projections_per_second": {size: projector_throughput(size) for size in (64, 128)}}
    print(json.dumps(result, indent=1), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.case or CASES:
            recipe, overrides = CASES[name]
            result[name] = case(name, recipe, overrides, args, Path(folder))
            print(name, json.dumps(result[name], indent=1), flush=True)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
