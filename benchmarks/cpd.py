"""Forward-pass cost of `CPDDense` against the `Dense` layer it replaces, and its accuracy in f_shadow.

Run: python benchmarks/cpd.py [--json results.json] [--repeats 21] [--rounds 3] [--jit]
     [--run-dir RUN] [--finetune-steps N] [--no-scratch] [--no-accuracy] [--no-timing]

For one representative size (1024 -> 1024 split as (32, 32) x (32, 32)) it reports, per
rank and batch size, the parameter count, a multiply-add FLOP estimate and the median
forward time of Dense, CPDDense(factored=True) and CPDDense(factored=False), all
measured in the same run with `tf.function`-compiled forwards.

The accuracy part (`cpd_accuracy.py`) trains the default f_shadow (or takes `--run-dir`),
compresses it by each method of `cpd_accuracy.METHODS` with `toolkit.runs.compress.compress_run`,
fine-tunes each for a quarter of its training steps, and reports per method the parameter
ratios and the held-out SSIM, MSE and -ELBO against the issue's targets, beside a control (the
original trained as long) and `f_shadow_cpd` trained from scratch. About 12 minutes on 2 CPU
cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf
from cpd_accuracy import format_accuracy, run_accuracy  # benchmarks/ is on sys.path

from toolkit.layers.cpd_dense import CPDDense

IN_FACTORS = (32, 32)
OUT_FACTORS = (32, 32)
RANKS = (8, 32, 64)
BATCHES = (1, 256)


def time_forward(
    layer_or_fn: Callable[[Any], Any],
    batch: int,
    in_features: int,
    repeats: int = 21,
    jit_compile: bool = False,
    min_repeat_seconds: float = 0.02,
) -> float:
    """Median seconds of one forward call of `layer_or_fn` on a `(batch, in_features)` input.

    The call is wrapped in `tf.function`, warmed up (tracing is not timed), and each
    of the `repeats` samples loops enough calls to last `min_repeat_seconds`, so that
    timer resolution does not dominate the fast batch-1 calls.
    """
    x = tf.constant(np.random.default_rng(0).standard_normal((batch, in_features)), tf.float32)
    forward = tf.function(lambda inputs: layer_or_fn(inputs), jit_compile=jit_compile)
    for _ in range(3):
        forward(x).numpy()

    calls = 1
    while True:  # calibrate the inner loop length, as timeit does
        start = time.perf_counter()
        for _ in range(calls):
            forward(x)
        elapsed = time.perf_counter() - start
        if elapsed >= min_repeat_seconds:
            break
        calls *= 2

    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            out = forward(x)
        out.numpy()  # CPU eager results are ready already; this just makes it explicit
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def dense_flops(batch: int, in_features: int, units: int) -> int:
    """Multiply-adds counted as 2 FLOPs, plus the bias add."""
    return 2 * batch * in_features * units + batch * units


def cpd_factored_flops(batch: int, rank: int, in_modes: Sequence[int], out_modes: Sequence[int]) -> int:
    """FLOPs of `CPDDense._factored_matmul` (same contraction order) plus the bias add."""
    in_features, units = math.prod(in_modes), math.prod(out_modes)
    flops = 2 * batch * in_features * rank  # matmul against the last input mode
    for m in range(len(in_modes) - 1, 0, -1):  # multiply + sum over each further mode
        flops += 2 * batch * math.prod(in_modes[:m]) * rank
    for m in range(1, len(out_modes)):  # broadcast multiply per leading output mode
        flops += batch * math.prod(out_modes[:m]) * rank
    flops += 2 * batch * units * rank  # matmul against the last output mode
    return flops + batch * units


def cpd_reconstructed_flops(batch: int, rank: int, in_modes: Sequence[int], out_modes: Sequence[int]) -> int:
    """FLOPs of `factored=False`: rebuild the kernel on every call, then a plain matmul."""
    in_features, units = math.prod(in_modes), math.prod(out_modes)
    khatri_rao = sum(
        math.prod(modes[: m + 1]) * rank for modes in (in_modes, out_modes) for m in range(1, len(modes))
    )
    return khatri_rao + 2 * in_features * units * rank + dense_flops(batch, in_features, units)


def run(repeats: int = 21, rounds: int = 3, jit_compile: bool = False) -> list[dict[str, Any]]:
    """Measure every (variant, rank, batch) combination; returns one dict per row.

    Variants are timed in `rounds` interleaved passes and the median of the per-pass
    medians is kept, so load drifting during the run (a shared 2-CPU box) hits
    Dense and CPDDense alike. An identity function gives the per-call floor of
    `tf.function` dispatch, reported so batch-1 numbers can be read net of it.
    """
    in_features, units = math.prod(IN_FACTORS), math.prod(OUT_FACTORS)
    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(units)
    dense.build((None, in_features))
    variants: list[tuple[str, int | None, Any, Callable[[int], int]]] = [
        ("call overhead (identity)", None, lambda x: x, lambda b: 0),
        ("Dense", None, dense, lambda b: dense_flops(b, in_features, units)),
    ]
    for rank in RANKS:
        for factored in (True, False):
            layer = CPDDense(units, rank, IN_FACTORS, OUT_FACTORS, factored=factored)
            layer.build((None, in_features))
            count = cpd_factored_flops if factored else cpd_reconstructed_flops
            name = "CPDDense factored" if factored else "CPDDense reconstructed"
            variants.append(
                (
                    name,
                    rank,
                    layer,
                    lambda b, r=rank, f=count: f(b, r, IN_FACTORS, OUT_FACTORS),
                )
            )

    rows = []
    for batch in BATCHES:
        samples: list[list[float]] = [[] for _ in variants]
        for _ in range(rounds):
            for index, (_, _, fn, _) in enumerate(variants):
                samples[index].append(time_forward(fn, batch, in_features, repeats, jit_compile))
        seconds = [statistics.median(s) for s in samples]
        overhead, dense_seconds = seconds[0], seconds[1]
        dense_total = dense_flops(batch, in_features, units)
        for (name, rank, fn, flops), sec in zip(variants, seconds, strict=True):
            is_floor = fn is variants[0][2]
            rows.append(
                {
                    "variant": name,
                    "rank": rank,
                    "batch": batch,
                    "params": fn.count_params() if isinstance(fn, keras.layers.Layer) else 0,
                    "flops": flops(batch),
                    "flop_ratio_vs_dense": dense_total / flops(batch) if flops(batch) else None,
                    "median_us": sec * 1e6,
                    "net_of_overhead_us": (sec - overhead) * 1e6,
                    "speedup_vs_dense": None if is_floor else dense_seconds / sec,
                    "net_speedup_vs_dense": None
                    if is_floor
                    else (dense_seconds - overhead) / max(sec - overhead, 1e-9),
                }
            )
    return rows


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'variant':<26}{'rank':>5}{'batch':>6}{'params':>9}{'MFLOP':>10}{'FLOP x':>7}"
        f"{'median us':>11}{'net us':>9}{'speedup':>9}{'net spd':>9}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['variant']:<26}{row['rank'] or '-':>5}{row['batch']:>6}"
            f"{row['params']:>9}{row['flops'] / 1e6:>10.3f}"
            f"{_cell(row['flop_ratio_vs_dense'], '.1f'):>7}"
            f"{row['median_us']:>11.1f}{row['net_of_overhead_us']:>9.1f}"
            f"{_cell(row['speedup_vs_dense'], '.2f'):>9}"
            f"{_cell(row['net_speedup_vs_dense'], '.2f'):>9}"
        )
    lines.append(
        "FLOP x = Dense FLOPs / variant FLOPs; net = minus the identity call floor; "
        "speedup = Dense time / variant time."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON ('-' for stdout)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=21,
        help="timed samples per row (median is reported)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved passes over all variants")
    parser.add_argument("--jit", action="store_true", help="compile the forwards with XLA")
    add_accuracy_arguments(parser)
    args = parser.parse_args(argv)

    rows = [] if args.no_timing else run(args.repeats, args.rounds, args.jit)
    if rows:
        print(
            f"1024 -> 1024, factors {IN_FACTORS} x {OUT_FACTORS}; TF {tf.__version__}, "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, XLA={args.jit}"
        )
        print(format_table(rows))
    accuracy = None
    if not args.no_accuracy:
        accuracy = run_accuracy(
            args.run_dir,
            args.finetune_steps,
            args.learning_rate,
            args.train_epochs,
            args.steps_per_epoch,
            args.work_dir,
            time_forward,
            scratch=not args.no_scratch,
        )
        print(format_accuracy(accuracy))
    if args.json:
        payload = {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "cpus": os.cpu_count(),
            "xla": args.jit,
            "in_factors": IN_FACTORS,
            "out_factors": OUT_FACTORS,
            "rows": rows,
            "accuracy": accuracy,
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as handle:
                handle.write(text + "\n")
    return rows


def add_accuracy_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the accuracy part (and the switches to skip either part)."""
    group = parser.add_argument_group("accuracy (compress a short f_shadow run)")
    group.add_argument("--run-dir", type=Path, help="an existing f_shadow run (default: train one)")
    group.add_argument(
        "--finetune-steps", type=int, default=None, help="default: a quarter of the run's training steps"
    )
    group.add_argument("--learning-rate", type=float, default=None, help="of fine-tuning (default: recipe's)")
    group.add_argument("--train-epochs", type=int, default=10, help="epochs of the trained runs")
    group.add_argument("--steps-per-epoch", type=int, default=100)
    group.add_argument("--work-dir", type=Path, help="where runs are written (default: a temp dir)")
    group.add_argument("--no-accuracy", action="store_true", help="forward timings only")
    group.add_argument("--no-scratch", action="store_true", help="skip training f_shadow_cpd from scratch")
    group.add_argument("--no-timing", action="store_true", help="accuracy part only")


if __name__ == "__main__":
    main()
