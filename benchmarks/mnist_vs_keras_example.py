"""Our `mnist_vae` recipe vs the keras-io VAE example: held-out -ELBO and time per epoch.

Usage: python benchmarks/mnist_vs_keras_example.py [--epochs N] [--batch-size B] [--runs R] [--json out.json]

Both models train in this one process on the same data (the 5,000 built-in digits, the
recipe's stratified split), with the same latent size, epochs, batch size and optimizer
steps per epoch (the training images // batch size, full batches only). The example is the
keras-io "Variational AutoEncoder" (fchollet) written out plainly below and trained with
`model.fit` and Adam; ours is the recipe trained by the toolkit's own loop.

Held-out negative ELBO, nats per validation digit, two ways for both models:
- `at_mean`: pixel cross-entropy summed over the image, decoded at the posterior mean, plus
  the analytic KL of the posterior; this is the toolkit's `val_elbo` (negated).
- `mc`: the same with the reconstruction term averaged over `--mc-samples` posterior draws,
  the usual Monte Carlo ELBO.
Time per epoch: the optimizer-step loop of each epoch; the median excludes the first epoch
(tracing), which is reported separately. The example runs first, before the toolkit turns
on TensorFlow's op determinism for the rest of the process.
`--runs R` repeats the whole comparison in R fresh processes, one after another, and reports
each run's time ratio and their median, the figure the target applies to: one run's ratio
moves by several percent with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from toolkit.quiet import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from toolkit.data.mnist import load_mnist, mnist_dataset  # noqa: E402
from toolkit.recipes.loader import load_recipe  # noqa: E402

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "mnist_vae.yaml"
TARGET_ELBO_RATIO = 1.0  # ours / example, held-out -ELBO: no worse
TARGET_TIME_RATIO = 1.05  # ours / example, seconds per epoch (the median over --runs)


# --- The keras-io VAE example, as published (Keras 3, TensorFlow backend) -------------------


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        epsilon = keras.random.normal(shape=ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def example_encoder(latent_dim: int) -> keras.Model:
    """Conv 32/64 stride 2 relu, Dense 16 relu, then z_mean, z_log_var and a sample.

    Args:
        latent_dim: size of the latent code.
    """
    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def example_decoder(latent_dim: int) -> keras.Model:
    """Dense 7*7*64 relu, Conv2DTranspose 64/32 stride 2 relu, Conv2DTranspose 1 sigmoid.

    Args:
        latent_dim: size of the latent code.
    """
    inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    outputs = layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x)
    return keras.Model(inputs, outputs, name="decoder")


class VAE(keras.Model):
    """The example's VAE: binary cross-entropy summed over pixels plus KL, batch mean."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


# --- Measurement ----------------------------------------------------------------------------


