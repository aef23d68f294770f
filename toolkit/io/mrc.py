"""Read and write MRC2014 image stacks (`.mrc`, `.mrcs`) with numpy only, and maps with mrcfile.

Conventions:

* Data are returned as float32 `[N, ny, nx]`: rows are y, columns are x, exactly the
  order of `mrcfile.open(path).data` (the `mapc`/`mapr`/`maps` axis fields are ignored,
  as mrcfile does). A single 2D image gives N = 1; a volume gives its nz sections.
* The pixel size is `cella.x / mx` in Angstrom, 0.0 when the header does not set it.
* `write_stack` writes the MRC2014 image-stack form: mode 2, little-endian, ispg 0, mz 1.
* `write_map` and `read_map` handle one 3D map `[z, y, x]` (mode 2, ispg 1) through mrcfile,
  the reference implementation, which validates the whole file; `read_map` wants a cubic box.

Example:

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as folder:
...     path = write_stack(Path(folder) / "tiny.mrcs", np.zeros((2, 3, 4)), pixel_size=1.5)
...     stack = read_stack(path, indices=[1])
>>> stack.images.shape, stack.pixel_size
((1, 3, 4), 1.5)
"""

from __future__ import annotations

import operator
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from toolkit.io.atomic import replace_atomically

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
    """An MRC/MRCS file is missing, malformed or uses a mode this reader does not support."""


@dataclass(frozen=True, eq=False)
class MrcStack:
    """Images of an MRC file and their pixel size.

    Attributes:
        images: float32 `[N, ny, nx]`; a single 2D image or a volume section list gives N = nz.
        pixel_size: Angstrom per pixel along x (`cella.x / mx`); 0.0 when the header has none.
    """

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
    """Images of an MRC file (modes 0, 1, 2, 6, 12) as float32 `[N, ny, nx]`.

    Args:
        path: MRC file (any extension), written by any MRC2014 writer, either byte order.
        indices: 0-based section indices to read (any order, repeats allowed); only these
            are read from disk (memory-mapped), so a large stack is not loaded whole.
            Default value: `None` (all sections).

    Returns:
        An `MrcStack` whose images equal `mrcfile.open(path).data` (with a leading axis of
        1 for a single 2D image), in the order of `indices`.

    Raises:
        MrcFormatError: As `read_mrc_header`, or the mode is unsupported, the data are
            truncated, or an index is out of range.
    """
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
            bad = chosen[(chosen < 0) | (chosen >= nz)]
            if bad.size:
                raise MrcFormatError(
                    f"{path}: section index {bad[0]} is out of range for a stack of {nz} images "
                    f"(valid indices are 0 to {nz - 1})"
                )
            images = np.array(data[chosen], dtype=np.float32).reshape(len(chosen), ny, nx)
    finally:
        del data  # release the memory map (and its file handle) now
    pixel_size = header["cella"][0] / header["mx"] if header["mx"] > 0 and header["cella"][0] > 0 else 0.0
    return MrcStack(images=images, pixel_size=float(pixel_size))


def _checked_images(images) -> np.ndarray:
    array = np.asarray(images)
    if array.dtype.kind not in "iuf" or array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(
            f"images must be a non-empty [N, H, W] or [H, W] array of real numbers, "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
        array = np.ascontiguousarray(array.reshape((1,) * (3 - array.ndim) + array.shape), dtype="<f4")
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        where = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"images must be finite in float32, got {len(bad)} non-finite values, "
            f"e.g. {array[where]} at index {where}"
        )
    return array


def write_stack(path: str | os.PathLike, images, pixel_size: float, overwrite: bool = False) -> Path:
    """Write an MRC2014 image stack (mode 2 float32, little-endian, ispg 0), atomically.

    Args:
        path: file to write (`.mrcs` by convention for stacks).
        images: real numbers `[N, H, W]` (or `[H, W]` for one image); stored as float32.
        pixel_size: Angstrom per pixel (> 0), stored as cella = (W, H, 1) * pixel_size.
        overwrite: replace an existing file. Default value: `False`.

    Returns:
        `path` as a `Path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
        ValueError: `images` is not a finite real 2D/3D array, or `pixel_size` is not a
            finite number > 0.
    """
    data = _checked_images(images)
    return write_stack_chunks(path, [data], len(data), data.shape[1:], pixel_size, overwrite)


