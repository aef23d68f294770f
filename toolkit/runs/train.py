"""`toolkit run`: a recipe to a run directory (train, evaluate, plot, export, summarize), or a resume."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.errors import NonFiniteLossError, RunError
from toolkit.progress import Progress
from toolkit.recipes.loader import load_recipe
from toolkit.runs.directory import RunDirectory
from toolkit.runs.export import export_saved_model
from toolkit.runs.figures import write_figures
from toolkit.runs.setup import Setup
from toolkit.training.checkpoints import list_checkpoints, restore_checkpoint, variable_values
from toolkit.training.loop import share_from_chief, train
from toolkit.training.metrics import read_metrics

log = logging.getLogger("toolkit")


def attach_log_file(run: RunDirectory) -> logging.Handler:
    handler = logging.FileHandler(run.log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    log.addHandler(handler)
    return handler


def is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (not has_chief and task_type == "worker" and task_id == 0)


def describe(model, strategy) -> str:
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    lines.append(f"parameters: {model.count_params():,}")
    lines.append(f"strategy: {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")
    return "\n".join(lines)


def run(
    recipe_path: Path | None = None,
    overrides=(),
    out: Path | None = None,
    overwrite: bool = False,
    resume: Path | None = None,
    quiet: bool = False,
    dry_run: bool = False,
) -> dict:
    """Run a recipe (or resume a run directory); returns the summary."""
    if resume is not None:
        directory = RunDirectory(resume)
        directory.require("a run directory written by toolkit run to --resume")
        recipe = load_recipe(directory.recipe, overrides)
        refuse_finished(directory, recipe)
    else:
        recipe = load_recipe(recipe_path, overrides)
        directory = RunDirectory(out) if out is not None else RunDirectory.new(recipe["name"])
    setup = Setup(recipe)
    stored = directory.read_shapes() if resume is not None else None
    data = setup.data(stored.measured if stored else None)
    model, optimizer = setup.model(data.shapes)
    strategy, task = setup.strategy, setup.task
    if dry_run:
        print(describe(model, strategy))
        return {}
    chief = is_chief(strategy)
    start_step, epoch_state = 0, {}
    if resume is not None:
        found = list_checkpoints(directory.checkpoints)
        if found and chief:
            start_step, path = found[-1]
            epoch_state = restore_checkpoint(path, model, optimizer)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Only the chief reads the checkpoint; the other workers receive its values.
            start_step, epoch_state = share_from_chief(strategy, model, optimizer, start_step, epoch_state)
    elif chief:
        directory.create(overwrite)
    if log.getEffectiveLevel() > logging.DEBUG:
        log.setLevel(logging.DEBUG)  # run.log keeps the per-epoch lines even when called as a library
    handler = attach_log_file(directory) if chief else None
    try:
        if chief and (resume is None or overrides):  # --set on a resume changes the run's recipe too
            directory.write_recipe(recipe)
        if chief:
            directory.write_shapes(data.shapes)
        log.info(
            f"run directory {directory}; {model.count_params():,} parameters; "
            f"{type(strategy).__name__} ({strategy.num_replicas_in_sync} replicas); from step {start_step}"
        )
        summary = {"recipe": recipe["name"], "parameters": int(model.count_params())}
        started = time.perf_counter()
        try:
            result = train(
                task,
                model,
                data,
                recipe,
                strategy,
                directory,
                optimizer,
                start_step,
                Progress(quiet),
                chief,
                epoch_state,
            )
        except (NonFiniteLossError, RunError) as error:
            summary.update({"status": "failed", "reason": str(error)})
            log.debug(f"failed: {error}")  # into run.log; the CLI prints the error line itself
            if chief:
                with contextlib.suppress(RunError):  # a full disk may refuse this too
                    directory.write_json(directory.summary, summary)
            raise
        if os.environ.get("TOOLKIT_FINAL_WEIGHTS"):
            # Debugging aid (the multi-worker test uses it): every worker, chief or not, dumps its variables.
            np.savez(os.environ["TOOLKIT_FINAL_WEIGHTS"], **variable_values(model, optimizer))
        # A resume after the last checkpoint trains nothing: the metrics are the last row written.
        summary.update(result.metrics or last_metrics(directory))
        summary.update(
            {
                "status": "completed",
                "steps": result.step,
                "train_seconds": round(result.train_seconds, 2),
                "samples_per_second": round(result.samples_per_second, 1),
                "wall_seconds": round(time.perf_counter() - started, 2),
            }
        )
        summary.update(task.summary(model, data, result.metrics))
        if chief:
            summary.update(task.write_outputs(model, data, directory))
            finish(directory, recipe, task, model, data)
            directory.write_json(directory.summary, summary)
        return summary
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


def refuse_finished(directory: RunDirectory, recipe: dict) -> None:
    """A completed run has nothing to resume, unless --set asks for more steps."""
    done = directory.read_json(directory.summary)
    total = recipe["train"]["epochs"] * recipe["train"]["steps_per_epoch"]
    if done.get("status") == "completed" and done.get("steps", 0) >= total:
        raise RunError(
            f"{directory}: the run completed its {done['steps']} steps; nothing to resume "
            f"(--set train.epochs=N to train further)"
        )


def last_metrics(directory: RunDirectory) -> dict:
    rows = read_metrics(directory.metrics) if directory.metrics.is_file() else []
    if not rows:
        return {}
    return {k: int(v) if k in ("epoch", "step") else float(v) for k, v in rows[-1].items()}


def finish(directory: RunDirectory, recipe: dict, task, model, data) -> None:
    """Figures and SavedModel of a trained run."""
    if recipe["output"]["figures"]:
        write_figures(directory, task, model, data)
    if recipe["output"]["export"]:
        export_saved_model(task, model, data.shapes, directory.saved_model)
