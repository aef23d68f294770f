"""Gimbal lock: shadows decoded from Euler-angle, quaternion and 6D conditions, near and far from the lock.

Usage: python benchmarks/gimbal_lock.py [--epochs 10] [--count 256] [--json out.json] [--work-dir DIR]

The poster saw reconstructions conditioned on Euler angles "flip" and named quaternions as
the fix. This trains f_shadow once per condition representation (same data, seed and steps),
then renders held-out views at tilts within `--lock-degrees` of the ZYZ lock (tilt 0 or 180
degrees, where rot and psi turn one angle and the Euler angles jump) and views well away from
it (tilt in [30, 150] degrees), and decodes each from the prior mean and its true orientation
alone (the latent code carries nothing here, as `val_ssim_prior` shows). Reported per
representation and group: mean SSIM and MSE against the rendered truth, and the ratio of the
near-lock to the far-from-lock MSE, which is 1 when the lock does not matter.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf

from toolkit import geometry
from toolkit.data.render import render_shadows
from toolkit.geometry import orientation_features
from toolkit.runs.directory import load_run
from toolkit.runs.train import run as run_recipe

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "f_shadow.yaml"
REPRESENTATIONS = ("euler", "quaternion", "sixd")


def views(count: int, near_lock: bool, lock_degrees: float, seed: int) -> np.ndarray:
    """`count` rotation matrices from ZYZ angles: rot and psi uniform, tilt near or far from the lock."""
    rng = np.random.default_rng(seed)
    rot, psi = rng.uniform(-180.0, 180.0, (2, count))
    if near_lock:
        tilt = rng.uniform(0.0, lock_degrees, count)
        tilt = np.where(rng.random(count) < 0.5, tilt, 180.0 - tilt)
    else:
        tilt = rng.uniform(30.0, 150.0, count)
    angles = np.stack([rot, tilt, psi], axis=-1).astype(np.float32)
    return geometry.euler_to_matrix(angles, "ZYZ", degrees=True).numpy()


def decoded_scores(model, source, rotations: np.ndarray) -> dict:
    """SSIM and MSE of the shadows decoded from the prior mean and each view's true orientation."""
    sequence = source.sequence_length
    count = len(rotations) // sequence * sequence
    rotations = rotations[:count].reshape(-1, sequence, 3, 3)
    truth = render_shadows(source.sample, rotations.reshape(-1, 3, 3), source.image_size, source.extent)
    truth = tf.reshape(truth / source.intensity_scale, [-1, source.image_size, source.image_size, 1])
    condition = orientation_features(tf.constant(rotations), source.representation, source.convention)
    latent = tf.zeros([len(rotations), model.latent.latent_dim])
    decoded = tf.reshape(model.decode(latent, condition), truth.shape)
    return {
        "ssim": float(tf.reduce_mean(tf.image.ssim(truth, decoded, 1.0))),
        "mse": float(tf.reduce_mean(tf.square(truth - decoded))),
    }


def measure(args: argparse.Namespace) -> dict:
    """Train one run per representation and score it near and far from the lock."""
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gimbal-bench-"))
    near = views(args.count, True, args.lock_degrees, args.seed)
    far = views(args.count, False, args.lock_degrees, args.seed + 1)
    results = {}
    for representation in REPRESENTATIONS:
        overrides = [
            f"model.condition={representation}",
            f"train.epochs={args.epochs}",
            "output.figures=false",
            "output.export=false",
            "strategy.type=default",
        ]
        started = time.perf_counter()
        run_recipe(RECIPE, overrides, out=work / representation, overwrite=True, quiet=True)
        seconds = time.perf_counter() - started
        loaded = load_run(work / representation, with_data=True)
        near_scores = decoded_scores(loaded.model, loaded.data.source, near)
        far_scores = decoded_scores(loaded.model, loaded.data.source, far)
        results[representation] = {
            "near_lock": near_scores,
            "far_from_lock": far_scores,
            "mse_ratio_near_to_far": near_scores["mse"] / far_scores["mse"],
            "train_seconds": seconds,
        }
    return {
        "setup": {
            "recipe": str(RECIPE.name),
            "epochs": args.epochs,
            "views_per_group": args.count,
            "lock_degrees": args.lock_degrees,
            "seed": args.seed,
            "work_dir": str(work),
        },
        "results": results,
        "ratios": {
            "euler_to_quaternion_mse_near_lock": results["euler"]["near_lock"]["mse"]
            / results["quaternion"]["near_lock"]["mse"],
            "euler_to_sixd_mse_near_lock": results["euler"]["near_lock"]["mse"]
            / results["sixd"]["near_lock"]["mse"],
        },
    }


def print_table(result: dict) -> None:
    setup = result["setup"]
    print(
        f"f_shadow, {setup['epochs']} epochs per representation; {setup['views_per_group']} views within "
        f"{setup['lock_degrees']} degrees of the ZYZ lock and as many with tilt in [30, 150]"
    )
    print(
        f"{'condition':<12}{'SSIM near':>11}{'SSIM far':>10}{'MSE near':>11}{'MSE far':>10}{'near/far':>10}"
    )
    for name, row in result["results"].items():
        near, far = row["near_lock"], row["far_from_lock"]
        print(
            f"{name:<12}{near['ssim']:>11.4f}{far['ssim']:>10.4f}{near['mse']:>11.2e}{far['mse']:>10.2e}"
            f"{row['mse_ratio_near_to_far']:>10.2f}"
        )
    ratios = result["ratios"]
    print(
        f"near the lock, Euler MSE / quaternion MSE = {ratios['euler_to_quaternion_mse_near_lock']:.2f}, "
        f"Euler / 6D = {ratios['euler_to_sixd_mse_near_lock']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of each run (the recipe's: 10)")
    parser.add_argument("--count", type=int, default=256, help="views per group")
    parser.add_argument("--lock-degrees", type=float, default=5.0, help="tilt within this of 0 or 180")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evaluated views")
    parser.add_argument("--work-dir", default=None, help="where the runs go (default: a temp dir)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if not 0 < args.lock_degrees < 30 or not math.isfinite(args.lock_degrees):
        parser.error("--lock-degrees must lie in (0, 30)")
    result = measure(args)
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