def write_stack_chunks(
    path: str | os.PathLike, chunks: Iterable, count: int, shape, pixel_size: float, overwrite: bool = False
) -> Path:
    """`write_stack` of images that arrive in chunks `[n, H, W]`, `count` in all, holding one chunk at a time.

    The header is written first with the count, rewritten at the end with the statistics of all
    images; the file appears only when complete (atomically), so an interrupted write leaves none.

    Raises:
        As `write_stack`, and ValueError when the chunks hold other than `count` images of `shape`.
    """
    path = Path(path)
    try:
        size = float(pixel_size)
    except (TypeError, ValueError):
        size = float("nan")
    if isinstance(pixel_size, bool) or not np.isfinite(size) or size <= 0:
        raise ValueError(f"pixel_size must be a finite number > 0 (Angstrom per pixel), got {pixel_size!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: file exists; pass overwrite=True to replace it")

    height, width = (int(n) for n in shape)
    header = np.zeros((), _header_dtype("<"))
    header["nx"], header["ny"], header["nz"], header["mode"] = width, height, count, 2
    header["mx"], header["my"], header["mz"] = width, height, 1  # mz = 1: an image stack
    header["cella"] = (width * size, height * size, size)
    header["cellb"] = (90.0, 90.0, 90.0)
    header["mapc"], header["mapr"], header["maps"] = 1, 2, 3
    header["ispg"], header["nversion"] = 0, 20140
    header["map"], header["machst"] = b"MAP ", (0x44, 0x44, 0, 0)
    header["nlabl"], header["label"][0] = 1, b"toolkit write_stack"

    def write(temporary: Path) -> None:
        written, low, high, total, squares = 0, np.inf, -np.inf, 0.0, 0.0
        with open(temporary, "xb") as handle:
            handle.write(header.tobytes())
            for chunk in chunks:
                data = _checked_images(chunk)
                if data.shape[1:] != (height, width) or written + len(data) > count:
                    raise ValueError(
                        f"{path}: a chunk of {data.shape} after {written} images does not fit "
                        f"{count} images of {height}x{width}"
                    )
                handle.write(memoryview(data).cast("B"))
                written += len(data)
                low, high = min(low, float(data.min())), max(high, float(data.max()))
                total += float(data.sum(dtype=np.float64))
                squares += float(np.square(data, dtype=np.float64).sum())
            if written != count:
                raise ValueError(f"{path}: got {written} images, expected {count}")
            mean = total / (count * height * width)
            header["dmin"], header["dmax"], header["dmean"] = low, high, mean
            header["rms"] = np.sqrt(max(squares / (count * height * width) - mean**2, 0.0))
            handle.seek(0)
            handle.write(header.tobytes())

    return replace_atomically(path, write)


@dataclass(frozen=True, eq=False)
class MrcMap:
    """A 3D map of an MRC file and its voxel size.

    Attributes:
        volume: float32 `[z, y, x]`, a cubic box.
        pixel_size: Angstrom per voxel (`cella.x / mx`); 0.0 when the header has none.
    """

    volume: np.ndarray
    pixel_size: float


