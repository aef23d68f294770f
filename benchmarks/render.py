"""Shadows per second: render_shadows vs a naive voxel baseline vs training's appetite.

Usage: python benchmarks/render.py [--size 64] [--count 2000] [--json out.json]

(a) render_shadows on batches in a tf.function (warm-up excluded);
(b) naive: the F voxelized, rotated with scipy.ndimage.affine_transform (order=1)
    about its centre and summed along the beam, one image at a time;
(c) shadows/s the training loop of a recipe consumes at the same image size.
All ratios come from numbers measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from scipy.ndimage import affine_transform
from scipy.spatial.transform import Rotation

from toolkit.data.objects import BlobSample, letter_f
from toolkit.data.render import pixel_size, render_shadows, render_volume

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "f_shadow.yaml"
TARGET_VS_NAIVE = 50.0
TARGET_VS_TRAINING = 5.0


def naive_shadow(volume: np.ndarray, rotation: np.ndarray, voxel: float) -> np.ndarray:
    """Rotate a [z, y, x] volume by x' = R x about its centre; integrate along z."""
    flip = np.eye(3)[::-1]  # (x, y, z) <-> array axes (z, y, x)
    # affine_transform maps each output index to the input index it samples: R^T.
    matrix = flip @ rotation.T @ flip
    centre = (np.array(volume.shape) - 1) / 2
    rotated = affine_transform(volume, matrix, offset=centre - matrix @ centre, order=1)
    return rotated.sum(axis=0) * voxel


def training_consumption(recipe_path: str, image_size: int, steps: int = 10) -> float:
    """Shadows/s the training loop of `recipe_path` consumes at `image_size`.

    One rendered batch is repeated from memory, so only the optimizer steps are timed;
    shadows per step = global batch size * sequence length.
    """
    from toolkit.recipes.loader import load_recipe
    from toolkit.runs.setup import Setup
    from toolkit.training.loop import make_train_step

    recipe = load_recipe(recipe_path, [f"data.image_size={image_size}"])
    setup = Setup(recipe)
    data = setup.data()
    model, optimizer = setup.model(data.shapes)
    strategy, task = setup.strategy, setup.task
    batch = recipe["train"]["global_batch_size"]
    fixed = tf.data.Dataset.from_tensors(next(iter(data.train_dataset(batch)))).repeat()
    dataset = task.training_dataset(model, fixed, 0, 0)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step = make_train_step(task, model, optimizer, strategy, batch)
    for _ in range(3):  # trace and warm up
        step(iterator)
    start = time.perf_counter()
    for _ in range(steps):
        losses = step(iterator)
    float(losses[0])  # wait for the last step
    seconds = time.perf_counter() - start
    return steps * batch * recipe["data"]["sequence_length"] / seconds


def time_renderer(
    sample: BlobSample,
    rotations: np.ndarray,
    size: int,
    extent: float,
    batch: int,
    repeats: int,
) -> tuple[float, np.ndarray]:
    """Median shadows/s of batched render_shadows over `repeats` passes; first image."""

    @tf.function(input_signature=[tf.TensorSpec([None, 3, 3], tf.float32)])
    def render(r):
        return render_shadows(sample, r, size, extent)

    batches = [tf.constant(rotations[i : i + batch]) for i in range(0, len(rotations), batch)]
    render(batches[0]).numpy()  # warm-up: tracing and first allocation
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            render(b).numpy()  # .numpy() waits for the result
        rates.append(len(rotations) / (time.perf_counter() - start))
    return float(np.median(rates)), render(batches[0][:1]).numpy()[0]


def measure(args: argparse.Namespace) -> dict:
    """Run the three measurements; every ratio uses numbers from this run."""
    sample = letter_f()
    rng = np.random.default_rng(args.seed)
    rotations = Rotation.random(args.count, rng=rng).as_matrix().astype(np.float32)
    ours, first = time_renderer(sample, rotations, args.size, args.extent, args.batch, args.repeats)

    volume = render_volume(sample, args.size, args.extent)  # built once, not timed
    voxel = pixel_size(args.size, args.extent)
    start = time.perf_counter()
    naive_images = [naive_shadow(volume, r, voxel) for r in rotations[: args.naive_count]]
    naive = len(naive_images) / (time.perf_counter() - start)
    # Sanity: both methods draw the same shadow (up to trilinear interpolation error).
    agreement = float(np.abs(naive_images[0] - first).max() / first.max())

    training = training_consumption(args.recipe, args.size)
    vs_training = ours / training
    return {
        "image_size": args.size,
        "extent": args.extent,
        "blobs": len(sample.centers),
        "batch": args.batch,
        "images": {"render_shadows": len(rotations), "naive": len(naive_images)},
        "shadows_per_second": {
            "render_shadows": ours,
            "naive": naive,
            "training": training,
        },
        "ratios": {"vs_naive": ours / naive, "vs_training": vs_training},
        "targets": {"vs_naive": TARGET_VS_NAIVE, "vs_training": TARGET_VS_TRAINING},
        "met": {
            "vs_naive": ours / naive >= TARGET_VS_NAIVE,
            "vs_training": vs_training >= TARGET_VS_TRAINING,
        },
        "naive_max_relative_difference": agreement,
    }


def print_table(result: dict) -> None:
    """Print method, shadows/s and ratio vs naive, then the two target checks."""
    rates, ratios = result["shadows_per_second"], result["ratios"]
    labels = {
        "render_shadows": "render_shadows",
        "naive": "naive affine_transform",
        "training": "training consumption",
    }
    print(f"{'method':<24}{'shadows/s':>12}{'vs naive':>10}")
    for key, label in labels.items():
        rate = rates[key]
        print(f"{label:<24}{rate:>12,.0f}{rate / rates['naive']:>9.1f}x")
    print(f"ours / naive    = {ratios['vs_naive']:.0f}x (target >= {TARGET_VS_NAIVE:.0f}x)")
    print(f"ours / training = {ratios['vs_training']:.1f}x (target >= {TARGET_VS_TRAINING:.0f}x)")
    difference = result["naive_max_relative_difference"]
    print(f"naive vs ours, max relative difference: {difference:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--count", type=int, default=2000, help="shadows per timed pass")
    parser.add_argument("--batch", type=int, default=256, help="render_shadows batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (median)")
    parser.add_argument("--naive-count", type=int, default=20, help="naive shadows")
    parser.add_argument("--extent", type=float, default=0.75, help="half field of view")
    parser.add_argument("--recipe", default=str(RECIPE), help="recipe whose training consumption is measured")
    parser.add_argument("--seed", type=int, default=0, help="rotation seed")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    result = measure(args)
    print_table(result)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
