"""Compress a trained run: its large Dense layers become CPDDense, fine-tuned, compared, saved as a new run.

The default plan keeps each kernel a matrix (one input and one output mode, so CP is a
truncated SVD), fits it to the layer's outputs on training activations rather than to its
weights, and chooses each layer's rank from a parameter budget (`reduction` times fewer
parameters per encoder/decoder part): on a trained f_shadow this fit leaves a tenth of the
output error that a weight fit of four balanced modes does at the same size.

The compressed model is built fresh from the run's recipe with `dense_cp` set (so its
sublayers are `CPDDense` from the start and the new run directory reloads with `load_run`);
every other variable is copied from the original by path, and the CP factors come from
`CPDDense.from_dense`. Fine-tuning runs the training loop, and the held-out metrics are the
run's task's.
"""

from __future__ import annotations

import copy
import logging
import re
import statistics
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from toolkit.errors import RunError
from toolkit.figures import compression as compression_figures
from toolkit.layers.cp_fit import InputStatistics, choose_ranks, whitened_spectrum
from toolkit.layers.cpd_dense import CPDDense, auto_factors
from toolkit.runs.directory import RunDirectory, load_run
from toolkit.runs.export import export_saved_model
from toolkit.runs.setup import Setup
from toolkit.training.checkpoints import save_checkpoint
from toolkit.training.loop import train

log = logging.getLogger("toolkit")

PARTS = ("encoder", "decoder")
DEFAULT_SWEEP = (2, 4, 8, 16)
MIN_PARAMS = 10_000
#: ALS stops when the relative error changes by less than this: the fit only initializes the
#: fine-tuning, and on trained kernels the error plateaus within a few dozen sweeps.
ALS_TOL = 1e-5
ALS_ITERATIONS = 100
DEFAULT_REDUCTION = 10.0
FITS = ("outputs", "weights")
#: Training batches whose activations the outputs fit sees (x views per example for sequences).
INPUT_BATCHES = 64
# Keras numbers auto-named objects per process: one seed generator is `_1` in a model, `_3` in the next.
SEED_SUFFIX = re.compile(r"(seed_generator)_\d+")


def dense_sublayers(model) -> dict[str, keras.layers.Layer]:
    """The Dense and CPDDense sublayers of the model's encoder and decoder, keyed `"decoder/grid_dense"`."""
    out = {}
    for part in PARTS:
        layer = getattr(model, part, None)
        for value in vars(layer).values() if layer is not None else ():
            if isinstance(value, (keras.layers.Dense, CPDDense)):
                out[f"{part}/{value.name}"] = value
    return out


def compressible(model) -> dict[str, keras.layers.Dense]:
    """The plain Dense sublayers a recipe's `dense_rank` can make CPDDense (the part's `CPD_SUBLAYERS`)."""
    out = {}
    for name, layer in dense_sublayers(model).items():
        part, sub = name.split("/")
        if isinstance(layer, keras.layers.Dense) and sub in getattr(
            getattr(model, part), "CPD_SUBLAYERS", ()
        ):
            out[name] = layer
    return out


def describe_layers(layers: dict[str, keras.layers.Layer]) -> str:
    return ", ".join(f"{name} ({layer.count_params():,} params)" for name, layer in layers.items()) or "none"


def select_layers(model, layers: Iterable[str] | None, min_params: int = MIN_PARAMS) -> list[str]:
    """Check `layers` (or pick the default ones) against the model; raise `RunError` naming a bad one.

    Only a part's `CPD_SUBLAYERS` can be named: the new recipe declares them in `dense_cp`.

    Args:
        model: the trained ConditionalVAE.
        layers: name paths like `"decoder/grid_dense"`, or `None` for every part holding a
            compressible Dense layer with at least `min_params` parameters.
        min_params: size threshold of the default selection.

    Returns:
        The selected name paths, in model order.
    """
    every, candidates = dense_sublayers(model), compressible(model)
    if layers is None:
        parts = {
            name.split("/")[0] for name, layer in candidates.items() if layer.count_params() >= min_params
        }
        chosen = [name for name in candidates if name.split("/")[0] in parts]
        if not chosen:
            raise RunError(
                f"no Dense layer with >= {min_params:,} parameters to compress; "
                f"available: {describe_layers(candidates)}"
            )
        return chosen
    wanted = list(dict.fromkeys(name.strip() for name in layers if name.strip()))
    if not wanted:
        raise RunError(f"--layers: no layer named; expected some of {', '.join(candidates) or 'none'}")
    for name in wanted:
        if name not in every:
            raise RunError(
                f"--layers {name!r}: no such Dense layer in the model; "
                f"expected one of {', '.join(candidates) or 'none'}"
            )
        if isinstance(every[name], CPDDense):
            raise RunError(
                f"--layers {name!r}: already a CPDDense of rank {every[name].rank}; "
                f"expected one of {', '.join(candidates) or 'none'}"
            )
        if name not in candidates:
            raise RunError(
                f"--layers {name!r}: a recipe cannot declare it as CPDDense (dense_rank covers "
                f"{', '.join(candidates)}); expected one of those"
            )
    return [name for name in candidates if name in wanted]


