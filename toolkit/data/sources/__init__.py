"""Data sources, one per recipe `data.type` (registered in `toolkit.recipes.spec.DATA`)."""

from toolkit.data.sources.base import BATCH_KEYS, DataBundle, DataShapes, DataSource, OrientationCondition

__all__ = ["BATCH_KEYS", "DataBundle", "DataShapes", "DataSource", "OrientationCondition"]
