"""What a recipe builds before training: strategy, task, data and model, in the order they must be made."""

from __future__ import annotations

import keras
import tensorflow as tf

from toolkit.recipes.registry import source_for, strategy_for, task_for
from toolkit.training.loop import build_for_training, check_same_recipe
from toolkit.training.optimizers import make_optimizer


class Setup:
    """The strategy, task and data source of a recipe; `data()` and `model()` build the rest.

    Args:
        recipe: the validated recipe.
        strategy: a `strategy:` section replacing the recipe's (e.g. `{"type": "default"}`
            to load a run on one device), or `None`.
    """

    def __init__(self, recipe: dict, strategy: dict | None = None):
        tf.config.experimental.enable_op_determinism()
        self.recipe = recipe
        self.strategy = strategy_for(strategy or recipe["strategy"])
        check_same_recipe(self.strategy, recipe)
        self.task = task_for(recipe)
        self.source = source_for(recipe)

    def data(self, measured: dict | None = None):
        """The training batches and validation set (`DataBundle`); `measured` reuses a run's measurements."""
        return self.source.build(self.task.orientation_condition, measured)

    def model(self, shapes, seed: int | None = None):
        """`(model, optimizer)` for data of `shapes`, every variable created under the strategy's scope."""
        train = self.recipe["train"]
        with self.strategy.scope():
            keras.utils.set_random_seed(train["seed"] if seed is None else seed)
            model = self.task.build_model(shapes)
            total = train["epochs"] * train["steps_per_epoch"]
            optimizer = make_optimizer(train["optimizer"], train["learning_rate"], train["decay"], total)
            build_for_training(self.task, model, optimizer, shapes.zeros())
        return model, optimizer
