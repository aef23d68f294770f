"""`toolkit run`: a recipe to a run directory (train, evaluate, plot, export, summarize)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import tensorflow as tf
import yaml

from toolkit import geometry, plots
from toolkit.data.shadows import TRAIN_STREAM
from toolkit.errors import NonFiniteLossError, RunError
from toolkit.export import export_saved_model
from toolkit.progress import Progress
from toolkit.recipes.builders import build_data, build_model, build_strategy
from toolkit.recipes.loader import load_recipe
from toolkit.training.checkpoints import list_checkpoints, restore_checkpoint, variable_values
from toolkit.training.evaluate import orientation_errors, reconstruct
from toolkit.training.loop import (
    build_for_training,
    check_same_recipe,
    make_optimizer,
    share_from_chief,
    train,
)
from toolkit.training.metrics import read_metrics

log = logging.getLogger("toolkit")


def default_run_dir(name: str, root: Path = Path("runs")) -> Path:
    return root / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


#: What `toolkit run` writes into a run directory; `--overwrite` removes these (other files stay).
RUN_ARTIFACTS = (
    "recipe.yaml",
    "metrics.csv",
    "summary.json",
    "run.log",
    "checkpoints",
    "tensorboard",
    "figures",
    "saved_model",
)


def prepare_run_dir(path: Path, overwrite: bool) -> None:
    """Create the run directory; refuse a non-empty one unless `overwrite`.

    With `overwrite` the artifacts of an earlier run are removed first, so none of its
    checkpoints, metrics or events can be mistaken for the new run's.
    """
    if path.exists() and not path.is_dir():
        raise RunError(f"{path}: exists and is not a directory; choose another --out")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise RunError(
            f"{path}: run directory exists and is not empty; pass --overwrite or choose another --out"
        )
    try:
        for name in RUN_ARTIFACTS if path.is_dir() else ():
            old = path / name
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.exists() or old.is_symlink():
                old.unlink()
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise RunError(f"{path}: cannot write the run directory ({error.strerror or error})") from None


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def attach_log_file(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "run.log")
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


def setup(recipe: dict):
    """Strategy, data, model and optimizer for a recipe, with every variable created."""
    tf.config.experimental.enable_op_determinism()
    strategy = build_strategy(recipe["strategy"])
    check_same_recipe(strategy, recipe)
    data = build_data(recipe)
    with strategy.scope():
        model = build_model(recipe, data)
        optimizer = make_optimizer(recipe["train"]["optimizer"], recipe["train"]["learning_rate"])
        build_for_training(model, optimizer, data.validation)
    return strategy, data, model, optimizer


def describe(recipe: dict, model, strategy) -> str:
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
        run_dir = Path(resume)
        if not (run_dir / "recipe.yaml").is_file():
            raise RunError(
                f"{run_dir}: no recipe.yaml; --resume expects a run directory written by toolkit run"
            )
        recipe = load_recipe(run_dir / "recipe.yaml", overrides)
        refuse_finished(run_dir, recipe)
    else:
        recipe = load_recipe(recipe_path, overrides)
        run_dir = Path(out) if out is not None else default_run_dir(recipe["name"])
    strategy, data, model, optimizer = setup(recipe)
    if dry_run:
        print(describe(recipe, model, strategy))
        return {}
    chief = is_chief(strategy)
    start_step, epoch_state = 0, {}
    if resume is not None:
        found = list_checkpoints(run_dir / "checkpoints")
        if found and chief:
            start_step, path = found[-1]
            epoch_state = restore_checkpoint(path, model, optimizer)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Only the chief reads the checkpoint; the other workers receive its values.
            start_step, epoch_state = share_from_chief(strategy, model, optimizer, start_step, epoch_state)
    elif chief:
        prepare_run_dir(run_dir, overwrite)
    if log.getEffectiveLevel() > logging.DEBUG:
        log.setLevel(logging.DEBUG)  # run.log keeps the per-epoch lines even when called as a library
    handler = attach_log_file(run_dir) if chief else None
    try:
        if chief and (resume is None or overrides):  # --set on a resume changes the run's recipe too
            (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        log.info(
            f"run directory {run_dir}; {model.count_params():,} parameters; "
            f"{type(strategy).__name__} ({strategy.num_replicas_in_sync} replicas); from step {start_step}"
        )
        summary = {"recipe": recipe["name"], "parameters": int(model.count_params())}
        started = time.perf_counter()
        try:
            result = train(
                model,
                data,
                recipe,
                strategy,
                run_dir,
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
                with contextlib.suppress(OSError):  # a full disk may refuse this too
                    write_json(run_dir / "summary.json", summary)
            raise
        if os.environ.get("TOOLKIT_FINAL_WEIGHTS"):
            # Debugging aid (the multi-worker test uses it): every worker, chief or not, dumps its variables.
            np.savez(os.environ["TOOLKIT_FINAL_WEIGHTS"], **variable_values(model, optimizer))
        # A resume after the last checkpoint trains nothing: the metrics are the last row written.
        summary.update(result.metrics or last_metrics(run_dir))
        summary.update(
            {
                "status": "completed",
                "steps": result.step,
                "train_seconds": round(result.train_seconds, 2),
                "samples_per_second": round(result.samples_per_second, 1),
                "wall_seconds": round(time.perf_counter() - started, 2),
            }
        )
        if data.kind == "mnist":  # how the latent space organises the digits
            from toolkit.mnist_report import mnist_metrics

            summary.update(mnist_metrics(model, data.validation, result.metrics))
        if chief:
            finish(run_dir, recipe, model, data)
            write_json(run_dir / "summary.json", summary)
        return summary
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()


def refuse_finished(run_dir: Path, recipe: dict) -> None:
    """A completed run has nothing to resume, unless --set asks for more steps."""
    path = run_dir / "summary.json"
    done = json.loads(path.read_text()) if path.is_file() else {}
    total = recipe["train"]["epochs"] * recipe["train"]["steps_per_epoch"]
    if done.get("status") == "completed" and done.get("steps", 0) >= total:
        raise RunError(
            f"{run_dir}: the run completed its {done['steps']} steps; nothing to resume "
            f"(--set train.epochs=N to train further)"
        )


def last_metrics(run_dir: Path) -> dict:
    path = run_dir / "metrics.csv"
    rows = read_metrics(path) if path.is_file() else []
    if not rows:
        return {}
    return {k: int(v) if k in ("epoch", "step") else float(v) for k, v in rows[-1].items()}


def load_run(run_dir: Path, overrides=()):
    """Recipe, data, model and optimizer of a run directory, restored from its last checkpoint.

    Returns `(recipe, data, model, optimizer, step)`; the model runs under the default strategy.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "recipe.yaml").is_file():
        raise RunError(f"{run_dir}: no recipe.yaml; expected a run directory written by toolkit run")
    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise RunError(f"{run_dir}/checkpoints: no checkpoint to load; was the run trained?")
    recipe = load_recipe(run_dir / "recipe.yaml", overrides)
    recipe = {**recipe, "strategy": {"type": "default"}}
    _, data, model, optimizer = setup(recipe)
    step, path = found[-1]
    restore_checkpoint(path, model, optimizer)
    return recipe, data, model, optimizer, step


