"""`--shard I/N`: one of N processes takes every N-th particle, so a scheduler can run N at once."""

from __future__ import annotations

import re

import numpy as np

from toolkit.errors import RunError

_SHARD = re.compile(r"(\d+)/(\d+)")


def shard_rows(shard: str | None, count: int) -> np.ndarray:
    """The rows of shard "I/N" (1 <= I <= N) of `count` particles: I - 1, I - 1 + N, ...; all for None.

    Example:
        >>> shard_rows("2/3", 8).tolist()
        [1, 4, 7]
    """
    if shard is None:
        return np.arange(count)
    match = _SHARD.fullmatch(shard.strip())
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise RunError(f"--shard: expected I/N with 1 <= I <= N, e.g. 1/4, got {shard!r}")
    return np.arange(int(match[1]) - 1, count, int(match[2]))
