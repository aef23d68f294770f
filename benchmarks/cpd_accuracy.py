"""Accuracy part of the CPDDense benchmark: compress a trained f_shadow several ways, fine-tune, compare.

Used by `benchmarks/cpd.py` (run that); kept apart so the forward-timing code stays small.
Targets from the issue, for the compressed and fine-tuned model against the original: >= 10x
fewer parameters in the compressed decoder layers, held-out SSIM within 0.01 (absolute), MSE
within 1.25x and -ELBO within +2%, with at most a quarter of the original training steps of
fine-tuning. f_shadow's Gaussian likelihood with a small scale makes the -ELBO large and
negative (a constant of about -2 nats per pixel), which dilutes relative changes, so SSIM and
MSE are the telling columns. Two references sit beside the methods: the original trained for
the same extra steps (control), and the same architecture at the default's ranks trained from
scratch (`recipes/f_shadow_cpd.yaml`, as many steps as the original).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from toolkit.runs.compress import compress_run, finetune, measure, sublayer
from toolkit.runs.directory import load_run
from toolkit.runs.train import run as run_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TARGET_RATIO = 10.0
TARGET_SSIM_DROP = 0.01
TARGET_MSE_RATIO = 1.25
TARGET_LOSS_INCREASE = 0.02
#: What each method passes to `compress_run` (the first is `toolkit compress RUN_DIR` as shipped).
METHODS = {
    "outputs fit, matrix, ranks from a 10x budget (default)": {},
    "the default, distilled from the original (weight 1)": {"distill": 1.0},
    "outputs fit, output axis in 2 modes, 10x budget": {"modes": 2},
    "weights fit, matrix, 10x budget": {"fit": "weights"},
    "weights fit, 2 + 2 modes, 10x budget": {"fit": "weights", "modes": 2},
    "weights fit, 2 + 2 modes, rank 8 (the former default)": {"fit": "weights", "modes": 2, "rank": 8},
}
SCRATCH = "f_shadow_cpd from scratch (the default's ranks)"
CONTROL = "control: the original + the fine-tuning steps"


def train(work: Path, name: str, recipe: str, overrides: list[str]) -> tuple[Path, float]:
    """A run of `recipe` in `work/name` (no figures or export); returns it and its seconds."""
    out = work / name
    overrides = [*overrides, "strategy.type=default", "output.figures=false", "output.export=false"]
    started = time.perf_counter()
    run_recipe(RECIPES / recipe, overrides, out=out, overwrite=True, quiet=True)  # the benchmark's own run
    return out, time.perf_counter() - started


def control_metrics(run_dir: Path, steps: int) -> dict:
    """Validation metrics of the original model trained `steps` more steps (its optimizer restored)."""
    loaded = load_run(run_dir, with_data=True)
    finetune(loaded.task, loaded.model, loaded.optimizer, loaded.data, loaded.recipe, steps, loaded.step)
    return measure(loaded.task, loaded.model, loaded.data)


def layer_timings(
    run_dir: Path, compressed_dir: Path, names: list[str], batch: int, time_forward
) -> list[dict]:
    """Median forward microseconds of each original Dense layer and its CPDDense replacement."""
    original = load_run(run_dir).model
    compressed = load_run(compressed_dir).model
    rows = []
    for name in names:
        dense, cpd = sublayer(original, name), sublayer(compressed, name)
        in_features = int(dense.kernel.shape[0])
        dense_s = time_forward(dense, batch, in_features, repeats=11)
        cpd_s = time_forward(cpd, batch, in_features, repeats=11)
        rows.append(
            {
                "layer": name,
                "batch": batch,
                "dense_us": dense_s * 1e6,
                "cpd_us": cpd_s * 1e6,
                "speedup": dense_s / cpd_s,
            }
        )
    return rows


def scored(metrics: dict, original: dict) -> dict:
    """SSIM drop, MSE ratio and -ELBO change against the original, with the targets' verdicts."""
    ssim_drop = original["val_ssim"] - metrics["val_ssim"]
    mse_ratio = metrics["val_mse"] / original["val_mse"]
    loss_increase = (metrics["loss"] - original["loss"]) / abs(original["loss"])
    return {
        "val_ssim": metrics["val_ssim"],
        "val_mse": metrics["val_mse"],
        "loss": metrics["loss"],
        "ssim_drop": ssim_drop,
        "mse_ratio": mse_ratio,
        "loss_increase": loss_increase,
        "quality_met": ssim_drop <= TARGET_SSIM_DROP
        and mse_ratio <= TARGET_MSE_RATIO
        and loss_increase <= TARGET_LOSS_INCREASE,
    }