def finish(run_dir: Path, recipe: dict, model, data) -> None:
    """Figures and SavedModel of a trained run."""
    if recipe["output"]["figures"]:
        write_figures(run_dir, model, data)
    if recipe["output"]["export"]:
        export(model, data, run_dir / "saved_model")


def export(model, data, path: Path) -> Path:
    """The SavedModel of a model trained on `data` (its image shape and condition width)."""
    width = data.validation["condition"].shape[-1] if "condition" in data.validation else None
    return export_saved_model(model, path, (data.image_size,) * 2 + (data.channels,), width, data.sequence)


def write_figures(run_dir: Path, model, data) -> None:
    figures = run_dir / "figures"
    if not hasattr(model, "decode"):
        write_orientation_figures(figures, model, data)
    else:
        write_reconstruction_figures(figures, model, data)
    metrics = run_dir / "metrics.csv"
    if metrics.exists():
        plots.loss_curves(read_metrics(metrics), figures / "loss_curves.png")


def training_view_directions(data, count: int = 256) -> np.ndarray:
    """Lambert points of the view directions of the first training batch."""
    rotations = tf.reshape(data.source.batch(count, TRAIN_STREAM, 0)["rotations"], [-1, 3, 3])
    return geometry.lambert_projection(geometry.view_directions(rotations)).numpy()


def write_orientation_figures(figures: Path, model, data) -> None:
    """Geodesic error histogram and Lambert maps of an orientation estimator's held-out predictions."""
    validation = data.validation
    predicted = np.asarray(model(validation["images"], training=False)).reshape(-1, 3, 3)
    true = validation["rotations"].reshape(-1, 3, 3)
    plots.error_histogram(orientation_errors(predicted, true), figures / "orientation_errors.png")
    plots.lambert_map(
        training_view_directions(data),
        figures / "orientations_lambert.png",
        "training view directions (Lambert)",
    )


def write_reconstruction_figures(figures: Path, model, data) -> None:
    validation = data.validation
    shown = {k: v[:8] for k, v in validation.items()}
    mean = reconstruct(model, shown)
    truth = shown["images"]
    if data.sequence:  # the first view of eight held-out sequences
        truth, mean = truth[:, 0], mean[:, 0]
    if data.kind == "mnist":  # plots.reconstructions draws row 0 at the bottom, as for shadows
        truth, mean = truth[:, ::-1], mean[:, ::-1]
    plots.reconstructions(
        truth, mean, figures / "reconstructions.png", "held-out: truth (top), reconstruction"
    )
    if data.kind == "shadows":
        plots.lambert_map(
            training_view_directions(data),
            figures / "orientations_lambert.png",
            "training view directions (Lambert)",
        )
    elif data.kind == "mnist":
        from toolkit.mnist_report import write_mnist_figures

        write_mnist_figures(figures, model, validation)


__all__ = ["RunError", "run"]
