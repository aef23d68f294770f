"""One custom training loop for every tf.distribute strategy.

Keras' `model.fit` fails under MultiWorkerMirroredStrategy (keras issue 20585), so the loop is
written once with `experimental_distribute_dataset`, `strategy.run` and `strategy.reduce`.
Every per-example loss term is divided by the global batch size, so the summed gradients
are the same for one replica or many. What differs between kinds of model (the batch
entries the model reads, what is attached to a batch, the held-out metrics) comes from the
run's task (`toolkit.tasks.base.Task`); the model provides `term_weights` and `loss_terms`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from toolkit.errors import NonFiniteLossError, RunError
from toolkit.training.checkpoints import save_checkpoint, variables_by_path
from toolkit.training.metrics import MetricsLog

TERM_NAMES = {"kl": "KL"}
logger = logging.getLogger("toolkit")


@dataclass
class TrainResult:
    """What a finished (or stopped) training run measured."""

    step: int
    metrics: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    samples_per_second: float = 0.0


def build_for_training(task, model, optimizer, example: dict) -> None:
    """Create the model's and optimizer's variables (call inside `strategy.scope()`)."""
    model({k: v[:2] for k, v in task.inputs(example).items()}, training=False)
    optimizer.build(model.trainable_variables)


def training_dataset(task, model, data, batch_size: int, seed: int, start: int) -> tf.data.Dataset:
    """Global batches from `start` on, with what the task attaches to each."""
    return task.training_dataset(model, data.train_dataset(batch_size, start), seed, start)


def make_train_step(task, model, optimizer, strategy, global_batch_size: int):
    """A tf.function running one distributed optimizer step.

    Returns the batch sums of every loss term in `model.term_weights` (each divided by the
    global batch size), then 1.0 when a gradient was not finite.
    """
    variables = model.trainable_variables
    weights = model.term_weights

    def replica_step(batch):
        inputs = task.inputs(batch)
        with tf.GradientTape() as tape:
            terms = model.loss_terms(inputs, training=True)
            sums = [tf.reduce_sum(terms[name]) / global_batch_size for name in weights]
            loss = tf.add_n([weight * value for weight, value in zip(weights.values(), sums, strict=True)])
        gradients = tape.gradient(loss, variables)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None])
        optimizer.apply(gradients, variables)
        return (*sums, 1.0 - tf.cast(finite, tf.float32))

    @tf.function
    def step(iterator):
        results = strategy.run(replica_step, args=(next(iterator),))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, r, axis=None) for r in results]

    return step


def check_finite(step: int, terms: dict, bad_gradients: float) -> None:
    """Raise NonFiniteLossError naming the step and the loss terms that are NaN or Inf."""
    names = [TERM_NAMES.get(name, name) for name, value in terms.items() if not np.isfinite(value)]
    if names:
        which = f"the {names[0]} term is" if len(names) == 1 else f"the {' and '.join(names)} terms are"
        raise NonFiniteLossError(f"step {step}: {which} not finite")
    if bad_gradients:
        raise NonFiniteLossError(f"step {step}: a gradient is not finite (loss terms were finite)")


def distribute(strategy, dataset: tf.data.Dataset):
    """The per-replica iterator of a dataset of global batches.

    DATA sharding (not AUTO, which looks for files first) splits every global batch across
    the workers of a MultiWorkerMirroredStrategy: each takes its own replicas' slices.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return iter(strategy.experimental_distribute_dataset(dataset.with_options(options)))


def empty_epoch_state(terms: int = 2) -> dict:
    """Running sums of the loss terms and step count of a partly done epoch, as checkpointed."""
    return {"epoch_sums": np.zeros(terms), "epoch_steps": np.zeros((), np.int64)}