def check_rank(value, option: str = "--rank") -> int:
    """A CP rank as an int, or `RunError` naming the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RunError(f"{option} {value!r}: expected a positive integer (the CP rank)")
    return value


def build_compressed(recipe: dict, shapes):
    """A fresh model and optimizer for `recipe`, built as `load_run` builds them (default strategy)."""
    return Setup(recipe, strategy={"type": "default"}).model(shapes)


def sublayer(model, name: str):
    part, sub = name.split("/")
    return getattr(getattr(model, part), sub)


def transfer(original, compressed, fits: dict[str, CPDDense]) -> None:
    """Copy every variable of `original` into `compressed` by path; the CP layers take the fitted factors.

    Args:
        original: the trained model.
        compressed: the same architecture with CPDDense sublayers at the keys of `fits`.
        fits: the CPDDense fitted (by `CPDDense.from_dense`) to each compressed layer.
    """
    done = set()
    for name, fitted in fits.items():
        target = sublayer(compressed, name)
        for variable, value in zip(target.weights, fitted.weights, strict=True):
            variable.assign(value)
            done.add(id(variable))
    source = {SEED_SUFFIX.sub(r"\1", v.path): v for v in original.variables}
    if len(source) != len(original.variables):
        raise RuntimeError("variable paths of the original model are not unique; cannot copy by path")
    for variable in compressed.variables:
        if id(variable) in done:
            continue
        match = source.get(SEED_SUFFIX.sub(r"\1", variable.path))
        if match is None or tuple(match.shape) != tuple(variable.shape):
            raise RuntimeError(
                f"no variable of shape {tuple(variable.shape)} at {variable.path} in the original model"
            )
        variable.assign(match)


def compressed_recipe(recipe: dict, plan: dict) -> dict:
    """The recipe with each planned layer's rank and modes under its part's `dense_cp`."""
    out = copy.deepcopy(recipe)
    for name, spec in plan.items():
        part, sub = name.split("/")
        section = out["model"][part]
        section["dense_cp"] = {**(section.get("dense_cp") or {}), sub: dict(spec)}
    return out


def layer_inputs(model, data, names: Sequence[str], batch_size: int, batches: int = INPUT_BATCHES) -> dict:
    """The `InputStatistics` of the rows each named sublayer takes in deterministic forward passes
    over the first training batches: computed once, shared by the rank choice and every fit."""
    seen = {name: [] for name in names}
    layers = {name: sublayer(model, name) for name in names}

    def recorder(name, call):
        def record(inputs, *args, **kwargs):
            seen[name].append(np.asarray(inputs, dtype=np.float64).reshape(-1, inputs.shape[-1]))
            return call(inputs, *args, **kwargs)

        return record

    for name, layer in layers.items():
        layer.call = recorder(name, layer.call)
    try:
        for batch in data.train_dataset(batch_size, 0).take(batches):
            model(batch, training=False)
    finally:
        for layer in layers.values():
            del layer.call
    return {name: InputStatistics.of(np.concatenate(rows)) for name, rows in seen.items()}


def plan_layers(
    original, names: Sequence[str], inputs: dict | None, rank: int | None, reduction: float, modes: int
) -> dict:
    """Rank and modes of each compressed layer: `{name: {"rank", "input_modes", "output_modes"}}`.

    Each kernel axis is split into `modes` balanced factors (`auto_factors`), except the input
    axis of an outputs fit, which stays one mode. With `rank` every layer takes it; otherwise
    each part (encoder, decoder) gets `1 / reduction` of its layers' parameters, spent with
    `choose_ranks` on the kernels' (whitened) spectra when the kernels stay matrices, or split
    in proportion to the layers' sizes when they are tensorized.
    """
    plan = {}
    for name in names:
        kernel_in, kernel_out = sublayer(original, name).kernel.shape
        split = inputs is None and modes > 1
        plan[name] = {
            "rank": rank,
            "input_modes": list(auto_factors(int(kernel_in), modes) if split else (int(kernel_in),)),
            "output_modes": list(auto_factors(int(kernel_out), modes)),
        }
    if rank is not None:
        return plan
    for part in dict.fromkeys(name.split("/")[0] for name in names):
        members = [name for name in names if name.startswith(f"{part}/")]
        costs = {name: sum(plan[name]["input_modes"]) + sum(plan[name]["output_modes"]) for name in members}
        layers = {name: sublayer(original, name) for name in members}
        biases = sum(layer.units if layer.use_bias else 0 for layer in layers.values())
        total = sum(layer.count_params() for layer in layers.values())
        budget = int(total / reduction) - biases
        if budget < sum(costs.values()):
            raise RunError(
                f"--reduction {reduction:g}: the {part}'s {', '.join(members)} cannot be cut that much "
                f"(rank 1 with the biases takes {sum(costs.values()) + biases:,} of {total:,} parameters); "
                "expected a smaller --reduction or --rank"
            )
        if modes == 1:
            spectra = {
                name: whitened_spectrum(
                    np.asarray(layers[name].kernel), None if inputs is None else inputs[name]
                )
                for name in members
            }
            ranks = choose_ranks(spectra, costs, budget)
        else:
            ranks = {
                name: max(1, int(budget * layers[name].count_params() / total) // costs[name])
                for name in members
            }
        for name in members:
            plan[name]["rank"] = ranks[name]
    return plan


def fit_layers(
    original,
    plan: dict,
    inputs: dict | None,
    cache: dict,
    iterations: int = ALS_ITERATIONS,
    tol: float = ALS_TOL,
) -> tuple[dict, dict]:
    """CP fits of the planned Dense layers (cached by name and plan, as ALS is deterministic).

    Args:
        original: the trained model.
        plan: `plan_layers`' rank and modes per name path.
        inputs: the `layer_inputs` statistics for an outputs fit, or `None` for a weights fit.
        cache: `{(name, rank, modes): (layer, info)}`, filled here.
        iterations: most ALS sweeps.
        tol: ALS stops when the relative error changes by less than this.

    Returns:
        `(fits, infos)`: the fitted CPDDense and the `from_dense` info (plus `seconds`) by name.
    """
    fits, infos = {}, {}
    for name, spec in plan.items():
        key = (name, spec["rank"], tuple(spec["input_modes"]), tuple(spec["output_modes"]))
        if key not in cache:
            started = time.perf_counter()
            layer, info = CPDDense.from_dense(
                sublayer(original, name),
                spec["rank"],
                input_shape_factors=spec["input_modes"],
                output_shape_factors=spec["output_modes"],
                inputs=None if inputs is None else inputs[name],
                n_iter_max=iterations,
                tol=tol,
            )
            info["seconds"] = time.perf_counter() - started
            cache[key] = (layer, info)
        fits[name], infos[name] = cache[key]
    return fits, infos


class Distilled:
    """A compressed VAE trained toward its original: the loop's model, with one loss term more.

    `distillation` is the student's decoded mean scored against the teacher's reconstruction
    (decoded from the teacher's posterior mean) by the model's own likelihood, in nats per
    example, so `weight` 1 counts the teacher as much as the data. The training loop reads
    `term_weights`, `loss_terms` and `trainable_variables`; everything else is the student's.
    """

    def __init__(self, student, teacher, weight: float):
        self.require_vae(teacher)
        self.student, self.teacher, self.weight = student, teacher, float(weight)

    @staticmethod
    def require_vae(model) -> None:
        if not all(hasattr(model, attr) for attr in ("encode", "decode", "likelihood")):
            raise RunError(
                "--distill: expected a VAE run (conditional_vae); this model has no decoder to match"
            )

    def __getattr__(self, name):
        return getattr(self.student, name)

    @property
    def term_weights(self) -> dict:
        return {**self.student.term_weights, "distillation": self.weight}

    def loss_terms(self, inputs, training=None):
        terms = dict(self.student.loss_terms(inputs, training=training))
        condition = inputs.get("condition")
        target = tf.stop_gradient(self.teacher.decode(self.teacher.encode(inputs)[0], condition))
        mean = tf.cast(terms["mean"], "float32")
        if self.student.likelihood == "gaussian":
            per_pixel = 0.5 * tf.square((mean - target) / self.student.likelihood_scale)
        else:
            per_pixel = keras.ops.binary_crossentropy(target, mean)
        terms["distillation"] = tf.reduce_sum(per_pixel, axis=tuple(range(1, len(per_pixel.shape))))
        return terms


def measure(task, model, data) -> dict:
    """The task's validation metrics, with `loss` = `task.validation_loss` (lower is better)."""
    metrics = task.evaluate(model, data.validation)
    return {"loss": task.validation_loss(metrics), **metrics}


def relative_change(after: float, before: float) -> float:
    """(after - before) / |before|: positive means larger (worse for a loss, better for SSIM)."""
    return (after - before) / abs(before) if before else float("inf")


def finetune(task, model, optimizer, data, recipe: dict, steps: int, start_step: int, run=None) -> float:
    """Train `steps` optimizer steps with the training loop, from batch `start_step`; returns seconds.

    With a `run` directory the loop writes its metrics and checkpoints there.
    """
    if steps == 0:
        return 0.0
    strategy = tf.distribute.get_strategy()
    result = train(
        task, model, data, recipe, strategy, run, optimizer, start_step, stop_step=start_step + steps
    )
    return result.train_seconds


def forward_seconds(model, data, batch: int = 64, repeats: int = 7) -> float:
    """Median seconds of one deterministic forward pass (encode and decode) on validation examples."""
    inputs = {k: v[:batch] for k, v in data.validation.items() if k in ("images", "condition")}
    forward = tf.function(lambda x: model(x, training=False))
    forward(inputs)  # trace outside the timing
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        forward(inputs)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def layer_report(original, compressed, names: Sequence[str], infos: dict) -> dict:
    """Per compressed layer: kernel shape, CP rank and modes, parameters before/after and fit errors."""
    out = {}
    for name in names:
        dense, cpd = sublayer(original, name), sublayer(compressed, name)
        before, after = dense.count_params(), cpd.count_params()
        out[name] = {
            "kernel_shape": list(dense.kernel.shape),
            "rank": cpd.rank,
            "input_modes": list(cpd.input_modes),
            "output_modes": list(cpd.output_modes),
            "params_before": before,
            "params_after": after,
            "ratio": before / after,
            "relative_error": infos[name]["relative_error"],
            "output_error": infos[name].get("output_error"),
            "als_iterations": len(infos[name]["als_errors"]),
            "als_seconds": round(infos[name]["seconds"], 3),
            "als_errors": infos[name]["als_errors"],
        }
    return out


def sweep(task, original, recipe, data, plans, inputs, steps, start_step, cache, als: dict) -> list[dict]:
    """Per plan: parameters of the compressed layers, validation metrics before and after fine-tuning."""
    rows = []
    for label, plan in plans.items():
        model, optimizer = build_compressed(compressed_recipe(recipe, plan), data.shapes)
        fits, _ = fit_layers(original, plan, inputs, cache, **als)
        transfer(original, model, fits)
        row = {
            "rank": label,
            "layer_params": sum(sublayer(model, name).count_params() for name in plan),
            "compressed": measure(task, model, data),
        }
        if steps:
            finetune(task, model, optimizer, data, recipe, steps, start_step)
            row["finetuned"] = measure(task, model, data)
        log.info(
            f"sweep rank {label}: {row['layer_params']:,} params, loss {row['compressed']['loss']:.1f}"
            + (f" -> {row['finetuned']['loss']:.1f}" if steps else "")
        )
        rows.append(row)
    return rows


def default_out(run_dir: Path, rank: int | None = None, reduction: float = DEFAULT_REDUCTION) -> Path:
    run_dir = Path(run_dir)
    suffix = f"r{rank}" if rank is not None else f"{reduction:g}x"
    return run_dir.with_name(f"{run_dir.name}-cpd-{suffix}")


def check_options(
    rank, reduction, modes, fit, finetune_steps, sweep_finetune_steps, als_iterations, rate, distill
):
    """`RunError` naming the first bad option; the rank as an int or `None`."""
    rank = None if rank is None else check_rank(rank)
    if not isinstance(reduction, (int, float)) or isinstance(reduction, bool) or not reduction > 1:
        raise RunError(f"--reduction {reduction!r}: expected a number > 1 (times fewer parameters)")
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 1:
        raise RunError(f"--modes {modes!r}: expected a positive integer (factors per kernel axis)")
    if fit not in FITS:
        raise RunError(f"--fit {fit!r}: expected one of {', '.join(FITS)}")
    for option, steps in (
        ("--finetune-steps", finetune_steps),
        ("--sweep-finetune-steps", sweep_finetune_steps),
    ):
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
            raise RunError(f"{option} {steps!r}: expected an integer >= 0")
    if isinstance(als_iterations, bool) or not isinstance(als_iterations, int) or als_iterations < 1:
        raise RunError(f"als_iterations {als_iterations!r}: expected a positive integer")
    if rate is not None and not rate > 0:
        raise RunError(f"--learning-rate {rate!r}: expected a positive number")
    if isinstance(distill, bool) or not isinstance(distill, (int, float)) or not distill >= 0:
        raise RunError(f"--distill {distill!r}: expected a number >= 0 (the weight of the original's term)")
    return rank


def compress_run(
    run_dir: Path,
    rank: int | None = None,
    layers: Iterable[str] | None = None,
    finetune_steps: int | None = None,
    out: Path | None = None,
    sweep_ranks: Sequence[int] = DEFAULT_SWEEP,
    sweep_finetune_steps: int = 50,
    min_params: int = MIN_PARAMS,
    learning_rate: float | None = None,
    export: bool = True,
    als_iterations: int = ALS_ITERATIONS,
    als_tol: float = ALS_TOL,
    reduction: float = DEFAULT_REDUCTION,
    modes: int = 1,
    fit: str = "outputs",
    distill: float = 0.0,
) -> dict:
    """Compress a trained run's Dense layers into CPDDense, fine-tune, and write a new run.

    Args:
        run_dir: a run directory written by `toolkit run` (recipe.yaml and a checkpoint).
        rank: CP rank of every compressed layer; `None` chooses each layer's rank from the
            budget `reduction` sets.
        layers: name paths such as `"decoder/grid_dense"` (a list or a comma string); `None` takes
            every part (encoder, decoder) with a compressible Dense layer of >= `min_params` parameters.
        finetune_steps: optimizer steps after compression (0 for none); `None` is a quarter of
            the steps the run trained.
        out: the new run directory (default `<run_dir>-cpd-<reduction>x` or `-cpd-r<rank>`);
            must not be a non-empty one.
        sweep_ranks: ranks of the sweep figure (empty for none), each with the same modes and fit.
        sweep_finetune_steps: fine-tuning steps of each sweep point (0 for before fine-tuning only).
        min_params: size threshold of the default layer selection.
        learning_rate: fine-tuning learning rate; `None` keeps the recipe's.
        export: write the compressed model's SavedModel.
        als_iterations: most ALS sweeps per fit.
        als_tol: ALS stops when the relative error changes by less than this.
        reduction: without `rank`, each part's compressed layers get this many times fewer parameters.
        modes: factors each kernel axis is split into (1: the kernel stays a matrix).
        fit: `"outputs"` fits each layer's outputs on training activations, `"weights"` its kernel.
        distill: weight of a fine-tuning term matching the original's reconstructions (`Distilled`);
            0 fine-tunes on the data alone.

    Returns:
        The summary written to `out/summary.json`.

    Raises:
        RunError: bad options or layer names, a missing run, or a non-empty `out`; raised
            before anything is written.
    """
    run_dir = Path(run_dir)
    if isinstance(layers, str):
        layers = layers.split(",")
    rank = check_options(
        rank,
        reduction,
        modes,
        fit,
        finetune_steps,
        sweep_finetune_steps,
        als_iterations,
        learning_rate,
        distill,
    )
    sweep_ranks = [check_rank(r, "--sweep") for r in dict.fromkeys(sweep_ranks)]
    target = RunDirectory(out if out is not None else default_out(run_dir, rank, reduction))
    target.refuse_non_empty()
    loaded = load_run(run_dir, with_data=True)
    task, recipe, data, original, step = loaded.task, loaded.recipe, loaded.data, loaded.model, loaded.step
    names = select_layers(original, layers, min_params)
    if finetune_steps is None:
        finetune_steps = step // 4
    inputs = None
    if fit == "outputs":
        inputs = layer_inputs(original, data, names, recipe["train"]["global_batch_size"])
    plan = plan_layers(original, names, inputs, rank, reduction, modes)
    if distill:
        Distilled.require_vae(original)
    target.create()

    train_recipe = copy.deepcopy(recipe)
    if learning_rate is not None:  # also written to the new recipe: the checkpointed optimizer holds it
        train_recipe["train"]["learning_rate"] = learning_rate
    new_recipe = compressed_recipe(train_recipe, plan)
    ranks = ", ".join(f"{name} rank {spec['rank']}" for name, spec in plan.items())
    new_recipe["description"] = f"{recipe['description']} [CP {ranks}, fitted to the {fit}, from {run_dir}]"
    cache: dict = {}
    als = {"iterations": als_iterations, "tol": als_tol}
    fits, infos = fit_layers(original, plan, inputs, cache, **als)
    model, optimizer = build_compressed(new_recipe, data.shapes)
    transfer(original, model, fits)
    log.info(f"compressed {ranks}; fine-tuning {finetune_steps} steps")
    metrics = {"original": measure(task, original, data), "compressed": measure(task, model, data)}
    trainee = Distilled(model, original, distill) if distill else model
    seconds = finetune(task, trainee, optimizer, data, train_recipe, finetune_steps, step)
    metrics["finetuned"] = measure(task, model, data)
    timing = {"original": forward_seconds(original, data), "compressed": forward_seconds(model, data)}

    layer_info = layer_report(original, model, names, infos)
    before = sum(info["params_before"] for info in layer_info.values())
    after = sum(info["params_after"] for info in layer_info.values())
    summary = {
        "source_run": str(run_dir),
        "source_step": step,
        "step": step + finetune_steps,
        "rank": rank,
        "reduction": None if rank is not None else reduction,
        "modes": modes,
        "fit": fit,
        "distill": distill,
        "layers": layer_info,
        "parameters": {
            "model_before": int(original.count_params()),
            "model_after": int(model.count_params()),
            "model_ratio": original.count_params() / model.count_params(),
            "layers_before": before,
            "layers_after": after,
            "layers_ratio": before / after,
            "parts_ratio": part_ratios(layer_info),
        },
        "validation": metrics,
        "relative_change": {
            key: {
                stage: relative_change(metrics[stage][key], metrics["original"][key])
                for stage in ("compressed", "finetuned")
            }
            for key in ("loss", *task.compared_metrics)
        },
        "finetune": {
            "steps": finetune_steps,
            "learning_rate": train_recipe["train"]["learning_rate"],
            "seconds": round(seconds, 2),
            "sweep_steps": sweep_finetune_steps,
        },
        "als": {"max_iterations": als_iterations, "tol": als_tol},
        "forward_seconds": {**timing, "speedup": timing["original"] / timing["compressed"]},
    }
    plans = {r: plan_layers(original, names, inputs, r, reduction, modes) for r in sweep_ranks}
    summary["sweep"] = sweep(
        task, original, train_recipe, data, plans, inputs, sweep_finetune_steps, step, cache, als
    )
    write_outputs(target, new_recipe, task, model, optimizer, data, summary, export)
    return summary


def part_ratios(layer_info: dict) -> dict:
    """Parameters before over after, per part (encoder, decoder) of the compressed layers."""
    out = {}
    for part in dict.fromkeys(name.split("/")[0] for name in layer_info):
        members = [info for name, info in layer_info.items() if name.startswith(f"{part}/")]
        out[part] = sum(i["params_before"] for i in members) / sum(i["params_after"] for i in members)
    return out


def write_outputs(
    target: RunDirectory, recipe: dict, task, model, optimizer, data, summary: dict, export: bool
):
    """recipe.yaml, data.json, a checkpoint (so `load_run` reloads it), figures, SavedModel, summary.json."""
    target.write_recipe(recipe)
    target.write_shapes(data.shapes)
    save_checkpoint(
        target.checkpoints, summary["step"], model, optimizer, recipe["train"]["keep_checkpoints"]
    )
    curves = {name: info["als_errors"] for name, info in summary["layers"].items()}
    ranks = {name: info["rank"] for name, info in summary["layers"].items()}
    compression_figures.als_convergence(curves, ranks, target.figures / "als_convergence.png")
    if summary["sweep"]:
        compression_figures.rank_sweep(
            summary["sweep"],
            summary["validation"]["original"],
            target.figures / "rank_sweep.png",
            summary["finetune"]["sweep_steps"],
            task.compared_metrics[0],
        )
    if export:
        export_saved_model(task, model, data.shapes, target.saved_model)
    target.write_json(target.summary, summary)
