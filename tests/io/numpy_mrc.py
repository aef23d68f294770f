"""A numpy-only MRC2014 reader, the oracle of the tests of `toolkit.io.mrc` (which wraps mrcfile).

It reads the header words itself, takes the byte order from the machine stamp (or, when the stamp
is missing, the order whose header is plausible) and memory-maps the data with numpy.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEADER_BYTES = 1024

# (name, byte offset, format) of the MRC2014 header words used here.
_HEADER_FIELDS = [
    ("nx", 0, "i4"), ("ny", 4, "i4"), ("nz", 8, "i4"), ("mode", 12, "i4"),
    ("mx", 28, "i4"), ("my", 32, "i4"), ("mz", 36, "i4"),
    ("cella", 40, "3f4"), ("cellb", 52, "3f4"),
    ("mapc", 64, "i4"), ("mapr", 68, "i4"), ("maps", 72, "i4"),
    ("dmin", 76, "f4"), ("dmax", 80, "f4"), ("dmean", 84, "f4"),
    ("ispg", 88, "i4"), ("nsymbt", 92, "i4"), ("nversion", 108, "i4"),
    ("map", 208, "S4"), ("machst", 212, "4u1"), ("rms", 216, "f4"),
    ("nlabl", 220, "i4"), ("label", 224, "10S80"),
]  # fmt: skip

# Every mode of the specification: (description, bytes per voxel, numpy type if supported).
_MODES = {
    0: ("int8", 1, "i1"), 1: ("int16", 2, "i2"), 2: ("float32", 4, "f4"), 3: ("complex int16", 4, None),
    4: ("complex float32", 8, None), 6: ("uint16", 2, "u2"), 12: ("float16", 2, "f2"),
    101: ("4-bit packed", 0.5, None),
}  # fmt: skip
_SUPPORTED_TEXT = ", ".join(f"{mode} ({name})" for mode, (name, _, code) in _MODES.items() if code)


class MrcFormatError(ValueError):
    """A file this reader cannot read."""


@dataclass(frozen=True, eq=False)
class MrcStack:
    images: np.ndarray
    pixel_size: float


def _header_dtype(byte_order: str) -> np.dtype:
    names, offsets, formats = zip(*_HEADER_FIELDS)
    formats = [byte_order + f for f in formats]
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": HEADER_BYTES})


def _plausibility(header: np.void, file_size: int) -> int:
    """2: a known mode, positive sizes and the data fit in the file; 1: all but the fit; 0: neither."""
    mode, nx, ny, nz, nsymbt = (int(header[k]) for k in ("mode", "nx", "ny", "nz", "nsymbt"))
    if mode not in _MODES or min(nx, ny, nz) <= 0 or nsymbt < 0:
        return 0
    row_bytes = int(np.ceil(nx * _MODES[mode][1]))  # mode 101 pads each row to a whole byte
    return 2 if HEADER_BYTES + nsymbt + row_bytes * ny * nz <= file_size else 1


def read_mrc_header(path: str | os.PathLike) -> dict:
    """The header fields needed to read an MRC file's data.

    The byte order comes from the machine stamp; when the stamp is missing or unknown (or
    its header makes no sense), the byte order whose header is plausible is used.

    Args:
        path: MRC file (any extension).

    Returns:
        A dict with int `nx`, `ny`, `nz`, `mode`, `mx`, `my`, `mz`, `ispg`, `nsymbt`,
        `cella` (3 floats, Angstrom), `byte_order` ("<" or ">") and `data_offset` (bytes
        from the start of the file to the first image: 1024 + nsymbt).

    Raises:
        MrcFormatError: The file is missing, shorter than the header, not an MRC file, or
            has non-positive dimensions or a negative extended header size.
    """
    path = Path(path)
    if path.is_dir():
        raise MrcFormatError(f"{path}: is a directory, not an MRC file")
    if not path.is_file():
        raise MrcFormatError(f"{path}: file not found; check the path")
    file_size = path.stat().st_size
    if file_size < HEADER_BYTES:
        raise MrcFormatError(
            f"{path}: file is {file_size} bytes, shorter than the {HEADER_BYTES}-byte MRC header"
        )
    with open(path, "rb") as handle:
        raw = handle.read(HEADER_BYTES)
    stamp = raw[212:214]
    stamped = "<" if stamp in (b"\x44\x44", b"\x44\x41") else ">" if stamp == b"\x11\x11" else None
    preferred = stamped or "<"  # MRC2014 writers are almost all little-endian
    other = ">" if preferred == "<" else "<"
    headers = [np.frombuffer(raw, _header_dtype(order))[0] for order in (preferred, other)]
    scores = [_plausibility(header, file_size) for header in headers]
    pick = int(scores[1] > scores[0])  # the preferred order wins unless the other is more plausible
    order, header = (preferred, other)[pick], headers[pick]
    fields = {k: int(header[k]) for k in ("nx", "ny", "nz", "mode", "mx", "my", "mz", "ispg", "nsymbt")}
    shape_text = "nx={nx}, ny={ny}, nz={nz}, mode={mode}".format(**fields)
    if not raw[208:212].startswith(b"MAP") and scores[pick] < 2:
        raise MrcFormatError(
            f"{path}: not an MRC file: no 'MAP ' label at byte 208 and an implausible header "
            f"({shape_text}, {file_size} bytes)"
        )
    if min(fields["nx"], fields["ny"], fields["nz"]) <= 0:
        raise MrcFormatError(
            f"{path}: non-positive dimensions in the header ({shape_text}); the file is corrupt"
        )
    if fields["nsymbt"] < 0:
        raise MrcFormatError(
            f"{path}: negative extended header size NSYMBT={fields['nsymbt']}; the file is corrupt"
        )
    cella = tuple(float(v) for v in header["cella"])
    return {**fields, "cella": cella, "byte_order": order, "data_offset": HEADER_BYTES + fields["nsymbt"]}


def read_stack(path: str | os.PathLike, indices: Iterable[int] | None = None) -> MrcStack:
    """The sections of an MRC file (all, or those of `indices`) as float32 `[N, ny, nx]`."""
    path = Path(path)
    header = read_mrc_header(path)
    mode, nx, ny, nz = header["mode"], header["nx"], header["ny"], header["nz"]
    if _MODES.get(mode, (0, 0, None))[2] is None:
        name = f" ({_MODES[mode][0]})" if mode in _MODES else ""
        raise MrcFormatError(f"{path}: unsupported MRC mode {mode}{name}; supported modes: {_SUPPORTED_TEXT}")
    dtype = np.dtype(header["byte_order"] + _MODES[mode][2])
    expected = nx * ny * nz * dtype.itemsize
    found = path.stat().st_size - header["data_offset"]
    if found < expected:
        raise MrcFormatError(
            f"{path}: truncated data: expected {expected} bytes ({nz} x {ny} x {nx}, mode {mode}) after "
            f"the {header['data_offset']}-byte header, found {max(found, 0)}; copy or export the file again"
        )
    data = np.memmap(path, dtype=dtype, mode="r", offset=header["data_offset"], shape=(nz, ny, nx))
    try:
        if indices is None:
            images = np.array(data, dtype=np.float32)
        else:
            chosen = np.array([operator.index(i) for i in indices], dtype=np.int64)
            images = np.array(data[chosen], dtype=np.float32).reshape(len(chosen), ny, nx)
    finally:
        del data  # release the memory map (and its file handle) now
    pixel_size = header["cella"][0] / header["mx"] if header["mx"] > 0 and header["cella"][0] > 0 else 0.0
    return MrcStack(images=images, pixel_size=float(pixel_size))