class EpochClock(keras.callbacks.Callback):
    """Seconds of each epoch of `model.fit` (no validation data, so the epoch is its steps)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def example_neg_elbo(vae: VAE, images: np.ndarray, samples: int, seed: int) -> dict:
    """Held-out -ELBO of the example in nats per digit: at the posterior mean, and Monte Carlo.

    Args:
        vae: the trained example.
        images: `[N, 28, 28, 1]` validation digits.
        samples: posterior draws of the Monte Carlo estimate.
        seed: seed of those draws.
    """
    z_mean, z_log_var, _ = vae.encoder.predict(images, batch_size=500, verbose=0)
    kl = np.sum(-0.5 * (1 + z_log_var - np.square(z_mean) - np.exp(z_log_var)), axis=1)

    def cross_entropy(z):
        reconstruction = vae.decoder.predict(z, batch_size=500, verbose=0)
        return np.sum(np.asarray(keras.losses.binary_crossentropy(images, reconstruction)), axis=(1, 2))

    rng = np.random.default_rng(seed)
    draws = [
        cross_entropy(z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape).astype("float32"))
        for _ in range(samples)
    ]
    return {
        "at_mean": float(np.mean(cross_entropy(z_mean) + kl)),
        "mc": float(np.mean(np.mean(draws, axis=0) + kl)),
    }


def ours_neg_elbo(model, validation: dict, samples: int, seed: int) -> dict:
    """Held-out -ELBO of a toolkit ConditionalVAE, the same two ways as `example_neg_elbo`.

    Args:
        model: the trained model.
        validation: the DataBundle's validation dict.
        samples: posterior draws of the Monte Carlo estimate.
        seed: seed of those draws.
    """
    from toolkit.tasks.conditional_vae import evaluate

    images = validation["images"]
    rng = np.random.default_rng(seed)
    totals = []
    for _ in range(samples):
        noise = rng.standard_normal((len(images), model.latent.latent_dim)).astype("float32")
        terms = model.loss_terms({"images": images, "latent_noise": noise}, training=True)
        totals.append(np.asarray(terms["reconstruction"]) + np.asarray(terms["kl"]))
    return {"at_mean": -evaluate(model, validation)["val_elbo"], "mc": float(np.mean(totals))}


class Example:
    """The keras-io example, trained one `model.fit` epoch at a time (Adam, its own train_step)."""

    def __init__(self, splits, latent_dim: int, batch_size: int, seed: int):
        keras.utils.set_random_seed(seed)
        self.vae = VAE(example_encoder(latent_dim), example_decoder(latent_dim))
        self.vae.compile(optimizer=keras.optimizers.Adam())  # as published: default rate 1e-3
        self.train = mnist_dataset(
            splits.train_images, splits.train_labels, batch_size, shuffle=True, seed=seed, drop_remainder=True
        ).map(lambda batch: batch["images"])
        self.clock = EpochClock()
        self.epoch = 0

    def train_epoch(self) -> None:
        # fit keeps its compiled train function across calls, so only the first epoch traces.
        self.vae.fit(
            self.train,
            initial_epoch=self.epoch,
            epochs=self.epoch + 1,
            callbacks=[self.clock],
            shuffle=False,
            verbose=0,
        )  # the dataset reshuffles itself each epoch
        self.epoch += 1


class Ours:
    """The recipe's model, data and optimizer from `toolkit.runs.setup.Setup`, stepped like `train()`."""

    def __init__(self, overrides: list[str]):
        from toolkit.runs.setup import Setup
        from toolkit.training.loop import distribute, make_train_step, training_dataset

        recipe = load_recipe(RECIPE, overrides)
        setup = Setup(recipe)
        self.strategy, task, self.data = setup.strategy, setup.task, setup.data()
        self.model, optimizer = setup.model(self.data.shapes)
        config = recipe["train"]
        self.steps = config["steps_per_epoch"]
        batch = config["global_batch_size"]
        dataset = training_dataset(task, self.model, self.data, batch, config["seed"], 0)
        self.iterator = distribute(self.strategy, dataset)
        self.train_step = make_train_step(task, self.model, optimizer, self.strategy, batch)
        self.seconds: list[float] = []
        self.step = 0

    def train_epoch(self) -> None:
        from toolkit.training.loop import check_finite

        started = time.perf_counter()
        for _ in range(self.steps):  # the body of train()'s step loop: wait for the loss, check it
            *values, bad = (float(x) for x in self.train_step(self.iterator))
            self.step += 1
            check_finite(self.step, dict(zip(self.model.term_weights, values, strict=True)), bad)
        self.seconds.append(time.perf_counter() - started)


def epoch_times(seconds: list[float]) -> dict:
    """First epoch (with tracing) and the median of the others."""
    rest = seconds[1:] or seconds
    return {"first": seconds[0], "median_after_first": float(np.median(rest)), "all": seconds}


