"""Atomic file replacement: readers see the old file or the new one, never half of either.

The content is written to a hidden sibling (`.NAME.<random>.tmp`, unique per call so two writers
never share one), flushed to disk and renamed over the target; any failure, a KeyboardInterrupt
included, removes the sibling and leaves the target as it was. A crash can leave at most the
hidden sibling behind. The new file's permissions are whatever the `write` callback's own
`open` gives (a plain `open(path, "w")` follows the umask), not tempfile's 0o600.

Example:

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     path = write_text_atomically(Path(folder) / "a.json", '{"x": 1}\\n')
...     path.read_text()
'{"x": 1}\\n'
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

# fsync needs only a descriptor on POSIX, so a file created read-only can still be synced;
# Windows' _commit needs write access.
_SYNC_FLAGS = os.O_RDWR if os.name == "nt" else os.O_RDONLY


def replace_atomically(
    path: str | os.PathLike, write: Callable[[Path], object], overwrite: bool = True
) -> Path:
    """`write(temporary)` writes the content to a hidden sibling path, which then replaces `path`.

    Args:
        path: the file to write; its folder must exist.
        write: called with the temporary path; it creates and fills that file (and closes it).
        overwrite: replace an existing `path`. Default value: `True`.

    Returns:
        `path` as a `Path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False (nothing is written).
        FileNotFoundError: the folder of `path` does not exist (nothing is written).
        Whatever `write` raises, after the temporary file is removed.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist; create it first")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        write(temporary)
        descriptor = os.open(temporary, _SYNC_FLAGS)
        try:
            os.fsync(descriptor)  # on disk before the rename makes it visible
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Replace `path` with `text` (UTF-8, line ends as given) through `replace_atomically`."""
    return replace_atomically(
        path, lambda temporary: temporary.write_text(text, encoding="utf-8", newline=""), overwrite
    )
