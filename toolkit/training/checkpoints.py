"""Checkpoints as one .npz per step, written atomically (`toolkit.io.atomic`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from toolkit.errors import RunError
from toolkit.io.atomic import replace_atomically

PATTERN = re.compile(r"^step-(\d+)\.npz$")
EXTRA = "extra/"  # key prefix of the non-variable arrays a checkpoint carries


AUTO_SUFFIX = re.compile(r"_\d+(?=/|$)")


def variables_by_path(model, optimizer) -> dict:
    """Every model and optimizer variable, keyed by position and path.

    Keras numbers auto-named objects per process (`seed_generator_9`), so those suffixes are
    dropped; the position keeps keys unique and the path keeps them readable.
    """
    out = {f"model/{i}/{AUTO_SUFFIX.sub('', v.path)}": v for i, v in enumerate(model.variables)}
    out.update({f"optimizer/{i}/{AUTO_SUFFIX.sub('', v.path)}": v for i, v in enumerate(optimizer.variables)})
    return out


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), directory / m.group(0)) for m in map(PATTERN.match, os.listdir(directory)) if m
    ]
    return sorted(found)


def variable_values(model, optimizer) -> dict:
    """The values of `variables_by_path` as numpy arrays (local reads: no collective ops)."""
    return {name: np.asarray(v.numpy()) for name, v in variables_by_path(model, optimizer).items()}


def save_checkpoint(directory: Path, step: int, model, optimizer, keep: int, extra: dict | None = None):
    """Write the variables at `step`, then delete all but the newest `keep`; returns the new path.

    `extra` holds more numpy arrays to keep with the variables (the loop's partial-epoch sums);
    `restore_checkpoint` returns them. A write error leaves the older checkpoints as they were.
    """
    directory.mkdir(parents=True, exist_ok=True)
    values = variable_values(model, optimizer)
    values.update({f"{EXTRA}{name}": np.asarray(value) for name, value in (extra or {}).items()})
    final = directory / f"step-{step}.npz"

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:  # a handle: np.savez would add .npz to a path
            np.savez(handle, **values)

    replace_atomically(final, write)  # a crash leaves the old set or the new file, never half
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return final


def restore_checkpoint(path: Path, model, optimizer) -> dict:
    """Assign the variables saved in `path` to the built model and optimizer; return its `extra` arrays."""
    with np.load(path) as saved:
        variables = variables_by_path(model, optimizer)
        missing = sorted(set(variables) - set(saved.files))
        if missing:
            raise RunError(
                f"{path}: checkpoint lacks {len(missing)} variables (e.g. {missing[0]}); "
                f"was it written by another recipe?"
            )
        for name, variable in variables.items():
            if tuple(saved[name].shape) != tuple(variable.shape):
                raise RunError(
                    f"{path}: {name} has shape {saved[name].shape} in the checkpoint but "
                    f"{tuple(variable.shape)} in the model; was it written by another recipe?"
                )
        for name, variable in variables.items():
            variable.assign(saved[name])
        return {name[len(EXTRA) :]: saved[name] for name in saved.files if name.startswith(EXTRA)}
