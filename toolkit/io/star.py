"""RELION STAR files through starfile, as numpy columns (`toolkit.io.particles` reads particle tables).

starfile parses (pandas types each column: int64, float64, else str); this module turns its tables into
numpy columns and its failures into one-line errors that name the file, and the block and row where the
fault lies (a row with too few values, the common hand-edit slip, reads in pandas as missing values, so
a loop may hold no NaN). starfile's grammar is narrower than STAR's: a key-value line takes no trailing
comment, and single quotes read as double quotes, so strings written here hold neither kind of quote.
"""

from __future__ import annotations

import linecache
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from toolkit.io.atomic import replace_atomically


class StarFormatError(ValueError):
    """A STAR file is missing or malformed, or lacks a column a caller needs."""


def star_error(path: Path, message: str, block: str | None = None, row: int | None = None) -> StarFormatError:
    """The error of `path`, at the 0-based `row` of `data_block` when given, on one line."""
    where = f" data_{block}" if block is not None else ""
    where += f" row {row + 1}" if row is not None else ""
    return StarFormatError(f"{path}:{where}{':' if where else ''} {message}")


def _column(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
        return values.to_numpy(np.int64)
    if pd.api.types.is_float_dtype(values):
        return values.to_numpy(np.float64)
    return np.array([str(value) for value in values.tolist()], dtype=object)


def _check_complete(path: Path, name: str, frame: pd.DataFrame) -> None:
    """A short row reads in pandas as missing values at its end: name the first one's row and column."""
    missing = frame.isna().to_numpy()
    if missing.any():
        row, column = (int(i) for i in np.argwhere(missing)[0])
        raise star_error(
            path,
            f"no value for _{frame.columns[column]} (a short row, or NaN); give each row a value per column",
            name,
            row,
        )


def read_star(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read every data block of a STAR file with starfile.

    Args:
        path: the STAR file.

    Returns:
        Block name (without "data_"; "" for a bare "data_") -> {column label without the leading "_":
        values}. A loop gives equal-length 1-D arrays, a key-value block length-1 arrays. A column is int64
        when every value is an integer, float64 when every value is a number, else an object array of str.

    Raises:
        StarFormatError: the file is missing, not text starfile can parse, or a loop row has too few
            values; the message names the block and row.
    """
    path = Path(path)
    if not path.is_file():
        raise star_error(path, "no such file (or it is a folder); check the path")
    try:
        tables = starfile.read(path, always_dict=True)
    except UnicodeDecodeError as error:
        raise star_error(path, f"byte {error.start} is not UTF-8 text; is this a STAR file?") from None
    except (ValueError, TypeError, IndexError, KeyError, pd.errors.ParserError) as error:
        reason = " ".join(str(error).split())
        raise star_error(
            path, f"starfile cannot parse it ({reason}); check its loops' rows and labels"
        ) from None
    finally:
        # starfile reads lines through linecache and clears it only after a successful parse, so a
        # failed one would leave this file's old text for the next read of the same path.
        linecache.cache.pop(str(path), None)
    blocks = {}
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            _check_complete(path, name, table)
            blocks[name] = {str(label): _column(table[label]) for label in table.columns}
        else:  # a key-value block
            blocks[name] = {str(label): _column(pd.Series([value])) for label, value in table.items()}
    return blocks


def _frame(name: str, columns: Mapping[str, Sequence]) -> pd.DataFrame:
    labels, arrays = [], []
    for label, values in columns.items():
        label = str(label).removeprefix("_")
        if not label or any(c.isspace() for c in label):
            raise ValueError(f"data_{name}: column label {label!r} must be non-empty and without spaces")
        array = np.asarray(values)
        if array.ndim > 1:
            raise ValueError(f"data_{name} column {label} has shape {array.shape}; a column must be 1-D")
        array = array.reshape(-1)
        if array.dtype.kind == "f":
            array = array.astype(np.float64)  # float32 0.1 is written as the float64 it equals
            if np.isnan(array).any():
                raise ValueError(f"data_{name} column {label} holds NaN, which a loop read here may not")
        elif array.dtype.kind in "OUS":
            array = np.array([_text(value, name, label) for value in array.tolist()], dtype=object)
        labels.append(label)
        arrays.append(array)
    if len({len(array) for array in arrays}) > 1:
        lengths = ", ".join(f"{label}: {len(array)}" for label, array in zip(labels, arrays))
        raise ValueError(f"data_{name}: columns differ in length ({lengths}); give each one value per row")
    return pd.DataFrame(dict(zip(labels, arrays)), columns=labels)


def _text(value: object, block: str, label: str) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    if any(c in text for c in "\n\r\t\"'"):
        raise ValueError(f"data_{block} column {label}: {text!r} holds a quote, a tab or a line break")
    if "#" in text or text.startswith(("_", "data_", "loop_")) and " " not in text:
        return f'"{text}"'  # starfile quotes only strings with spaces; these would read as STAR syntax
    return text


def _shortest(value: float) -> str:
    return repr(float(value))  # the shortest text that reads back as the same float64


def write_star(path: str | os.PathLike, blocks: Mapping[str, Mapping], overwrite: bool = False) -> Path:
    """Write data blocks as RELION-style loops with starfile, atomically (a temporary sibling, renamed).

    Floats are written as the shortest text that reads back as the same float64; strings with spaces are
    quoted by starfile, strings that would read as STAR syntax (a "#", a leading "_") are quoted here.

    Args:
        path: the STAR file to write; its folder must exist.
        blocks: block name (without "data_") -> {column label (leading "_" optional): values}; the columns of
            a block have equal lengths (a scalar counts as one value).
        overwrite: replace an existing file. Default value: False.

    Returns:
        The path written.

    Raises:
        FileExistsError: the file exists and overwrite is False (it is left unchanged).
        ValueError: a block name or column label holds spaces, columns differ in length, a float is NaN or
            a string holds a quote, a tab or a line break.
    """
    frames = {}
    for name, columns in blocks.items():
        if any(c.isspace() for c in str(name)):
            raise ValueError(f"block name {name!r} must not hold spaces")
        frames[str(name)] = _frame(str(name), columns)

    def write(temporary: Path) -> None:
        starfile.write(frames, temporary, float_format=_shortest)

    return replace_atomically(path, write, overwrite=overwrite)
