"""From a validated recipe to its task, data source and strategy, through the schema's `build`.

Each `type:` of `model`, `data` and `strategy` is registered once, by its entry in
`toolkit.recipes.spec`; nothing here knows a particular type.
"""

from __future__ import annotations

from toolkit.recipes.spec import DATA, MODELS, STRATEGIES


def task_for(recipe: dict):
    """The task (`toolkit.tasks.base.Task`) of the recipe's `model.type`."""
    return MODELS[recipe["model"]["type"]].builder(recipe)


def source_for(recipe: dict):
    """The data source (`toolkit.data.sources.DataSource`) of the recipe's `data.type`."""
    return DATA[recipe["data"]["type"]].builder(recipe["data"])


def strategy_for(spec: dict):
    """The tf.distribute strategy of a `strategy:` section."""
    return STRATEGIES[spec["type"]].make(spec)
