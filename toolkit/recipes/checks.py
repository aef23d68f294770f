"""Second validation pass: settings that are fine alone but not together.

The data source checks its own section, the task checks the model against the shapes the
data hands it; what is checked here is only what neither can see alone: that the data has
every batch entry the task needs.
"""

from __future__ import annotations

from toolkit.recipes.registry import source_for, task_for


def cross_checks(recipe: dict) -> list[str]:
    """Errors (one line each, with key paths) for contradictory settings in a valid recipe."""
    source, task = source_for(recipe), task_for(recipe)
    errors = source.check()
    shapes = source.shapes(task.orientation_condition)
    missing = [key for key in task.required_keys if key not in shapes.keys]
    if missing:
        return errors + [
            f"model.type: {task.name} needs {' and '.join(missing)} in every batch, which data.type "
            f"{source.name} does not give (it gives {', '.join(shapes.keys)}); choose data with "
            f"{' and '.join(missing)}"
        ]
    return errors + task.check(shapes)
