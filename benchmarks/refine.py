"""Poses good enough to reconstruct from: projector speed, refinement accuracy, map resolution.

Usage: python benchmarks/refine.py [--count 2000] [--init RUN_DIR] [--json out.json]

(a) projections per second at 64^3 and 128^3: the Fourier slice (XLA), real-space trilinear
    rays and the exact blob renderer, on the F;
(b) for the F at 64x64 with sharp blobs (blob_sigma 0.025, about a pixel), clean and with a CTF
    at SNR 0.1 and shifts of 2 px: particles from `toolkit simulate`'s code path, poses from the
    estimator of --init (when given) and after a global `refine` against truth.mrc, scored by
    geodesic error; refinement speed in particles per second;
(c) maps reconstructed from the true, the estimator's and the refined poses, scored by their
    FSC against truth.mrc (resolution at 0.5 and 0.143, Angstrom).
Every figure is measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
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
from toolkit.runs.infer import load_orientation_signature, predict
from toolkit.runs.reconstruct import microscope_of
from toolkit.runs.refine import refine_star

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "f_orientation.yaml"
SHARP = ["data.sample.blob_sigma=0.025"]
CASES = {
    "clean": SHARP,
    "ctf_snr0.1_shift2": SHARP + ["data.snr=0.1", "data.shift=2.0", "data.ctf={}"],
}


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


def case(name: str, overrides: list[str], count: int, init: Path | None, folder: Path) -> dict:
    out = folder / name
    simulate(load_recipe(RECIPE, overrides), count, out)
    star = out / "particles.star"
    particles = read_particles(star)
    truth_poses = relion_to_matrix(particles.angles.astype(np.float32)).numpy()
    images = mrcfile.read(out / "particles.mrcs").astype(np.float32)
    truth = mrcfile.read(out / "truth.mrc").astype(np.float32)
    apix = float(particles.pixel_size[0])
    shifts = None if particles.origins is None else particles.origins / apix
    row = {"particles": count}
    poses = {"true": (truth_poses, shifts)}
    if init is not None:
        _, function, spec = load_orientation_signature(init)
        estimated = predict(function, spec, images, 256)
        row["estimator"] = error_statistics(orientation_errors(truth_poses, estimated))
        poses["estimator"] = (estimated, shifts)
    start = time.perf_counter()
    refine_star(star, out / "truth.mrc", out / "refined.star")  # a global search
    seconds = time.perf_counter() - start
    refined = read_particles(out / "refined.star")
    refined_poses = relion_to_matrix(refined.angles.astype(np.float32)).numpy()
    row["refined"] = error_statistics(orientation_errors(truth_poses, refined_poses))
    row["refine_particles_per_second"] = round(count / seconds, 2)
    poses["refined"] = (refined_poses, refined.origins / apix)
    microscope = microscope_of(star, particles, apix)
    for label, (rotations, centring) in poses.items():
        volume = reconstruct(images, rotations, centring, microscope, regularization=1.0)
        row[f"map_from_{label}_poses"] = fsc_against_truth(volume, truth, apix)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--init", type=Path, help="an orientation run whose poses start the refinement")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = {"projections_per_second": {size: projector_throughput(size) for size in (64, 128)}}
    print(json.dumps(result, indent=1), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name, overrides in CASES.items():
            result[name] = case(name, overrides, args.count, args.init, Path(folder))
            print(name, json.dumps(result[name], indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
