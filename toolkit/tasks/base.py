"""The task interface: everything that differs between kinds of model.

A task is registered by its recipe `model.type` in the recipe schema
(`toolkit.recipes.spec.MODELS`, the component's `build`), which constructs it from the
validated recipe. The training loop, the run directory, export, plot and the commands ask
the task; none of them inspects the model. A new kind of model is its model class, its task
module and its schema entry.

The model a task builds follows one protocol, which the training loop relies on:
`model.term_weights` (a dict, the weight of each per-example loss term) and
`model.loss_terms(inputs, training)` (a dict with each of those terms, `[batch]`).

Batches are dicts (`toolkit.data.sources.BATCH_KEYS`): `images` always, the rest only
when the data has them. A task names what it cannot do without (`required_keys`, checked
at validation) and what its model reads (`input_keys`); true poses are one optional entry,
not an assumption of the loop.
"""

from __future__ import annotations

import re
from pathlib import Path

import tensorflow as tf

from toolkit.data.sources.base import DataBundle, DataShapes, OrientationCondition


class Task:
    """One kind of model. Subclasses set the class attributes and implement the methods.

    Args:
        recipe: the validated recipe.
    """

    #: The recipe's `model.type`.
    name = ""
    #: Batch entries without which the task cannot train (a validation error names them).
    required_keys: tuple[str, ...] = ("images",)
    #: Batch entries the model reads, when the data has them.
    input_keys: tuple[str, ...] = ("images",)
    #: Summary keys `toolkit run` prints after training, in order.
    shown_metrics: tuple[str, ...] = ()
    #: Validation metrics `toolkit compress` compares before and after compression.
    compared_metrics: tuple[str, ...] = ()
    #: The poses the model gives are in a frame of its own (learned without poses), defined up to
    #: a global rotation and a mirror: errors against given poses need a global alignment first.
    learned_frame: bool = False

    def __init__(self, recipe: dict):
        self.recipe = recipe
        self.spec = recipe["model"]

    @property
    def orientation_condition(self) -> OrientationCondition | None:
        """How the model wants orientations in `condition`, or `None` when it reads none."""
        return None

    def check(self, shapes: DataShapes) -> list[str]:
        """Errors (one line each, with key paths) for settings that contradict the data or each other."""
        return []

    def layer_errors(self, parts) -> list[str]:
        """Construct each layer once (no weights are made) so its own argument checks run now.

        `parts` holds `(part, registry, fixed)`: the `model.<part>` section, the schema registry
        of its `type`, and the arguments the task sets itself. An error names the argument's
        key path when the layer's message names the argument (`units`).
        """
        errors = []
        for part, registry, fixed in parts:
            section = self.spec[part]
            try:
                registry[section["type"]].make(section, **fixed)
            except (ValueError, TypeError) as error:
                named = re.search(r"`(\w+)`", str(error))
                where = f"{part}.{named[1]}" if named and named[1] in section else part
                errors.append(f"model.{where}: {error}")
        return errors

    def build_model(self, shapes: DataShapes):
        """The model of the recipe's `model:` section, sized for `shapes` (call under a strategy scope)."""
        raise NotImplementedError

    def inputs(self, batch: dict) -> dict:
        """The entries of `batch` the model reads."""
        return {k: v for k, v in batch.items() if k in self.input_keys}

    def training_dataset(self, model, dataset: tf.data.Dataset, seed: int, start: int) -> tf.data.Dataset:
        """The training batches with whatever the task adds to each (e.g. seeded sampling noise)."""
        return dataset

    def evaluate(self, model, validation: dict) -> dict:
        """Held-out metrics, each `val_...`, logged every epoch."""
        raise NotImplementedError

    def validation_loss(self, metrics: dict) -> float:
        """One number from `evaluate`'s metrics, lower is better (what `toolkit compress` reports)."""
        raise NotImplementedError

    def epoch_images(self, model, validation: dict) -> dict:
        """TensorBoard images logged every epoch: name -> `[N, H, W, C]` in [0, 1]."""
        return {}

    def summary(self, model, data: DataBundle, metrics: dict) -> dict:
        """Keys the task adds to `summary.json` after training, beside the last epoch's metrics."""
        return {}

    def write_outputs(self, model, data: DataBundle, run) -> dict:
        """Write the task's own files into `run` (a `RunDirectory`); returns keys for `summary.json`."""
        return {}

    def figures(self, model, data: DataBundle, directory: Path) -> None:
        """Draw the task's figures of a trained model into `directory`."""

    def export_module(self, model, shapes: DataShapes) -> tuple[tf.Module, dict]:
        """A small module around the model and its exported signatures: `(module, {name: function})`."""
        raise NotImplementedError
