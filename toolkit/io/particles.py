"""RELION particle tables: image names, poses, pixel sizes and CTFs, joined with their optics groups."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.io.star import read_star, star_error, write_star

_IMAGE_NAME = re.compile(r"(\d+)@(.+)", re.ASCII)
_CTF_LABELS = {
    "defocus_u": "rlnDefocusU",
    "defocus_v": "rlnDefocusV",
    "defocus_angle": "rlnDefocusAngle",
    "voltage": "rlnVoltage",
    "spherical_aberration": "rlnSphericalAberration",
    "amplitude_contrast": "rlnAmplitudeContrast",
    "phase_shift": "rlnPhaseShift",
    "b_factor": "rlnCtfBfactor",
}
_OPTICS_CTF_KEYS = ("voltage", "spherical_aberration", "amplitude_contrast")


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
            spherical_aberration (mm), amplitude_contrast, phase_shift (degrees), b_factor (Angstrom^2); a
            missing defocus_v equals defocus_u, a missing defocus_angle, phase_shift or b_factor is 0 and
            other missing fields are NaN. None without _rlnDefocusU.
        origins: float64 [N, 2] x, y shift in Angstrom (NaN for pixel shifts without a pixel size); None
            without origin columns.
        random_subset: int64 [N] the half (_rlnRandomSubset) of each particle; None without the column.
    """

    image_names: list[str]
    image_indices: np.ndarray
    stack_paths: list[Path]
    angles: np.ndarray | None
    pixel_size: np.ndarray
    ctf: dict[str, np.ndarray] | None
    origins: np.ndarray | None
    random_subset: np.ndarray | None = None
    #: The rows of the STAR file these particles are (all of them unless `take` chose some).
    rows: np.ndarray | None = None

    def take(self, rows: np.ndarray) -> Particles:
        """The particles at `rows` (0-based indices of this table), e.g. one shard of many."""
        rows = np.asarray(rows, np.int64)

        def pick(value):
            return None if value is None else value[rows]

        return Particles(
            [self.image_names[i] for i in rows],
            self.image_indices[rows],
            [self.stack_paths[i] for i in rows],
            pick(self.angles),
            self.pixel_size[rows],
            None if self.ctf is None else {key: values[rows] for key, values in self.ctf.items()},
            pick(self.origins),
            pick(self.random_subset),
            (np.arange(len(self.image_names)) if self.rows is None else self.rows)[rows],
        )


def _optics_rows(path: Path, block: str, particles: dict, optics: dict, count: int) -> np.ndarray:
    """The data_optics row of each particle's optics group."""
    n_groups = len(next(iter(optics.values())))
    groups = optics.get("rlnOpticsGroup", np.arange(1, n_groups + 1))
    row_of_group = {group: row for row, group in enumerate(groups.tolist())}
    if "rlnOpticsGroup" not in particles:
        if n_groups == 1:
            return np.zeros(count, np.int64)
        raise star_error(path, f"no _rlnOpticsGroup column to choose among {n_groups} optics groups")
    particle_groups = particles["rlnOpticsGroup"]
    rows = np.empty(count, np.int64)
    for group in np.unique(particle_groups).tolist():
        members = particle_groups == group
        if group not in row_of_group:
            known = ", ".join(map(str, row_of_group)) or "none"
            message = f"optics group {group} has no row in data_optics (groups there: {known}); add or fix it"
            raise star_error(path, message, block, int(np.argmax(members)))
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
    blocks = read_star(path)
    holders = [name for name, columns in blocks.items() if "rlnImageName" in columns]
    if not holders:
        found = ", ".join(f"data_{name}" for name in blocks) or "none"
        raise star_error(
            path, f"no block has _rlnImageName (blocks found: {found}); pass a particle STAR file"
        )
    name = "particles" if "particles" in holders else holders[0]
    particles = blocks[name]
    image_names = [str(value) for value in particles["rlnImageName"].tolist()]
    count = len(image_names)
    image_indices = np.empty(count, np.int64)
    folder, stack_of = path.absolute().parent, {}
    stack_paths = []
    for i, image in enumerate(image_names):
        match = _IMAGE_NAME.fullmatch(image)
        if match is None or int(match[1]) < 1:
            raise star_error(
                path, f"bad image name {image!r}; write it as N@STACK with slice N >= 1", name, i
            )
        image_indices[i] = int(match[1]) - 1
        stack_paths.append(stack_of.setdefault(match[2], folder / match[2]))  # "/" keeps absolute paths
    optics = blocks.get("optics") if name != "optics" else None
    optics_rows = _optics_rows(path, name, particles, optics, count) if optics else None

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
            raise star_error(path, f"_{label} holds text; it must be numeric") from None

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
        for key in ("defocus_angle", "phase_shift", "b_factor"):
            ctf[key] = column(_CTF_LABELS[key], 0.0)
    origins = stacked("rlnOriginXAngst", "rlnOriginYAngst")
    pixel_origins = stacked("rlnOriginX", "rlnOriginY")  # RELION 3.0, in pixels
    if origins is None and pixel_origins is not None:
        origins = pixel_origins * np.where(pixel_size > 0, pixel_size, np.nan)[:, None]
    subset = column("rlnRandomSubset")
    subset = None if subset is None else subset.astype(np.int64)
    return Particles(image_names, image_indices, stack_paths, angles, pixel_size, ctf, origins, subset)


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
    origins: np.ndarray | Sequence | None = None,
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
            phase_shift, b_factor, each a scalar or N values. Voltage, spherical aberration and amplitude
            contrast go to data_optics when constant, else to data_particles. Default value: None (no
            CTF columns).
        origins: [N, 2] RELION origins (x, y) in Angstrom, the move that centres each particle.
            Default value: None (no origin columns).
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
    if origins is not None:
        origins = np.asarray(origins, np.float64)
        if origins.shape != (count, 2):
            raise ValueError(
                f"origins have shape {origins.shape}; expected ({count}, 2) for {count} particles"
            )
        particles.update(rlnOriginXAngst=origins[:, 0], rlnOriginYAngst=origins[:, 1])
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


def write_updated(
    star: str | os.PathLike,
    particles: Particles,
    out: str | os.PathLike,
    columns: Mapping[str, Sequence],
    overwrite: bool = False,
) -> Path:
    """A copy of a particle STAR file with columns set or added, every other block and column kept.

    The image names are rewritten relative to `out`'s folder, so the copy finds the same stacks;
    particles chosen by `Particles.take` keep only their rows.

    Args:
        star: the STAR file `particles` was read from.
        particles: `read_particles(star)`.
        out: the STAR file to write; its folder must exist.
        columns: label (without "_") -> N values for the particle block, e.g. {"rlnAngleRot": ...}.
        overwrite: replace an existing file. Default value: False.
    """
    blocks = read_star(star)
    name = "particles" if "particles" in blocks else next(n for n, b in blocks.items() if "rlnImageName" in b)
    folder = Path(out).resolve().parent
    names = [
        image_name(int(i), os.path.relpath(Path(s).resolve(), folder))
        for s, i in zip(particles.stack_paths, particles.image_indices, strict=True)
    ]
    rows = slice(None) if particles.rows is None else particles.rows  # a shard keeps only its rows
    blocks[name] = {
        **{label: np.asarray(values)[rows] for label, values in blocks[name].items()},
        "rlnImageName": np.asarray(names),
        **{k: np.asarray(v) for k, v in columns.items()},
    }
    return write_star(out, blocks, overwrite)
