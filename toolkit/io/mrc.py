"""Read and write MRC2014 files with mrcfile: image stacks (`.mrc`, `.mrcs`) and 3D maps.

Conventions:

* Stacks are `[N, ny, nx]`: rows are y, columns are x, exactly the order of
  `mrcfile.open(path).data`. A single 2D image gives N = 1; a volume gives its nz sections.
* The pixel size is `cella.x / mx` in Angstrom (mrcfile's `voxel_size.x`), 0.0 when unset.
* Modes 0 (int8, signed as mrcfile reads it), 1, 2, 6 and 12 are read; the complex modes
  and mode 101 are refused.
* A file mrcfile refuses only for a missing `MAP ` label or an unknown machine stamp (older
  writers) is read in mrcfile's permissive mode, which takes the byte order whose mode is
  valid, with a warning that names the problem.
* `write_stack` writes the MRC2014 image-stack form: mode 2, little-endian, ispg 0, mz 1.
* `write_map` and `read_map` handle one 3D map `[z, y, x]` (mode 2, ispg 1); `read_map`
  wants a cubic box.

Example:

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     path = write_stack(Path(folder) / "tiny.mrcs", np.zeros((2, 3, 4)), pixel_size=1.5)
...     stack = read_stack(path, indices=[1])
>>> stack.images.shape, stack.pixel_size
((1, 3, 4), 1.5)
"""

from __future__ import annotations

import logging
import operator
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from toolkit.io.atomic import replace_atomically

HEADER_BYTES = 1024
_SUPPORTED = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
_SUPPORTED_TEXT = ", ".join(f"{mode} ({name})" for mode, name in _SUPPORTED.items())
# mrcfile's strict reasons that older but readable files give; anything else stays an error.
_LENIENT_REASONS = ("Map ID string not found", "Unrecognised machine stamp")

log = logging.getLogger("toolkit")


class MrcFormatError(ValueError):
    """An MRC/MRCS file is missing, malformed or uses a mode this reader does not support."""


@dataclass(frozen=True, eq=False)
class MrcStack:
    """Images of an MRC file and their pixel size.

    Attributes:
        images: `[N, ny, nx]`: float32 from `read_stack`, the file's own memory map from
            `open_stack` (read from disk on access).
        pixel_size: Angstrom per pixel along x (`cella.x / mx`); 0.0 when the header has none.
    """

    images: np.ndarray
    pixel_size: float


def _reason(error: BaseException) -> str:
    return " ".join(str(error).split())  # mrcfile's reason, on one line


def _check_file(path: Path) -> None:
    if path.is_dir():
        raise MrcFormatError(f"{path}: is a directory, not an MRC file")
    if not path.is_file():
        raise MrcFormatError(f"{path}: file not found; check the path")
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise MrcFormatError(f"{path}: file is {size} bytes, shorter than the {HEADER_BYTES}-byte MRC header")


def _unsupported_mode(path: Path, mode: int) -> MrcFormatError:
    return MrcFormatError(f"{path}: unsupported MRC mode {mode}; supported modes: {_SUPPORTED_TEXT}")


def _non_positive(path: Path, shape: str) -> MrcFormatError:
    return MrcFormatError(f"{path}: non-positive dimensions in the header ({shape}); the file is corrupt")