def write_map(path: str | os.PathLike, volume, pixel_size: float, overwrite: bool = False) -> Path:
    """Write a 3D map with mrcfile (mode 2 float32, ispg 1), atomically.

    Args:
        path: file to write (`.mrc` by convention).
        volume: real numbers `[z, y, x]`; stored as float32.
        pixel_size: Angstrom per voxel (> 0) on every axis, stored as cella = shape * pixel_size.
        overwrite: replace an existing file. Default value: `False`.

    Returns:
        `path` as a `Path`.

    Raises:
        FileExistsError: `path` exists and `overwrite` is False.
        ValueError: `volume` is not a finite, non-empty real 3D array, or `pixel_size` is not
            a finite number > 0.
    """
    path = Path(path)
    array = np.asarray(volume)
    if array.dtype.kind not in "iuf" or array.ndim != 3 or array.size == 0:
        raise ValueError(
            f"volume must be a non-empty [z, y, x] array of real numbers, "
            f"got shape {array.shape} dtype {array.dtype}"
        )
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
        data = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(data).all():
        raise ValueError(
            f"volume must be finite in float32, got {np.count_nonzero(~np.isfinite(data))} NaN/Inf"
        )
    try:
        size = float(pixel_size)
    except (TypeError, ValueError):
        size = float("nan")
    if isinstance(pixel_size, bool) or not np.isfinite(size) or size <= 0:
        raise ValueError(f"pixel_size must be a finite number > 0 (Angstrom per voxel), got {pixel_size!r}")

    def write(temporary: Path) -> None:
        with mrcfile.new(temporary) as mrc:
            mrc.set_data(data)
            mrc.header.ispg = 1  # a single volume, not an image stack
            mrc.voxel_size = size
            mrc.add_label("toolkit write_map")

    return replace_atomically(path, write, overwrite=overwrite)


def read_map(path: str | os.PathLike) -> MrcMap:
    """A cubic 3D map of an MRC file, validated by mrcfile.

    Args:
        path: MRC file (`.mrc`, `.map`, also gzip or bzip2 compressed), any mode mrcfile reads.

    Returns:
        An `MrcMap` whose volume equals `mrcfile.open(path).data` as float32.

    Raises:
        MrcFormatError: The file is missing, not a valid MRC file, not a real 3D volume,
            not cubic, holds NaN or Inf, or has voxels of different sizes along the axes.
    """
    path = Path(path)
    try:
        with mrcfile.open(path, permissive=False) as mrc:
            voxel = mrc.voxel_size
            sizes = [float(voxel.x), float(voxel.y), float(voxel.z)]
            real = mrc.data is not None and mrc.data.dtype.kind in "iuf"
            volume = np.array(mrc.data, dtype=np.float32) if real else mrc.data
    except FileNotFoundError:
        raise MrcFormatError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise MrcFormatError(f"{path}: is a directory, not an MRC file") from None
    except (OSError, ValueError, EOFError) as error:
        reason = " ".join(str(error).split())  # mrcfile's reason, on one line
        raise MrcFormatError(
            f"{path}: not a valid MRC map ({reason}); check the file, or export it again as MRC2014"
        ) from None
    if not real:
        kind = "no data" if volume is None else f"{volume.dtype} data"
        raise MrcFormatError(f"{path}: holds {kind}, not a real-valued map; give a mode 0, 1, 2, 6 or 12 map")
    if volume.ndim != 3:
        raise MrcFormatError(
            f"{path}: holds a {volume.ndim}D array of shape {volume.shape}, not a 3D map; "
            "give a volume (nz > 1)"
        )
    if len(set(volume.shape)) != 1:
        shape = " x ".join(str(n) for n in volume.shape)
        raise MrcFormatError(
            f"{path}: the map is {shape} voxels (z, y, x), not cubic; "
            f"pad or crop it to a cubic box, e.g. with relion_image_handler --new_box"
        )
    bad = np.count_nonzero(~np.isfinite(volume))
    if bad:
        raise MrcFormatError(f"{path}: holds {bad} NaN or Inf values; fix the map or export it again")
    known = [size for size in sizes if np.isfinite(size) and size > 0]
    if len(known) == 3 and max(known) - min(known) > 1e-3 * max(known):
        raise MrcFormatError(
            f"{path}: voxels are not cubic ({sizes[0]:g} x {sizes[1]:g} x {sizes[2]:g} A); "
            f"resample it to one pixel size, e.g. with relion_image_handler --rescale_angpix"
        )
    pixel_size = sizes[0] if sizes[0] in known else 0.0
    return MrcMap(volume=volume, pixel_size=pixel_size)
