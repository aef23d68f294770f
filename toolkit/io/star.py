"""RELION STAR files: data blocks as numpy columns, and particle tables joined with their optics groups.

Reading types each column from its text: int64 when every value is an integer literal, float64 when every
value is a float literal, else an object array of str (so a string column of digits reads back as numbers).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# One field of a line: a quoted string (STAR closes a quote only before whitespace or the line end),
# a comment running to the line end, or a bare word.
_FIELD = re.compile(r"""(?:"(.*?)"|'(.*?)')(?=\s|$)|(#.*)|(\S+)""")
# Python's int() and float() accept "1_000", " 1 " and non-ASCII digits; STAR numbers hold none of them.
_NOT_A_NUMBER = re.compile(r"[\s_]")
# A string written without quotes must not read back as a comment, a label, a quote or a block keyword.
_BARE_WORD = re.compile(r"(?!data_|loop_)[^\s\"'#_]\S*")
_IMAGE_NAME = re.compile(r"(\d+)@(.+)", re.ASCII)
_CTF_LABELS = {
    "defocus_u": "rlnDefocusU",
    "defocus_v": "rlnDefocusV",
    "defocus_angle": "rlnDefocusAngle",
    "voltage": "rlnVoltage",
    "spherical_aberration": "rlnSphericalAberration",
    "amplitude_contrast": "rlnAmplitudeContrast",
}
_OPTICS_CTF_KEYS = ("voltage", "spherical_aberration", "amplitude_contrast")


class StarFormatError(ValueError):
    """A STAR file is missing or malformed, or lacks a column a caller needs."""


def _error(path: Path, message: str, line: int | None = None) -> StarFormatError:
    where = f" line {line}:" if line is not None else ""
    return StarFormatError(f"{path}:{where} {message}")


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8-sig") as file:  # universal newlines turn CRLF into LF
            return file.read()
    except (FileNotFoundError, IsADirectoryError):
        raise _error(path, "no such file (or it is a folder); check the path") from None
    except UnicodeDecodeError as error:
        raise _error(path, f"byte {error.start} is not UTF-8 text; is this a STAR file?") from None


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
            raise _error(path, f"unterminated quote in {bare!r}; close it before a space", number)
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


def _parse(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, list[int]]]:
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
                raise _error(path, f"a second data_{block} block; give every block its own name", number)
            blocks[block], row_lines[block] = {}, []
            continue
        if block is None:
            what = "column label" if first[0] == "_" else "text"
            raise _error(path, f"{what} {first!r} outside a data block; add a data_NAME line above", number)
        columns, lines = blocks[block], row_lines[block]
        if first == "loop_":
            if columns:
                raise _error(path, f"data_{block} already has columns; start a new data_ block", number)
            loop_columns = []
            continue
        fields = _split_fields(path, stripped, number)
        if first[0] == "_":
            label = fields[0][1:]
            if label in columns:
                raise _error(path, f"column _{label} appears twice in data_{block}; remove one", number)
            if loop_columns is not None and lines:
                raise _error(path, f"_{label} after the loop rows of data_{block}; start a new block", number)
            if loop_columns is not None:
                if len(fields) != 1:
                    raise _error(path, f"loop label _{label} has a value; values go on the rows", number)
                loop_columns.append(columns.setdefault(label, []))
            elif len(fields) != 2:
                count = len(fields) - 1
                raise _error(path, f"{count} values for _{label}; write _LABEL VALUE, quoting spaces", number)
            else:
                columns[label] = [fields[1]]
                lines[:] = lines or [number]
        elif not loop_columns:
            raise _error(path, f"value {first!r} outside a loop; list _LABEL lines after loop_ first", number)
        elif len(fields) != len(loop_columns):
            message = f"{len(fields)} values for {len(loop_columns)} columns; quote values with spaces"
            raise _error(path, message, number)
        else:
            for column, value in zip(loop_columns, fields):
                column.append(value)
            lines.append(number)
    typed = {name: {key: _typed_array(vals) for key, vals in cols.items()} for name, cols in blocks.items()}
    return typed, row_lines


