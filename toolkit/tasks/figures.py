"""Figures more than one task draws."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from toolkit import geometry
from toolkit.data.sources.base import DataBundle


def training_views_map(data: DataBundle, directory: Path, count: int = 256) -> Path:
    """The Lambert map of the view directions of the first `count` training examples."""
    from toolkit.figures import plots

    batch = next(iter(data.train_dataset(count, 0)))
    rotations = tf.reshape(batch["rotations"], [-1, 3, 3])
    points = geometry.lambert_projection(geometry.view_directions(rotations)).numpy()
    return plots.lambert_map(
        points, directory / "orientations_lambert.png", "training view directions (Lambert)"
    )
