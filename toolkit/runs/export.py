"""SavedModel export: the task's small module with named, deterministic signatures."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf


def export_saved_model(task, model, shapes, path: Path) -> list[str]:
    """Write the SavedModel of `task.export_module(model, shapes)` to `path`; returns its signature names."""
    module, signatures = task.export_module(model, shapes)
    tf.saved_model.save(module, str(path), signatures=signatures)
    return list(signatures)