def recipe_fingerprint(recipe: dict) -> int:
    """A 48-bit hash of a resolved recipe (exact in int64 and float64 alike)."""
    text = json.dumps(recipe, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def check_same_recipe(strategy, recipe: dict) -> None:
    """Raise RunError on every worker when the workers of a multi-worker run resolved different recipes.

    Call before any variable exists: workers building different models would otherwise hang
    or fail inside a collective with no word of the cause.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    mine = tf.constant([recipe_fingerprint(recipe)], tf.int64)

    def replica():
        return tf.distribute.get_replica_context().all_gather(mine, axis=0)

    gathered = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica))())[0]
    fingerprints = gathered.numpy().tolist()
    if len(set(fingerprints)) > 1:
        raise RunError(
            f"the workers resolved {len(set(fingerprints))} different recipes (one per worker: "
            f"{', '.join(f'{f:012x}' for f in fingerprints)}); give every worker the same recipe "
            "and --set overrides"
        )


def share_from_chief(strategy, model, optimizer, step: int, epoch_state: dict) -> tuple[int, dict]:
    """Every worker gets the chief's variables, `step` and `epoch_state`; returns the last two.

    One all-reduce where every replica but replica 0 (on the chief) sends zeros, so a resumed
    multi-worker run needs the checkpoint on the chief's machine only.
    """
    variables = list(variables_by_path(model, optimizer).values())
    state = empty_epoch_state(len(model.term_weights))
    state.update({k: v for k, v in epoch_state.items() if k in state})
    values = [tf.convert_to_tensor(v) for v in variables]
    values += [tf.constant(step, tf.int64)] + [tf.constant(state[k]) for k in ("epoch_sums", "epoch_steps")]

    def replica(values):
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        out = [tf.where(first, v, tf.zeros_like(v)) for v in values]
        for dtype in sorted({v.dtype for v in out}, key=lambda d: d.name):  # one all-reduce per dtype
            where = [i for i, v in enumerate(out) if v.dtype == dtype]
            summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [out[i] for i in where])
            out = [summed[where.index(i)] if i in where else v for i, v in enumerate(out)]
        return out

    shared = tf.function(lambda: strategy.run(replica, args=(values,)))()
    shared = [strategy.experimental_local_results(v)[0].numpy() for v in shared]
    for variable, value in zip(variables, shared[: len(variables)], strict=True):
        variable.assign(value)
    *_, step, sums, steps = shared
    return int(step), {"epoch_sums": sums, "epoch_steps": steps}


def train(
    task,
    model,
    data,
    recipe: dict,
    strategy: tf.distribute.Strategy,
    run,
    optimizer,
    start_step: int = 0,
    progress=None,
    is_chief: bool = True,
    epoch_state: dict | None = None,
    stop_step: int | None = None,
) -> TrainResult:
    """Train `model` (built, with `optimizer`, under `strategy.scope()`) to the recipe's last step.

    Writes metrics each epoch and checkpoints every `checkpoint_every` steps into `run`, a
    `toolkit.runs.directory.RunDirectory` (the chief only; nothing is written when `run` is
    `None`). `epoch_state` is the partial epoch restored with the checkpoint of `start_step`,
    so a resumed epoch averages all its steps. `stop_step` ends the run earlier or later than
    the recipe's last step (a last, shorter epoch ends there). Raises `NonFiniteLossError` on
    a NaN or Inf without checkpointing it, and `RunError` when the run directory cannot be
    written.
    """
    config = recipe["train"]
    batch_size = config["global_batch_size"]
    steps_per_epoch = config["steps_per_epoch"]
    total = config["epochs"] * steps_per_epoch if stop_step is None else stop_step
    is_chief = is_chief and run is not None
    weights = model.term_weights
    dataset = training_dataset(task, model, data, batch_size, config["seed"], start_step)
    iterator = distribute(strategy, dataset)
    train_step = make_train_step(task, model, optimizer, strategy, batch_size)
    log = MetricsLog(run and run.metrics, run and run.tensorboard, enabled=is_chief, start_step=start_step)
    saved = [start_step] if start_step else []

    def checkpoint(step, state):
        if is_chief:
            keep = config["keep_checkpoints"]
            save_checkpoint(run.checkpoints, step, model, optimizer, keep, state)
        saved.append(step)

    def due(step):
        return step % config["checkpoint_every"] == 0 or step == total

    state = empty_epoch_state(len(weights))
    if start_step % steps_per_epoch:
        if epoch_state and int(epoch_state.get("epoch_steps", -1)) == start_step % steps_per_epoch:
            state = {k: np.array(epoch_state[k]) for k in state}
        else:  # e.g. a checkpoint without the sums, or steps_per_epoch changed on resume
            epoch = start_step // steps_per_epoch + 1
            logger.warning(f"step {start_step}: no partial-epoch sums; epoch {epoch} averages later steps")
    result = TrainResult(step=start_step)
    train_seconds, trained = 0.0, 0
    step = start_step
    try:
        while step < total:
            epoch = step // steps_per_epoch
            if progress is not None:
                progress.start_epoch(epoch + 1, config["epochs"], steps_per_epoch)
            started = time.perf_counter()
            done_here = 0
            while step < min((epoch + 1) * steps_per_epoch, total):
                *values, bad = (float(x) for x in train_step(iterator))
                step += 1
                check_finite(step, dict(zip(weights, values, strict=True)), bad)
                state["epoch_sums"] += values
                state["epoch_steps"] += 1
                done_here += 1
                if progress is not None:
                    elapsed = time.perf_counter() - started
                    progress.update(
                        int(state["epoch_steps"]),
                        loss=float(np.dot(list(weights.values()), values)),
                        samples_per_second=done_here * batch_size / max(elapsed, 1e-9),
                    )
                if due(step) and step % steps_per_epoch:
                    checkpoint(step, state)  # mid-epoch: with the partial sums
            train_seconds += time.perf_counter() - started
            trained += done_here * batch_size
            mean = state["epoch_sums"] / state["epoch_steps"]
            row = {
                "epoch": epoch + 1,
                "step": step,
                "train_loss": float(np.dot(list(weights.values()), mean)),
            }
            row.update({f"train_{name}": float(value) for name, value in zip(weights, mean, strict=True)})
            row.update(task.evaluate(model, data.validation))
            broken = [k for k, v in row.items() if not np.isfinite(v)]
            if broken:  # the new weights are bad even if every training step was finite: do not keep them
                raise NonFiniteLossError(f"step {step}: {broken[0]} (validation) is not finite")
            # The row (and images) before the epoch's checkpoint: a checkpoint implies its rows exist.
            log.write(row)
            if is_chief:
                for name, images in task.epoch_images(model, data).items():
                    log.image(name, images, step)
            if progress is not None:
                progress.end_epoch(row)
            state = empty_epoch_state(len(weights))
            if due(step):
                checkpoint(step, state)
            result.metrics = row
    except NonFiniteLossError as error:
        kept = f"the last good checkpoint (step {saved[-1]}) is kept" if saved else "no checkpoint yet"
        raise NonFiniteLossError(f"{error}; {kept}") from None
    except OSError as error:
        raise RunError(f"{run}: cannot write the run directory ({error.strerror or error})") from None
    finally:
        log.close()
    result.step = step
    result.train_seconds = train_seconds
    result.samples_per_second = trained / train_seconds if train_seconds else 0.0
    return result
