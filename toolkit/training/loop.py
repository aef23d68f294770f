"""One custom training loop for every tf.distribute strategy.

Keras' `model.fit` fails under MultiWorkerMirroredStrategy (keras issue 20585), so the loop is
written once with `experimental_distribute_dataset`, `strategy.run` and `strategy.reduce`.
Every per-example loss term is divided by the global batch size, so the summed gradients
are the same for one replica or many.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from toolkit.errors import NonFiniteLossError
from toolkit.training.checkpoints import save_checkpoint
from toolkit.training.evaluate import evaluate
from toolkit.training.metrics import MetricsLog

NOISE_STREAM = 7


@dataclass
class TrainResult:
    """What a finished (or stopped) training run measured."""

    step: int
    metrics: dict = field(default_factory=dict)
    train_seconds: float = 0.0
    samples_per_second: float = 0.0


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    classes = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
    }
    return classes[name](learning_rate=learning_rate)


def with_latent_noise(dataset: tf.data.Dataset, latent_dim: int, seed: int, start: int) -> tf.data.Dataset:
    """Attach the sampling noise of each example to its batch, so it does not depend on replicas."""

    def attach(index, batch):
        size = tf.shape(batch["images"])[0]
        pair = tf.random.experimental.stateless_fold_in(tf.constant([seed, NOISE_STREAM], tf.int64), index)
        return {**batch, "latent_noise": tf.random.stateless_normal([size, latent_dim], seed=pair)}

    indices = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
    return tf.data.Dataset.zip(indices, dataset).map(attach)


def build_for_training(model, optimizer, example: dict) -> None:
    """Create the model's and optimizer's variables (call inside `strategy.scope()`)."""
    model({k: v[:2] for k, v in example.items() if k in ("images", "condition")}, training=False)
    optimizer.build(model.trainable_variables)


def make_train_step(model, optimizer, strategy, global_batch_size: int):
    """A tf.function running one distributed optimizer step; returns the summed loss terms."""
    variables = model.trainable_variables

    def replica_step(batch):
        inputs = {k: v for k, v in batch.items() if k in ("images", "condition", "latent_noise")}
        with tf.GradientTape() as tape:
            terms = model.loss_terms(inputs, training=True)
            reconstruction = tf.reduce_sum(terms["reconstruction"]) / global_batch_size
            kl = tf.reduce_sum(terms["kl"]) / global_batch_size
            loss = reconstruction + model.beta * kl
        gradients = tape.gradient(loss, variables)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients if g is not None])
        optimizer.apply(gradients, variables)
        return reconstruction, kl, 1.0 - tf.cast(finite, tf.float32)

    @tf.function
    def step(iterator):
        results = strategy.run(replica_step, args=(next(iterator),))
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, r, axis=None) for r in results]

    return step


def check_finite(step: int, reconstruction: float, kl: float, bad_gradients: float) -> None:
    terms = [name for name, value in (("reconstruction", reconstruction), ("KL", kl)) if not np.isfinite(value)]
    if terms:
        raise NonFiniteLossError(f"step {step}: the {' and '.join(terms)} term of the loss is not finite")
    if bad_gradients:
        raise NonFiniteLossError(f"step {step}: a gradient is not finite (loss terms were finite)")


def train(
    model,
    data,
    recipe: dict,
    strategy: tf.distribute.Strategy,
    run_dir: Path,
    optimizer,
    start_step: int = 0,
    progress=None,
    is_chief: bool = True,
) -> TrainResult:
    """Train `model` (built, with `optimizer`, under `strategy.scope()`) to the recipe's last step.

    Writes metrics each epoch and checkpoints every `checkpoint_every` steps into `run_dir`
    (the chief only). Raises `NonFiniteLossError` on a NaN or Inf without checkpointing it.
    """
    config = recipe["train"]
    batch_size = config["global_batch_size"]
    steps_per_epoch = config["steps_per_epoch"]
    total = config["epochs"] * steps_per_epoch
    dataset = with_latent_noise(
        data.train_dataset(batch_size, start_step), model.latent.latent_dim, config["seed"], start_step
    )
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    train_step = make_train_step(model, optimizer, strategy, batch_size)
    log = MetricsLog(run_dir, enabled=is_chief)
    log.truncate_after(start_step)

    def checkpoint(step):
        if is_chief:
            save_checkpoint(run_dir / "checkpoints", step, model, optimizer, config["keep_checkpoints"])

    result = TrainResult(step=start_step)
    train_seconds, trained = 0.0, 0
    totals = np.zeros(2)
    step = start_step
    while step < total:
        epoch = step // steps_per_epoch
        if progress is not None:
            progress.start_epoch(epoch + 1, config["epochs"], steps_per_epoch)
        started = time.perf_counter()
        totals[:] = 0
        done_in_epoch = 0
        while step < (epoch + 1) * steps_per_epoch:
            reconstruction, kl, bad = (float(x) for x in train_step(iterator))
            step += 1
            check_finite(step, reconstruction, kl, bad)
            totals += (reconstruction, kl)
            done_in_epoch += 1
            elapsed = time.perf_counter() - started
            if progress is not None:
                progress.update(
                    done_in_epoch,
                    loss=reconstruction + model.beta * kl,
                    samples_per_second=done_in_epoch * batch_size / max(elapsed, 1e-9),
                )
            if step % config["checkpoint_every"] == 0 or step == total:
                checkpoint(step)
        train_seconds += time.perf_counter() - started
        trained += done_in_epoch * batch_size
        mean = totals / done_in_epoch
        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": float(mean[0] + model.beta * mean[1]),
            "train_reconstruction": float(mean[0]),
            "train_kl": float(mean[1]),
        }
        row.update(evaluate(model, data.validation))
        log.write(row)
        if progress is not None:
            progress.end_epoch(row)
        result.metrics = row
    result.step = step
    result.train_seconds = train_seconds
    result.samples_per_second = trained / train_seconds if train_seconds else 0.0
    log.close()
    return result
