"""Tasks: one module per kind of model, registered by recipe `model.type` in `toolkit.recipes.spec.MODELS`."""

from toolkit.tasks.base import Task

__all__ = ["Task"]