def _header_problem(path: Path, error: ValueError) -> MrcFormatError:
    """The one-line error of a file whose header mrcfile cannot use, with its dimensions when readable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = mrcfile.open(path, header_only=True, permissive=True).header
    mode, nx, ny, nz = (int(header[key]) for key in ("mode", "nx", "ny", "nz"))
    shape = f"nx={nx}, ny={ny}, nz={nz}, mode={mode}"
    if "Unrecognised mode" in str(error):
        return _unsupported_mode(path, mode)
    if min(nx, ny, nz) <= 0:
        return _non_positive(path, shape)
    if "greater than file size" in str(error):
        offset = HEADER_BYTES + int(header.nsymbt)
        expected = nx * ny * nz * mrcfile.utils.dtype_from_mode(header.mode).itemsize
        found = max(path.stat().st_size - offset, 0)
        return MrcFormatError(
            f"{path}: truncated data: expected {expected} bytes ({nz} x {ny} x {nx}, mode {mode}) after "
            f"the {offset}-byte header, found {found}; copy or export the file again"
        )
    return MrcFormatError(f"{path}: not an MRC file ({_reason(error)}; header {shape})")


def _memory_map(path: Path):
    """mrcfile's read-only memory map of `path`, permissive only for the reasons of `_LENIENT_REASONS`."""
    _check_file(path)
    try:
        return mrcfile.mmap(path, mode="r", permissive=False)
    except ValueError as error:
        if not str(error).startswith(_LENIENT_REASONS):
            raise _header_problem(path, error) from None
        strict = error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its warnings restate `strict`, logged below once
        mrc = mrcfile.mmap(path, mode="r", permissive=True)
    if mrc.data is None or int(mrc.header.mode) not in _SUPPORTED:
        mrc.close()
        raise MrcFormatError(
            f"{path}: not an MRC file ({_reason(strict)}), and no byte order gives a readable header"
        )
    order = "big" if mrc.data.dtype.byteorder == ">" else "little"
    log.warning("%s: %s; read as %s-endian as mrcfile's permissive mode does", path, _reason(strict), order)
    return mrc


def open_stack(path: str | os.PathLike) -> MrcStack:
    """The images of an MRC file as its read-only memory map `[N, ny, nx]`, validated by mrcfile.

    Raises:
        MrcFormatError: the file is missing, shorter than the header, not an MRC file, has
            non-positive dimensions, truncated data or an unsupported (e.g. complex) mode.
    """
    path = Path(path)
    mrc = _memory_map(path)
    data = mrc.data
    if data.dtype.kind not in "iuf":
        raise _unsupported_mode(path, int(mrc.header.mode))
    if data.size == 0:
        raise _non_positive(path, ", ".join(f"{k}={int(mrc.header[k])}" for k in ("nx", "ny", "nz")))
    pixel_size = float(mrc.voxel_size.x)
    return MrcStack(
        images=data[None] if data.ndim == 2 else data, pixel_size=pixel_size if pixel_size > 0 else 0.0
    )


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
        MrcFormatError: As `open_stack`, or an index is out of range.
    """
    stack = open_stack(path)
    data, count = stack.images, len(stack.images)
    if indices is None:
        return MrcStack(np.array(data, dtype=np.float32), stack.pixel_size)
    chosen = np.array([operator.index(i) for i in indices], dtype=np.int64)
    bad = chosen[(chosen < 0) | (chosen >= count)]
    if bad.size:
        raise MrcFormatError(
            f"{path}: section index {bad[0]} is out of range for a stack of {count} images "
            f"(valid indices are 0 to {count - 1})"
        )
    images = np.array(data[chosen], dtype=np.float32).reshape(len(chosen), *data.shape[1:])
    return MrcStack(images, stack.pixel_size)


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

    def write(temporary: Path) -> None:
        written, low, high, total, squares = 0, np.inf, -np.inf, 0.0, 0.0
        with mrcfile.new_mmap(temporary, shape=(count, height, width), mrc_mode=2) as mrc:
            mrc.set_image_stack()  # before voxel_size: it sets mz = 1, which cella.z follows
            mrc.voxel_size = size
            mrc.add_label("toolkit write_stack")
            for chunk in chunks:
                data = _checked_images(chunk)
                if data.shape[1:] != (height, width) or written + len(data) > count:
                    raise ValueError(
                        f"{path}: a chunk of {data.shape} after {written} images does not fit "
                        f"{count} images of {height}x{width}"
                    )
                mrc.data[written : written + len(data)] = data
                written += len(data)
                low, high = min(low, float(data.min())), max(high, float(data.max()))
                total += float(data.sum(dtype=np.float64))
                squares += float(np.square(data, dtype=np.float64).sum())
            if written != count:
                raise ValueError(f"{path}: got {written} images, expected {count}")
            # Running sums, not mrcfile's update_header_stats, which would hold the whole stack.
            mean = total / (count * height * width)
            mrc.header.dmin, mrc.header.dmax, mrc.header.dmean = low, high, mean
            mrc.header.rms = np.sqrt(max(squares / (count * height * width) - mean**2, 0.0))

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
