"""Atomic file replacement: readers see the old file or the new one, never half of either.

The content is written to a hidden sibling (`.NAME.<random>.tmp`), flushed to disk and
renamed over the target; any failure, a KeyboardInterrupt included, removes the sibling
and leaves the target as it was. A crash can leave at most the hidden sibling behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path, write: Callable[[Path], object], overwrite: bool = True) -> Path:
    """`write(temporary)` writes the content to a hidden sibling path, which then replaces `path`.

    Args:
        path: the file to write.
        write: called with the temporary path; it creates and fills that file.
        overwrite: replace an existing `path`. Default value: `True`.

    Returns:
        `path` as a `Path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False (nothing is written).
        FileNotFoundError: the folder of `path` does not exist.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist; create it first")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