def measure(args: argparse.Namespace) -> dict:
    """Train both models, epochs interleaved, and compare them; every ratio uses numbers from this run.

    Interleaving (alternating which model goes first) spreads any load from other processes
    over both models instead of over whichever happened to run during it.
    """
    recipe = load_recipe(RECIPE)
    data, train_config = recipe["data"], recipe["train"]
    epochs = args.epochs or train_config["epochs"]
    batch_size = args.batch_size or train_config["global_batch_size"]
    splits = load_mnist(data["source"], data["path"], data["validation_fraction"], data["seed"])
    steps = len(splits.train_labels) // batch_size  # full batches only, as both pipelines draw them
    example = Example(splits, args.latent_dim, batch_size, train_config["seed"])
    ours = Ours(
        [
            f"model.latent_dim={args.latent_dim}",
            f"train.epochs={epochs}",
            f"train.global_batch_size={batch_size}",
            f"train.steps_per_epoch={steps}",
            *args.overrides,
        ]
    )
    for epoch in range(epochs):
        for model in (example, ours) if epoch % 2 == 0 else (ours, example):
            model.train_epoch()
    results = {
        "ours": {
            "neg_elbo": ours_neg_elbo(ours.model, ours.data.validation, args.mc_samples, args.seed),
            "seconds_per_epoch": epoch_times(ours.seconds),
            "parameters": int(ours.model.count_params()),
        },
        "example": {
            "neg_elbo": example_neg_elbo(example.vae, splits.val_images, args.mc_samples, args.seed),
            "seconds_per_epoch": epoch_times(example.clock.seconds),
            "parameters": example.vae.encoder.count_params() + example.vae.decoder.count_params(),
        },
    }
    elbo_ratio = results["ours"]["neg_elbo"]["at_mean"] / results["example"]["neg_elbo"]["at_mean"]
    time_ratio = (
        results["ours"]["seconds_per_epoch"]["median_after_first"]
        / results["example"]["seconds_per_epoch"]["median_after_first"]
    )
    return {
        "setup": {
            "latent_dim": args.latent_dim,
            "epochs": epochs,
            "batch_size": batch_size,
            "steps_per_epoch": steps,
            "train_images": len(splits.train_labels),
            "validation_images": len(splits.val_labels),
            "mc_samples": args.mc_samples,
            "learning_rate": {"ours": train_config["learning_rate"], "example": 1e-3},
            "our_overrides": args.overrides,
            "cpu_count": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        **results,
        "ratios": {
            "neg_elbo": elbo_ratio,
            "seconds_per_epoch": time_ratio,
            "neg_elbo_mc": results["ours"]["neg_elbo"]["mc"] / results["example"]["neg_elbo"]["mc"],
        },
        "targets": {"neg_elbo": TARGET_ELBO_RATIO, "seconds_per_epoch": TARGET_TIME_RATIO},
        "met": {
            "neg_elbo": elbo_ratio <= TARGET_ELBO_RATIO,
            "seconds_per_epoch": time_ratio <= TARGET_TIME_RATIO,
        },
    }


def print_table(result: dict) -> None:
    """One row per model, then the ratios against the targets."""
    setup = result["setup"]
    print(
        f"latent {setup['latent_dim']}, {setup['epochs']} epochs x {setup['steps_per_epoch']} steps of "
        f"{setup['batch_size']}, {setup['train_images']} training / "
        f"{setup['validation_images']} held-out digits"
    )
    print(f"{'model':<22}{'params':>9}{'-ELBO mean':>12}{'-ELBO MC':>10}{'s/epoch':>9}{'1st epoch':>11}")
    for name, label in (("ours", "toolkit mnist_vae"), ("example", "keras-io example")):
        row = result[name]
        elbo, seconds = row["neg_elbo"], row["seconds_per_epoch"]
        print(
            f"{label:<22}{row['parameters']:>9,}{elbo['at_mean']:>12.2f}{elbo['mc']:>10.2f}"
            f"{seconds['median_after_first']:>9.3f}{seconds['first']:>11.3f}"
        )
    ratios, met = result["ratios"], result["met"]
    print(
        f"ours / example -ELBO (at mean) = {ratios['neg_elbo']:.3f} (target <= {TARGET_ELBO_RATIO}: "
        f"{'met' if met['neg_elbo'] else 'MISSED'}); MC: {ratios['neg_elbo_mc']:.3f}"
    )
    print(
        f"ours / example s/epoch        = {ratios['seconds_per_epoch']:.3f} (target <= {TARGET_TIME_RATIO}: "
        f"{'met' if met['seconds_per_epoch'] else 'MISSED'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    parser.add_argument("--latent-dim", type=int, default=2, help="latent size of both models")
    parser.add_argument("--mc-samples", type=int, default=16, help="posterior draws of the MC -ELBO")
    parser.add_argument("--seed", type=int, default=0, help="seed of the MC draws")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="extra override of our recipe (repeatable), e.g. model.decoder.units=64",
    )
    parser.add_argument("--runs", type=int, default=1, help="repeat in this many fresh processes")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    result = measure(args) if args.runs == 1 else repeated(args)
    if args.runs == 1:
        print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


def one_run_arguments(args: argparse.Namespace) -> list[str]:
    """The command-line arguments of one of the `--runs`: these, less --runs and --json."""
    argv = ["--latent-dim", str(args.latent_dim), "--mc-samples", str(args.mc_samples)]
    argv += ["--seed", str(args.seed)]
    argv += ["--epochs", str(args.epochs)] if args.epochs else []
    argv += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    return argv + [a for override in args.overrides for a in ("--set", override)]


def repeated(args: argparse.Namespace) -> dict:
    """`--runs` comparisons, each in a fresh process; every run's time ratio and their median."""
    runs = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "run.json"
            command = [sys.executable, __file__, *one_run_arguments(args), "--json", str(out)]
            subprocess.run(command, check=True)
            runs.append(json.loads(out.read_text()))
        ratio = runs[-1]["ratios"]["seconds_per_epoch"]
        print(f"run {run + 1}: ours / example s/epoch = {ratio:.3f}", flush=True)
    ratios = [r["ratios"]["seconds_per_epoch"] for r in runs]
    median = float(np.median(ratios))
    met = median <= TARGET_TIME_RATIO
    print(
        f"median of {len(ratios)} runs: ours / example s/epoch = {median:.3f} "
        f"(target <= {TARGET_TIME_RATIO}: {'met' if met else 'MISSED'}); runs: "
        + ", ".join(f"{r:.3f}" for r in ratios)
    )
    return {"runs": runs, "time_ratios": ratios, "median_time_ratio": median, "met": met}


if __name__ == "__main__":
    main()