def run_accuracy(
    run_dir: Path | None,
    finetune_steps: int | None,
    learning_rate: float | None,
    epochs: int,
    steps_per_epoch: int,
    work: Path | None,
    time_forward,
    methods: dict | None = None,
    scratch: bool = True,
) -> dict[str, Any]:
    """Train (or reuse) a run, compress it by every method, and collect the rows of the accuracy table."""
    work = Path(work or tempfile.mkdtemp(prefix="cpd-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    schedule = [f"train.epochs={epochs}", f"train.steps_per_epoch={steps_per_epoch}"]
    schedule.append(f"train.checkpoint_every={epochs * steps_per_epoch}")
    seconds = {}
    if run_dir is None:
        run_dir, seconds["train"] = train(work, "f_shadow", "f_shadow.yaml", schedule)
    run_dir = Path(run_dir)
    loaded = load_run(run_dir, with_data=True)
    original = measure(loaded.task, loaded.model, loaded.data)
    step = loaded.step
    steps = step // 4 if finetune_steps is None else finetune_steps
    rows = []
    for index, (label, options) in enumerate((methods or METHODS).items()):
        out = work / f"method-{index}"
        if out.exists():  # this benchmark's output from an earlier run in `work`
            shutil.rmtree(out)
        started = time.perf_counter()
        summary = compress_run(
            run_dir,
            layers=None,
            finetune_steps=steps,
            out=out,
            sweep_ranks=(),
            learning_rate=learning_rate,
            export=False,
            **options,
        )
        rows.append(
            {
                "method": label,
                "options": options,
                "out": str(out),
                "ranks": {name: info["rank"] for name, info in summary["layers"].items()},
                "output_errors": {name: info["output_error"] for name, info in summary["layers"].items()},
                "weight_errors": {name: info["relative_error"] for name, info in summary["layers"].items()},
                "decoder_ratio": summary["parameters"]["parts_ratio"].get("decoder"),
                "layers_ratio": summary["parameters"]["layers_ratio"],
                "model_ratio": summary["parameters"]["model_ratio"],
                "before_finetune": scored(summary["validation"]["compressed"], original),
                "finetuned": scored(summary["validation"]["finetuned"], original),
                "finetune_seconds": summary["finetune"]["seconds"],
                "seconds": time.perf_counter() - started,
            }
        )
    references = {CONTROL: scored(control_metrics(run_dir, steps), original)}
    if scratch:
        scratch_dir, seconds["scratch"] = train(work, "f_shadow_cpd", "f_shadow_cpd.yaml", schedule)
        scratch_run = load_run(scratch_dir, with_data=True)
        references[SCRATCH] = scored(measure(scratch_run.task, scratch_run.model, scratch_run.data), original)
    default = rows[0]
    views = loaded.shapes.sequence_length or 1
    batch = loaded.recipe["train"]["global_batch_size"] * views  # the rows a Dense layer sees per step
    names = list(default["ranks"])
    return {
        "run_dir": str(run_dir),
        "source_step": step,
        "finetune_steps": steps,
        "original": original,
        "methods": rows,
        "references": references,
        "layer_forward": layer_timings(run_dir, Path(default["out"]), names, batch, time_forward),
        "seconds": seconds,
    }


def format_accuracy(r: dict[str, Any]) -> str:
    """The accuracy table: per method the parameter ratios, SSIM, MSE and -ELBO against the targets."""
    met = {True: "met", False: "MISSED"}
    o = r["original"]
    lines = [
        f"f_shadow run {r['run_dir']} (step {r['source_step']}): SSIM {o['val_ssim']:.4f}, "
        f"MSE {o['val_mse']:.3g}, -ELBO {o['loss']:.1f}; {r['finetune_steps']} fine-tuning steps each",
        f"targets: decoder layers >= {TARGET_RATIO:.0f}x fewer parameters, SSIM drop <= {TARGET_SSIM_DROP}, "
        f"MSE <= {TARGET_MSE_RATIO}x, -ELBO <= +{TARGET_LOSS_INCREASE:.0%}",
        f"{'method':<56} {'decoder':>8} {'all':>6}  {'SSIM':>7} {'drop':>7} {'MSE x':>6} {'-ELBO':>7}"
        f"  {'before fine-tuning':>20}  verdict",
    ]
    for row in r["methods"]:
        t, b = row["finetuned"], row["before_finetune"]
        verdict = met[row["decoder_ratio"] >= TARGET_RATIO and t["quality_met"]]
        lines.append(
            f"{row['method']:<56} {row['decoder_ratio']:>7.1f}x {row['layers_ratio']:>5.1f}x  "
            f"{t['val_ssim']:>7.4f} {t['ssim_drop']:>7.4f} {t['mse_ratio']:>6.3f} {t['loss_increase']:>+7.2%}"
            f"  SSIM {b['val_ssim']:.3f} MSE {b['mse_ratio']:>5.2f}x  {verdict}"
        )
    for label, t in r["references"].items():
        lines.append(
            f"{label:<56} {'':>8} {'':>6}  {t['val_ssim']:>7.4f} {t['ssim_drop']:>7.4f} "
            f"{t['mse_ratio']:>6.3f} {t['loss_increase']:>+7.2%}"
        )
    for row in r["methods"]:
        lines.append(
            f"  {row['method']}: ranks "
            + ", ".join(
                f"{name} {rank} (output error {row['output_errors'][name] or float('nan'):.3f}, "
                f"weights {row['weight_errors'][name]:.3f})"
                for name, rank in row["ranks"].items()
            )
        )
    for row in r["layer_forward"]:
        lines.append(
            f"  {row['layer']:<22} batch {row['batch']}: Dense {row['dense_us']:.0f} us, "
            f"CPDDense {row['cpd_us']:.0f} us ({row['speedup']:.2f}x)"
        )
    spent = {**r["seconds"], **{f"method {i}": row["seconds"] for i, row in enumerate(r["methods"])}}
    lines.append("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in spent.items()))
    return "\n".join(lines)