def read_star(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """Read every data block of a STAR file.

    Args:
        path: the STAR file.

    Returns:
        Block name (without "data_"; "" for a bare "data_") -> {column label without the leading "_":
        values}. A loop gives equal-length 1-D arrays, a key-value block length-1 arrays. A column is int64
        when every value is an integer literal, float64 when every value is a float literal (an empty column
        too), else an object array of str.

    Raises:
        StarFormatError: the file is missing or malformed; the message names the line.
    """
    return _parse(Path(path))[0]


def _quote(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise ValueError(f"string {text!r} holds a line break, which a STAR value cannot")
    if _BARE_WORD.fullmatch(text):
        return text
    for quote in "\"'":
        if not re.search(quote + r"(\s|$)", text):
            return quote + text + quote
    raise ValueError(f"string {text!r} holds both quote characters before spaces; it cannot be quoted")


def _format_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float64
    return _quote(str(value))


def _format_column(values: Sequence | np.ndarray, where: str) -> list[str]:
    array = np.asarray(values)
    if array.ndim > 1:
        raise ValueError(f"{where} has shape {array.shape}; a column must be 1-D")
    if array.dtype.kind == "f":
        array = array.astype(np.float64)  # float32 0.1 is written as the float64 it equals
    return [_format_value(value) for value in array.reshape(-1).tolist()]  # tolist gives Python scalars


def _loop_lines(block: str, columns: Mapping[str, Sequence]) -> list[str]:
    labels, texts = [], []
    for label, values in columns.items():
        label = str(label).removeprefix("_")
        if not label or re.search(r"\s", label):
            raise ValueError(f"data_{block}: column label {label!r} must be non-empty and without spaces")
        labels.append(label)
        texts.append(_format_column(values, f"data_{block} column {label}"))
    if len({len(text) for text in texts}) > 1:
        lengths = ", ".join(f"{label}: {len(text)}" for label, text in zip(labels, texts))
        raise ValueError(f"data_{block}: columns differ in length ({lengths}); give each one value per row")
    widths = [max(map(len, text), default=0) for text in texts]
    header = ["loop_"] + [f"_{label} #{k}" for k, label in enumerate(labels, start=1)]
    rows = [" ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in zip(*texts)]
    return header + rows


def _write_atomically(path: Path, text: str, overwrite: bool) -> Path:
    if not overwrite and path.exists():
        raise FileExistsError(f"{path}: already exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: folder {path.parent} does not exist; create it first")
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        # os.open with mode 0o666 leaves the permissions to the umask (tempfile would make them 0o600).
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with open(descriptor, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_star(path: str | os.PathLike, blocks: Mapping[str, Mapping], overwrite: bool = False) -> Path:
    """Write data blocks as RELION-style loops, atomically (a temporary file in the same folder, renamed).

    Floats are written as Python's repr, the shortest text that reads back as the same float64; strings that
    are empty, hold whitespace or could read as STAR syntax are quoted.

    Args:
        path: the STAR file to write; its folder must exist.
        blocks: block name (without "data_") -> {column label (leading "_" optional): values}; the columns of
            a block have equal lengths (a scalar counts as one value).
        overwrite: replace an existing file. Default value: False.

    Returns:
        The path written.

    Raises:
        FileExistsError: the file exists and overwrite is False (it is left unchanged).
        ValueError: a block name or column label holds spaces, columns differ in length or a value cannot be
            written on one line.
    """
    lines: list[str] = []
    for name, columns in blocks.items():
        if re.search(r"\s", str(name)):
            raise ValueError(f"block name {name!r} must not hold spaces")
        lines += [f"data_{name}", "# version 30001", ""]
        if len(columns):  # len, not truth: a DataFrame has no truth value
            lines += _loop_lines(str(name), columns)
        lines.append("")
    return _write_atomically(Path(path), "\n".join(lines) + "\n", overwrite)


@dataclass(frozen=True, eq=False)
class Particles:
    """The particles of a RELION STAR file, with values taken from each particle's optics group.

    Attributes:
        image_names: the _rlnImageName values as written, e.g. "000001@particles.mrcs".
        image_indices: int64 [N], 0-based slice of each particle in its stack ("000001@" -> 0).
        stack_paths: the stack of each particle, joined to the STAR file's folder when relative.
        angles: float64 [N, 3] RELION rot, tilt, psi in degrees (a missing one is 0); None without any.
        pixel_size: float64 [N] Angstrom/pixel; 0.0 where the file gives none.
        ctf: float64 [N] arrays defocus_u, defocus_v (Angstrom), defocus_angle (degrees), voltage (kV),
            spherical_aberration (mm), amplitude_contrast; a missing defocus_v equals defocus_u, a missing
            defocus_angle is 0 and other missing fields are NaN. None without _rlnDefocusU.
        origins: float64 [N, 2] x, y shift in Angstrom (NaN for pixel shifts without a pixel size); None
            without origin columns.
    """

    image_names: list[str]
    image_indices: np.ndarray
    stack_paths: list[Path]
    angles: np.ndarray | None
    pixel_size: np.ndarray
    ctf: dict[str, np.ndarray] | None
    origins: np.ndarray | None


def _optics_rows(path: Path, particles: dict, optics: dict, lines: list[int], count: int) -> np.ndarray:
    """The data_optics row of each particle's optics group."""
    n_groups = len(next(iter(optics.values())))
    groups = optics.get("rlnOpticsGroup", np.arange(1, n_groups + 1))
    row_of_group = {group: row for row, group in enumerate(groups.tolist())}
    if "rlnOpticsGroup" not in particles:
        if n_groups == 1:
            return np.zeros(count, np.int64)
        raise _error(path, f"no _rlnOpticsGroup column to choose among {n_groups} optics groups")
    particle_groups = particles["rlnOpticsGroup"]
    rows = np.empty(count, np.int64)
    for group in np.unique(particle_groups).tolist():
        members = particle_groups == group
        if group not in row_of_group:
            known = ", ".join(map(str, row_of_group)) or "none"
            message = f"optics group {group} has no row in data_optics (groups there: {known}); add or fix it"
            raise _error(path, message, lines[int(np.argmax(members))])
        rows[members] = row_of_group[group]
    return rows


def read_particles(path: str | os.PathLike) -> Particles:
    """Read a RELION particle STAR file: 3.1+ (data_optics and data_particles) or 3.0 (a single loop).

    Args:
        path: the STAR file.

    Returns:
        The particles of data_particles, or else of the first block with an _rlnImageName column.

    Raises:
        StarFormatError: the file is missing or malformed, no block has _rlnImageName, an image name is not
            "N@stack" with N >= 1, a particle's optics group has no row in data_optics, or a numeric column
            holds text.
    """
    path = Path(path)
    blocks, row_lines = _parse(path)
    holders = [name for name, columns in blocks.items() if "rlnImageName" in columns]
    if not holders:
        found = ", ".join(f"data_{name}" for name in blocks) or "none"
        raise _error(path, f"no block has _rlnImageName (blocks found: {found}); pass a particle STAR file")
    name = "particles" if "particles" in holders else holders[0]
    particles, lines = blocks[name], row_lines[name]
    image_names = [str(value) for value in particles["rlnImageName"].tolist()]
    count = len(image_names)
    image_indices = np.empty(count, np.int64)
    folder, stack_of = path.absolute().parent, {}
    stack_paths = []
    for i, image in enumerate(image_names):
        match = _IMAGE_NAME.fullmatch(image)
        if match is None or int(match[1]) < 1:
            raise _error(path, f"bad image name {image!r}; write it as N@STACK with slice N >= 1", lines[i])
        image_indices[i] = int(match[1]) - 1
        stack_paths.append(stack_of.setdefault(match[2], folder / match[2]))  # "/" keeps absolute paths
    optics = blocks.get("optics") if name != "optics" else None
    optics_rows = _optics_rows(path, particles, optics, lines, count) if optics else None

    def column(label: str, default: float | None = None) -> np.ndarray | None:
        """Float64 values from each particle's row or optics group; default (or None) if absent."""
        if label in particles:
            values = particles[label]
        elif optics_rows is not None and label in optics:
            values = optics[label][optics_rows]
        else:
            return None if default is None else np.full(count, default)
        try:
            return values.astype(np.float64)
        except ValueError:
            raise _error(path, f"_{label} holds text; it must be numeric") from None

    def stacked(*labels: str) -> np.ndarray | None:
        """[N, len(labels)] values, 0 for a missing label; None if all are missing."""
        if all(column(label) is None for label in labels):
            return None
        return np.stack([column(label, 0.0) for label in labels], axis=1)

    angles = stacked("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
    pixel_size = column("rlnImagePixelSize")
    if pixel_size is None:  # RELION 3.0: detector pixel in micrometre over magnification
        detector, magnification = column("rlnDetectorPixelSize"), column("rlnMagnification")
        if detector is not None and magnification is not None:
            positive = magnification > 0
            pixel_size = np.where(positive, detector * 1e4 / np.where(positive, magnification, 1.0), 0.0)
    if pixel_size is None:
        pixel_size = np.zeros(count)
    ctf = None
    if column("rlnDefocusU") is not None:
        ctf = {key: column(label, np.nan) for key, label in _CTF_LABELS.items()}
        if column("rlnDefocusV") is None:
            ctf["defocus_v"] = ctf["defocus_u"].copy()
        ctf["defocus_angle"] = column("rlnDefocusAngle", 0.0)
    origins = stacked("rlnOriginXAngst", "rlnOriginYAngst")
    pixel_origins = stacked("rlnOriginX", "rlnOriginY")  # RELION 3.0, in pixels
    if origins is None and pixel_origins is not None:
        origins = pixel_origins * np.where(pixel_size > 0, pixel_size, np.nan)[:, None]
    return Particles(image_names, image_indices, stack_paths, angles, pixel_size, ctf, origins)


def image_name(index: int, stack: str | os.PathLike) -> str:
    """RELION's image name of a 0-based slice of a stack: 1-based, zero-padded to 6 digits.

    Args:
        index: 0-based slice in the stack.
        stack: the stack file as it should appear in the STAR file.

    Returns:
        "NNNNNN@stack".

    Raises:
        ValueError: index is negative.

    Example:

    >>> image_name(0, "particles.mrcs")
    '000001@particles.mrcs'
    """
    if index < 0:
        raise ValueError(f"image index {index} is negative; indices are 0-based")
    return f"{int(index) + 1:06d}@{os.fspath(stack)}"


def write_particles(
    path: str | os.PathLike,
    image_names: Sequence[str],
    pixel_size: float,
    image_size: int,
    angles: np.ndarray | Sequence | None = None,
    ctf: Mapping[str, float | Sequence] | None = None,
    extra: Mapping[str, Sequence] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write particles in RELION 3.1 format: data_optics with one optics group, then data_particles.

    Args:
        path: the STAR file to write; its folder must exist.
        image_names: "N@stack" per particle (see `image_name`).
        pixel_size: Angstrom/pixel of the images.
        image_size: side of the square images in pixels.
        angles: [N, 3] RELION rot, tilt, psi in degrees. Default value: None (no angle columns).
        ctf: any of defocus_u, defocus_v, defocus_angle, voltage, spherical_aberration, amplitude_contrast,
            each a scalar or N values. Voltage, spherical aberration and amplitude contrast go to data_optics
            when constant, else to data_particles. Default value: None (no CTF columns).
        extra: more particle columns, label (without leading "_") -> N values, e.g. {"rlnClassNumber": ...}.
            Default value: None.
        overwrite: replace an existing file. Default value: False.

    Returns:
        The path written.

    Raises:
        FileExistsError: the file exists and overwrite is False (it is left unchanged).
        ValueError: a bad image name, pixel or image size, unknown CTF key or column length.
    """
    names = [str(name) for name in image_names]
    count = len(names)
    for name in names:
        match = _IMAGE_NAME.fullmatch(name)
        if match is None or int(match[1]) < 1:
            raise ValueError(f"image name {name!r} is not N@STACK with N >= 1; build it with image_name()")
    if not pixel_size > 0 or int(image_size) < 1:
        raise ValueError(f"pixel_size {pixel_size} and image_size {image_size} must be positive")
    optics = {
        "rlnOpticsGroup": [1],
        "rlnOpticsGroupName": ["opticsGroup1"],
        "rlnImagePixelSize": [float(pixel_size)],
        "rlnImageSize": [int(image_size)],
        "rlnImageDimensionality": [2],
    }
    particles: dict[str, Sequence] = {"rlnImageName": names, "rlnOpticsGroup": np.ones(count, np.int64)}
    if angles is not None:
        angles = np.asarray(angles, np.float64)
        if angles.shape != (count, 3):
            raise ValueError(f"angles have shape {angles.shape}; expected ({count}, 3) for {count} particles")
        particles.update(rlnAngleRot=angles[:, 0], rlnAngleTilt=angles[:, 1], rlnAnglePsi=angles[:, 2])
    unknown = sorted(set(ctf or {}) - set(_CTF_LABELS))
    if unknown:
        raise ValueError(f"unknown CTF keys {unknown}; use {list(_CTF_LABELS)}")
    for key, label in _CTF_LABELS.items():
        if ctf is None or key not in ctf:
            continue
        given = np.asarray(ctf[key], np.float64)
        if given.ndim not in (0, 1) or given.ndim == 1 and len(given) != count:
            raise ValueError(f"ctf[{key!r}] has shape {given.shape}; expected a scalar or {count} values")
        values = np.broadcast_to(given, (count,))
        if key in _OPTICS_CTF_KEYS and (given.ndim == 0 or count and np.all(values == values[0])):
            optics[label] = [float(given.flat[0])]
        else:
            particles[label] = values
    for label, values in (extra or {}).items():
        label = str(label).removeprefix("_")
        if label in particles or label in optics:
            raise ValueError(f"extra column {label} clashes with a column write_particles writes; drop it")
        particles[label] = values
    return write_star(path, {"optics": optics, "particles": particles}, overwrite)
