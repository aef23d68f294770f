"""`model.type: conditional_vae`: a VAE, conditioned on orientation or label when the data has one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.data.sources.base import DataBundle, DataShapes, OrientationCondition
from toolkit.layers import OrientationEncoding
from toolkit.models import ConditionalVAE, make_latent
from toolkit.recipes.spec import DECODERS, ENCODERS, SAMPLERS
from toolkit.tasks.base import Task
from toolkit.tasks.figures import training_views_map
from toolkit.training.evaluate import batches, compiled_per_model, images_2d

#: Folded into the training seed for the latent sampling noise of each batch.
NOISE_STREAM = 7


class ConditionalVAETask(Task):
    """The poster's conditional VAE of shadows, and the VAE of MNIST digits.

    Held-out metrics: `val_elbo` in nats per example (beta = 1, higher is better), its two
    terms, and `val_mse` / `val_ssim` of the reconstruction through the posterior mean; a
    conditional model adds `val_ssim_prior`, the image decoded from the prior mean and the
    true condition. Labelled data adds how the latent means cluster by label.
    """

    name = "conditional_vae"
    input_keys = ("images", "condition", "latent_noise")
    shown_metrics = ("val_elbo", "val_mse", "val_ssim", "val_ssim_prior", "train_seconds")
    compared_metrics = ("val_mse", "val_ssim")

    @property
    def orientation_condition(self) -> OrientationCondition:
        return OrientationCondition(self.spec["condition"], self.spec["euler_convention"])

    def check(self, shapes: DataShapes) -> list[str]:
        spec, errors = self.spec, []
        upsampling = len(spec["decoder"]["filters"])
        if shapes.image_size % 2**upsampling:
            if shapes.image_size_key:
                errors.append(
                    f"{shapes.image_size_key}: {shapes.image_size} must be a multiple of "
                    f"2 ** len(model.decoder.filters) = {2**upsampling}; change one of them"
                )
            else:
                errors.append(
                    f"model.decoder.filters: {upsampling} upsampling steps do not divide the "
                    f"{shapes.image_size}-pixel images; use fewer filters"
                )
        if spec["likelihood"]["type"] == "bernoulli" and not shapes.unit_intensities:
            errors.append(
                "model.likelihood.type: bernoulli needs intensities in [0, 1]; use gaussian for this data"
            )
        sampler = spec["sampler"]["type"]
        if sampler == "LSTMSampler" and shapes.sequence_length is None:
            errors.append(
                "model.sampler.type: LSTMSampler reads sequences; this data has single images, use Dense"
            )
        if sampler == "Dense" and shapes.sequence_length not in (None, 1):
            errors.append(
                "model.sampler.type: Dense reads one shadow, but data.sequence_length is "
                f"{shapes.sequence_length}; use LSTMSampler or sequence_length: 1"
            )
        parts = (
            ("encoder", ENCODERS, {}),
            ("sampler", SAMPLERS, {"latent_dim": spec["latent_dim"]}),
            ("decoder", DECODERS, {"image_size": 2 ** len(spec["decoder"]["filters"])}),
        )
        return errors + self.layer_errors(parts)

    def build_model(self, shapes: DataShapes) -> ConditionalVAE:
        spec = self.spec
        latent_dim = spec["latent_dim"]
        encoder = ENCODERS[spec["encoder"]["type"]].make(spec["encoder"], name="encoder")
        sampler = SAMPLERS[spec["sampler"]["type"]].make(
            spec["sampler"], latent_dim=latent_dim, name="sampler"
        )
        decoder = DECODERS[spec["decoder"]["type"]].make(
            spec["decoder"], image_size=shapes.image_size, channels=shapes.channels, name="decoder"
        )
        encoding = (
            OrientationEncoding(spec["condition"], name="orientation_encoding")
            if shapes.condition == "orientation"
            else None
        )
        return ConditionalVAE(
            encoder=encoder,
            sampler=sampler,
            latent=make_latent(latent_dim, seed=self.recipe["train"]["seed"]),
            decoder=decoder,
            condition_encoding=encoding,
            likelihood=spec["likelihood"]["type"],
            likelihood_scale=spec["likelihood"].get("scale", 0.1),
            beta=spec["beta"],
            name=self.recipe["name"].replace("-", "_"),
        )

    def training_dataset(self, model, dataset, seed, start):
        """Each batch with its latent sampling noise, so the noise does not depend on the replicas."""
        latent_dim = model.latent.latent_dim

        def attach(index, batch):
            size = tf.shape(batch["images"])[0]
            pair = tf.random.experimental.stateless_fold_in(
                tf.constant([seed, NOISE_STREAM], tf.int64), index
            )
            return {**batch, "latent_noise": tf.random.stateless_normal([size, latent_dim], seed=pair)}

        indices = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
        return tf.data.Dataset.zip(indices, dataset).map(attach)

    def evaluate(self, model, validation: dict) -> dict:
        return evaluate(model, validation)

    def validation_loss(self, metrics: dict) -> float:
        """The negative ELBO per example."""
        return -metrics["val_elbo"]

    def epoch_images(self, model, data: DataBundle) -> dict:
        """A few validation images (left) beside their reconstruction (right)."""
        shown = {k: v[:4] for k, v in self.inputs(data.validation).items()}
        truth, mean = viewable(data.shapes, shown["images"], reconstruct(model, shown), y_up_display=False)
        return {"reconstructions": np.clip(np.concatenate([truth, mean], axis=2), 0.0, 1.0)}

    def summary(self, model, data: DataBundle, metrics: dict) -> dict:
        if "labels" not in data.validation:
            return {}
        from toolkit.analysis.digits import digit_metrics

        return digit_metrics(model, data.validation, metrics, data.labelled_training)

    def figures(self, model, data: DataBundle, directory: Path) -> None:
        from toolkit.figures import plots

        shown = {k: v[:8] for k, v in self.inputs(data.validation).items()}
        truth, mean = viewable(data.shapes, shown["images"], reconstruct(model, shown), y_up_display=True)
        plots.reconstructions(
            truth, mean, directory / "reconstructions.png", "held-out: truth (top), reconstruction"
        )
        if "rotations" in data.shapes.keys:
            training_views_map(data, directory)
        if "labels" in data.validation:
            from toolkit.analysis.digits import write_digit_figures

            write_digit_figures(directory, model, data.validation)

    def export_module(self, model, shapes: DataShapes):
        module = ExportedVAE(model, shapes)
        return module, {"encode": module.encode, "decode": module.decode}


def viewable(shapes: DataShapes, truth, mean, y_up_display: bool):
    """The first view of each example, rows ordered for a display whose row 0 is at the bottom or top."""
    if shapes.sequence_length is not None:
        truth, mean = truth[:, 0], mean[:, 0]
    if shapes.y_up != y_up_display:
        truth, mean = truth[:, ::-1], mean[:, ::-1]
    return truth, mean


class ExportedVAE(tf.Module):
    """A small module around a trained ConditionalVAE with fixed input signatures.

    `encode(images, condition)` returns the posterior `loc` and `scale`; `decode(latent,
    condition)` returns the mean `images`. No sampling happens inside, so both are
    deterministic. A model without a condition takes no `condition` argument.
    """

    def __init__(self, model, shapes: DataShapes):
        super().__init__(name="toolkit_export")
        self.model = model
        time = [] if shapes.sequence_length is None else [None]
        images = tf.TensorSpec(shapes.open_batch_shape, tf.float32, name="images")
        latent = tf.TensorSpec([None, model.latent.latent_dim], tf.float32, name="latent")
        if shapes.condition_width is None:
            self.encode = tf.function(lambda images: self._encode(images, None), input_signature=[images])
            self.decode = tf.function(lambda latent: self._decode(latent, None), input_signature=[latent])
        else:
            condition = tf.TensorSpec([None, *time, shapes.condition_width], tf.float32, name="condition")
            self.encode = tf.function(self._encode, input_signature=[images, condition])
            self.decode = tf.function(self._decode, input_signature=[latent, condition])

    def _encode(self, images, condition):
        inputs = {"images": images} if condition is None else {"images": images, "condition": condition}
        loc, scale = self.model.encode(inputs)
        return {"loc": loc, "scale": scale}

    def _decode(self, latent, condition):
        return {"images": self.model.decode(latent, condition)}


def evaluate(model, validation: dict, batch_size: int = 256, max_val: float = 1.0) -> dict:
    """Validation metrics of a ConditionalVAE, averaged over examples (a sequence is one example)."""
    inputs = {k: v for k, v in validation.items() if k in ("images", "condition")}
    sums = {"reconstruction": 0.0, "kl": 0.0, "mse": 0.0, "ssim": 0.0, "ssim_prior": 0.0}
    count = 0
    for batch in batches(inputs, batch_size):
        terms = loss_terms(model, batch)
        truth, mean = images_2d(batch["images"]), images_2d(terms["mean"])
        n = len(batch["images"])
        per_image = n and truth.shape[0] // n
        sums["reconstruction"] += float(tf.reduce_sum(terms["reconstruction"]))
        sums["kl"] += float(tf.reduce_sum(terms["kl"]))
        sums["mse"] += (
            float(tf.reduce_mean(tf.square(truth - mean), axis=[1, 2, 3]).numpy().sum()) / per_image
        )
        sums["ssim"] += float(tf.reduce_sum(tf.image.ssim(truth, mean, max_val))) / per_image
        if "condition" in batch:
            prior = images_2d(decode_prior(model, batch["condition"]))
            sums["ssim_prior"] += float(tf.reduce_sum(tf.image.ssim(truth, prior, max_val))) / per_image
        count += n
    out = {
        "val_elbo": -(sums["reconstruction"] + sums["kl"]) / count,
        "val_reconstruction": sums["reconstruction"] / count,
        "val_kl": sums["kl"] / count,
        "val_mse": sums["mse"] / count,
        "val_ssim": sums["ssim"] / count,
    }
    if "condition" in inputs:
        out["val_ssim_prior"] = sums["ssim_prior"] / count
    return out


@compiled_per_model
def loss_terms(model, batch):
    return model.loss_terms(batch, training=False)


@compiled_per_model
def decode_prior(model, condition):
    latent = tf.zeros([tf.shape(condition)[0], model.latent.latent_dim])
    return model.decode(latent, condition)


def reconstruct(model, inputs: dict) -> np.ndarray:
    """Posterior-mean reconstructions (decoded means) of a batch, as numpy."""
    return loss_terms(model, {k: v for k, v in inputs.items() if k in ("images", "condition")})[
        "mean"
    ].numpy()
