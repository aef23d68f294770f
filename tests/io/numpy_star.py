"""A line-by-line STAR parser, the oracle of the tests of `toolkit.io.star` (which wraps starfile).

Reading types each column from its text: int64 when every value is an integer literal, float64 when every
value is a float literal, else an object array of str (so a string column of digits reads back as numbers).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

# One field of a line: a quoted string (STAR closes a quote only before whitespace or the line end),
# a comment running to the line end, or a bare word.
_FIELD = re.compile(r"""(?:"(.*?)"|'(.*?)')(?=\s|$)|(#.*)|(\S+)""")
# Python's int() and float() accept "1_000", " 1 " and non-ASCII digits; STAR numbers hold none of them.
_NOT_A_NUMBER = re.compile(r"[\s_]")


class StarFormatError(ValueError):
    """A STAR file is missing or malformed, or lacks a column a caller needs."""


def star_error(path: Path, message: str, line: int | None = None) -> StarFormatError:
    """The error of `path`, at `line` when given, on one line."""
    where = f" line {line}:" if line is not None else ""
    return StarFormatError(f"{path}:{where} {message}")


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig") as file:  # universal newlines turn CRLF into LF
            return file.read()
    except (FileNotFoundError, IsADirectoryError):
        raise star_error(path, "no such file (or it is a folder); check the path") from None
    except UnicodeDecodeError as error:
        raise star_error(path, f"byte {error.start} is not UTF-8 text; is this a STAR file?") from None


def _split_fields(path: Path, line: str, number: int) -> list[str]:
    if '"' not in line and "'" not in line and "#" not in line:
        return line.split()  # the usual RELION row, parsed fast
    fields = []
    for match in _FIELD.finditer(line):
        double, single, comment, bare = match.groups()
        if comment is not None:
            break
        if bare is None:
            fields.append(double if double is not None else single)
        elif bare[0] in "\"'":
            raise star_error(path, f"unterminated quote in {bare!r}; close it before a space", number)
        else:
            fields.append(bare)
    return fields


def _typed_array(values: list[str]) -> np.ndarray:
    if not values:
        return np.zeros(0)
    strings = np.array(values, dtype=object)
    text = "".join(values)
    if text.isascii() and not _NOT_A_NUMBER.search(text):
        for dtype in (np.int64, np.float64):
            try:
                return strings.astype(dtype)
            except (ValueError, OverflowError):
                pass
    return strings


def parse_blocks(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, list[int]]]:
    """Typed blocks and, per block, the line number of each loop row (or of the first key-value pair)."""
    text = _read_text(path)
    blocks: dict[str, dict[str, list[str]]] = {}
    row_lines: dict[str, list[int]] = {}
    block: str | None = None
    loop_columns: list[list[str]] | None = None  # value lists of the current block's loop, in label order
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped[0] == "#":
            continue
        first = stripped.split(None, 1)[0]
        if first.startswith("data_"):
            block, loop_columns = first[5:], None
            if block in blocks:
                raise star_error(path, f"a second data_{block} block; give every block its own name", number)
            blocks[block], row_lines[block] = {}, []
            continue
        if block is None:
            what = "column label" if first[0] == "_" else "text"
            raise star_error(
                path, f"{what} {first!r} outside a data block; add a data_NAME line above", number
            )
        columns, lines = blocks[block], row_lines[block]
        if first == "loop_":
            if columns:
                raise star_error(path, f"data_{block} already has columns; start a new data_ block", number)
            loop_columns = []
            continue
        fields = _split_fields(path, stripped, number)
        if first[0] == "_":
            label = fields[0][1:]
            if label in columns:
                raise star_error(path, f"column _{label} appears twice in data_{block}; remove one", number)
            if loop_columns is not None and lines:
                raise star_error(
                    path, f"_{label} after the loop rows of data_{block}; start a new block", number
                )
            if loop_columns is not None:
                if len(fields) != 1:
                    raise star_error(path, f"loop label _{label} has a value; values go on the rows", number)
                loop_columns.append(columns.setdefault(label, []))
            elif len(fields) != 2:
                count = len(fields) - 1
                raise star_error(
                    path, f"{count} values for _{label}; write _LABEL VALUE, quoting spaces", number
                )
            else:
                columns[label] = [fields[1]]
                lines[:] = lines or [number]
        elif not loop_columns:
            raise star_error(
                path, f"value {first!r} outside a loop; list _LABEL lines after loop_ first", number
            )
        elif len(fields) != len(loop_columns):
            message = f"{len(fields)} values for {len(loop_columns)} columns; quote values with spaces"
            raise star_error(path, message, number)
        else:
            for column, value in zip(loop_columns, fields):
                column.append(value)
            lines.append(number)
    typed = {name: {key: _typed_array(vals) for key, vals in cols.items()} for name, cols in blocks.items()}
    return typed, row_lines


def read_star(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Block name -> {column label: numpy column}, each column typed by its text alone."""
    return parse_blocks(Path(path))[0]
