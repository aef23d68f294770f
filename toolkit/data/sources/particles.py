"""`data.type: particles`: training from a RELION STAR file and its MRC stacks, streamed.

Stacks are memory-mapped with mrcfile and read batch by batch inside tf.data (prefetched), so
a stack larger than memory trains at the speed the model consumes it; only the held-out
validation particles are loaded. Each particle is prepared as RELION prepares it:
1. negated with `invert_contrast` (data with dark particles on a light background);
2. Fourier-cropped to `image_size` (the pixel size grows by the ratio);
3. normalized (`normalize`) to zero mean and unit variance of its background, the pixels outside
   a circle of `background_diameter` times the box (RELION's default is 75% of the box);
4. phase-flipped by the sign of its own CTF (`ctf: phase_flip`, the STAR file's CTF columns,
   per optics group) or left as it is (`ctf: none`).
The preparation is recorded in the run (`data.json`), so later commands prepare particles alike.
Stack paths resolve as RELION resolves them: relative to the project folder, which is the STAR
file's folder or one of its parents (a job folder's STAR file names `Extract/job007/...`), or
relative to `stack_root` when it is set.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from toolkit.data import projector
from toolkit.data.ctf import ctf_2d, phase_flip
from toolkit.data.sources.base import DataBundle, DataShapes, DataSource, OrientationCondition
from toolkit.errors import RunError
from toolkit.geometry import relion_to_matrix
from toolkit.geometry.representations import REPRESENTATION_WIDTHS, orientation_features
from toolkit.io import mrc
from toolkit.io.particles import read_particles
from toolkit.io.star import StarFormatError

# Batches whose reads a training batch announces ahead of its own (`ParticleStacks.announce`).
ANNOUNCED_AHEAD = 4


def _stack_name(image_name: str) -> str:
    return image_name.split("@", 1)[1]


def resolve_stack(star: Path, name: str, stack_root: str | None, row: int) -> Path:
    """Where the stack `name` of a STAR file's row lies (see the module docstring)."""
    if stack_root is not None:
        candidates = [Path(stack_root) / name]
    else:
        folder = star.absolute().parent
        candidates = [base / name for base in (folder, *folder.parents)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates[:3]) + (", ..." if len(candidates) > 3 else "")
    raise RunError(f"{star}: row {row + 1}: stack {name} not found (tried {tried}); set data.stack_root")


def open_stack(path: Path) -> mrc.MrcStack:
    """The images [N, S, S] of an MRC stack, memory-mapped by mrcfile (read on access)."""
    try:
        stack = mrc.open_stack(path)
    except mrc.MrcFormatError as error:
        raise RunError(str(error)) from None
    height, width = stack.images.shape[1:]
    if height != width:
        raise RunError(f"{path}: holds images of {width}x{height} pixels, not square ones")
    return stack


class ParticleStacks:
    """The images of a STAR file's particles, memory-mapped, read by row."""

    def __init__(self, star: Path, image_names: list[str], indices: np.ndarray, stack_root: str | None):
        self.star, self.indices = star, np.asarray(indices, np.int64)
        names = [_stack_name(n) for n in image_names]
        paths, self.maps = {}, {}
        for row, name in enumerate(names):
            if name not in paths:
                paths[name] = resolve_stack(star, name, stack_root, row)
                self.maps[name] = open_stack(paths[name]).images
        self.stack_of = names
        self.paths = [paths[name] for name in names]
        shapes = {m.shape[1:] for m in self.maps.values()}
        if len(shapes) > 1:
            found = ", ".join(
                f"{p}: {m.shape[2]}x{m.shape[1]}" for p, m in zip(paths.values(), self.maps.values())
            )
            raise RunError(f"{star}: its stacks hold images of different sizes ({found}); extract them alike")
        self.size = int(shapes.pop()[0])
        advise = getattr(os, "posix_fadvise", None)  # POSIX only; elsewhere reads are not announced
        self._descriptors = {name: os.open(p, os.O_RDONLY) for name, p in paths.items()} if advise else {}
        for row, (name, index) in enumerate(zip(names, self.indices)):
            count = self.maps[name].shape[0]
            if index >= count:
                raise RunError(
                    f"{star}: row {row + 1}: image {index + 1}@{name} is past the end of its stack "
                    f"of {count} images"
                )

    def __del__(self):
        for descriptor in getattr(self, "_descriptors", {}).values():
            os.close(descriptor)

    def announce(self, rows) -> None:
        """Ask the kernel to start reading these rows' images from disk now, without waiting for them.

        Reads from a cold stack are random and each waits for the disk; announced ahead of time
        (posix_fadvise WILLNEED), they are fetched in the background while earlier batches train.
        """
        for row in np.asarray(rows, np.int64):
            name = self.stack_of[row]
            if name in self._descriptors:
                data = self.maps[name]
                row_bytes = data.strides[0]
                start = data.offset + int(self.indices[row]) * row_bytes
                os.posix_fadvise(self._descriptors[name], start, row_bytes, os.POSIX_FADV_WILLNEED)

    def read(self, rows) -> np.ndarray:
        """float32 [len(rows), S, S] images of these rows, in their order."""
        rows = np.asarray(rows, np.int64)
        out = np.empty((len(rows), self.size, self.size), np.float32)
        for i, row in enumerate(rows):
            out[i] = self.maps[self.stack_of[row]][self.indices[row]]
        bad = ~np.isfinite(out).all(axis=(1, 2))
        if bad.any():
            row = int(rows[np.argmax(bad)])
            raise RunError(
                f"{self.star}: row {row + 1}: image {self.indices[row] + 1}@{self.stack_of[row]} holds NaN"
            )
        return out


def fourier_crop(images: tf.Tensor, size: int) -> tf.Tensor:
    """Images [B, S, S] cropped in Fourier space to [B, size, size] about pixel S // 2 (a low-pass)."""
    full = int(images.shape[-1])
    if size == full:
        return images
    spectrum = projector.images_to_spectra(images)  # centred: pixel S // 2 is the origin
    start = full // 2 - size // 2
    cropped = spectrum[:, start : start + size, start : start + size]
    return projector.spectra_to_images(cropped) * (size / full) ** 2  # pixel values kept


def background_mask(size: int, diameter: float) -> np.ndarray:
    """True outside a centred circle of `diameter` times the box (centre pixel size // 2)."""
    r = np.arange(size) - size // 2
    return np.hypot(r[None, :], r[:, None]) > diameter * size / 2


class ParticleSource(DataSource):
    """Particles of a STAR file, their poses from its angles (see the module docstring)."""

    name = "particles"

    def _particles(self):
        star = Path(self.spec["star"])
        try:
            particles = read_particles(star)
        except StarFormatError as error:
            raise RunError(str(error)) from None
        if particles.angles is None:
            raise RunError(
                f"{star}: has no _rlnAngleRot/_rlnAngleTilt/_rlnAnglePsi; give particles with poses"
            )
        pixel_sizes = np.unique(particles.pixel_size)
        if len(pixel_sizes) > 1 or pixel_sizes[0] <= 0:
            raise RunError(
                f"{star}: pixel sizes {', '.join(f'{p:g}' for p in pixel_sizes)} A; "
                "train on particles of one known pixel size (_rlnImagePixelSize)"
            )
        if self.spec["ctf"] == "phase_flip":
            if particles.ctf is None:
                raise RunError(f"{star}: has no CTF columns (_rlnDefocusU); set data.ctf: none")
            labels = {"voltage": "rlnVoltage", "spherical_aberration": "rlnSphericalAberration"}
            labels["amplitude_contrast"] = "rlnAmplitudeContrast"
            for key, label in labels.items():
                if np.isnan(particles.ctf[key]).any():
                    raise RunError(
                        f"{star}: _{label} is missing; add it to the optics block or set data.ctf: none"
                    )
        return star, particles

    def shapes(self, condition=None, measured=None) -> DataShapes:
        condition = condition or OrientationCondition()
        measured = dict(measured or {})
        size = self.spec["image_size"] or measured.get("image_size")
        if size is None:
            size = self.stacks()[1].size
        keys = ("images", "condition", "rotations")
        keys += ("ctf",) if self.spec["ctf"] == "phase_flip" else ()
        keys += ("shifts",) if measured.get("has_shifts", False) else ()
        return DataShapes(
            image_size=int(size),
            channels=1,
            sequence_length=1,
            keys=keys,
            condition="orientation",
            condition_width=REPRESENTATION_WIDTHS[condition.representation],
            y_up=True,
            image_size_key="data.image_size",
            measured=measured,
        )

    def stacks(self):
        star, particles = self._particles()
        return particles, ParticleStacks(
            star, particles.image_names, particles.image_indices, self.spec["stack_root"]
        )

    def every_particle(self, measured: dict, batch_size: int = 256):
        """(the STAR file's `Particles`, batches of all its particles in order, prepared as in training).

        Each batch holds `images` `[n, 1, S, S, 1]` and, once phase-flipped, `ctf` `[n, 1, S, S]`, as
        training batches do; `measured` is the run's `DataShapes.measured`.
        """
        particles, stacks = self.stacks()
        prepare = training_preparation(measured["preparation"], stacks.size, particles)

        def batches():
            for start in range(0, len(particles.image_names), batch_size):
                rows = np.arange(start, min(start + batch_size, len(particles.image_names)))
                batch = {"images": prepare(stacks.read(rows), rows).numpy()[:, None, :, :, None]}
                if prepare.flip:
                    batch["ctf"] = np.abs(prepare.transfer(tf.constant(rows)).numpy())[:, None]
                yield batch

        return particles, batches()

    def check(self) -> list[str]:
        if not Path(self.spec["star"]).is_file():
            return [f"data.star: {self.spec['star']}: file not found; give a particle STAR file"]
        return []

    def build(self, condition=None, measured=None) -> DataBundle:
        condition = condition or OrientationCondition()
        particles, stacks = self.stacks()
        size = self.spec["image_size"] or stacks.size
        if size > stacks.size:
            raise RunError(
                f"data.image_size: {size} exceeds the particles' box {stacks.size}; crop, do not pad"
            )
        pixel = float(particles.pixel_size[0]) * stacks.size / size
        prepare = Preparation(self.spec, size, pixel, particles)
        rotations = relion_to_matrix(particles.angles.astype(np.float32)).numpy()
        shifts = None
        if particles.origins is not None:  # the origin centres the particle: its centre lies at -origin
            shifts = (-particles.origins / pixel).astype(np.float32)
        count = len(rotations)
        held = min(self.spec["validation_size"], count // 2)
        order = np.random.default_rng(self.spec["seed"]).permutation(count)
        validation_rows, train_rows = np.sort(order[:held]), order[held:]

        rotations_tensor = tf.constant(rotations)
        shifts_tensor = None if shifts is None else tf.constant(shifts)

        def entries(rows, images) -> dict:
            r = tf.gather(rotations_tensor, rows)[:, None]
            out = {
                "images": images[:, None, :, :, None],
                "condition": orientation_features(r, condition.representation, condition.convention),
                "rotations": r,
            }
            if shifts_tensor is not None:
                out["shifts"] = tf.gather(shifts_tensor, rows)[:, None]
            if prepare.flip:  # what the phase-flipped images went through
                out["ctf"] = tf.abs(prepare.transfer(tf.convert_to_tensor(rows, tf.int64)))[:, None]
            return out

        def train_dataset(batch_size: int, start_batch: int = 0, num_batches: int | None = None):
            @functools.lru_cache(maxsize=2)  # a batch spans at most two epochs
            def shuffled(epoch: int) -> np.ndarray:
                return train_rows[
                    np.random.default_rng([self.spec["seed"], epoch]).permutation(len(train_rows))
                ]

            def rows_of(index):
                positions = index * batch_size + np.arange(batch_size)
                epochs, within = np.divmod(positions, len(train_rows))
                out = np.empty(batch_size, np.int64)
                for epoch in np.unique(epochs):
                    chosen = epochs == epoch
                    out[chosen] = shuffled(int(epoch))[within[chosen]]
                return out

            def load(index):
                rows = rows_of(int(index))
                stacks.announce(rows_of(int(index) + ANNOUNCED_AHEAD))
                return rows, stacks.read(rows)

            def batch(index):
                rows, images = tf.numpy_function(load, [index], [tf.int64, tf.float32], stateful=False)
                rows.set_shape([batch_size])
                images.set_shape([batch_size, stacks.size, stacks.size])
                return entries(rows, prepare(images, rows))

            stop = np.iinfo(np.int64).max if num_batches is None else start_batch + num_batches
            indices = tf.data.Dataset.range(start_batch, stop)
            dataset = indices.map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            return dataset.prefetch(tf.data.AUTOTUNE)

        validation = {
            key: np.asarray(value)
            for key, value in entries(
                validation_rows, prepare(stacks.read(validation_rows), validation_rows)
            ).items()
        }
        measured = {
            **(measured or {}),
            "image_size": int(size),
            "pixel_size": pixel,
            "has_shifts": shifts is not None,
            "preparation": prepare.record(),
        }
        return DataBundle(
            train_dataset=train_dataset,
            validation=validation,
            shapes=self.shapes(condition, measured),
            source=self,
        )


def training_preparation(record: dict, full: int, particles) -> Preparation:
    """The `Preparation` a run recorded (`record`), for particles of `full` pixels a side.

    `particles` is the STAR file's `Particles` (for the CTF), or None for a bare stack.
    """
    if record["ctf"] == "phase_flip" and (particles is None or particles.ctf is None):
        raise RunError("the run trained on phase-flipped particles: give a STAR file with CTF columns")
    size = record["image_size"]
    if full < size:
        raise RunError(f"the particles are {full} pixels, the run trained on {size}; give larger particles")
    return Preparation(record, size, record["pixel_size"], particles)


class Preparation:
    """Invert, crop, normalize and phase-flip particles [B, S, S] (see the module docstring)."""

    def __init__(self, spec: dict, size: int, pixel: float, particles):
        self.invert, self.normalize = spec["invert_contrast"], spec["normalize"]
        self.diameter, self.size, self.pixel = spec["background_diameter"], size, pixel
        self.flip = spec["ctf"] == "phase_flip"
        self.mask = tf.constant(background_mask(size, self.diameter))
        if self.flip:
            ctf = particles.ctf
            keys = ("voltage", "spherical_aberration", "amplitude_contrast")
            groups = np.stack([ctf[k] for k in keys], axis=1)
            self.groups, self.group_of = np.unique(groups, axis=0, return_inverse=True)
            self.group_of = tf.constant(self.group_of.reshape(-1).astype(np.int32))
            self.ctf = {
                k: tf.constant(ctf[k].astype(np.float32))
                for k in ("defocus_u", "defocus_v", "defocus_angle", "phase_shift", "b_factor")
            }

    def record(self) -> dict:
        return {
            "invert_contrast": self.invert,
            "image_size": self.size,
            "pixel_size": self.pixel,
            "normalize": self.normalize,
            "background_diameter": self.diameter,
            "ctf": "phase_flip" if self.flip else "none",
        }

    def __call__(self, images, rows) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        if self.invert:
            images = -images
        images = fourier_crop(images, self.size)
        if self.normalize:
            background = tf.boolean_mask(tf.transpose(images, [1, 2, 0]), self.mask)  # [pixels, B]
            mean, variance = tf.nn.moments(background, axes=[0])
            images = (images - mean[:, None, None]) / tf.sqrt(variance + 1e-12)[:, None, None]
        if self.flip:
            images = phase_flip(images, self.transfer(tf.convert_to_tensor(rows, tf.int64)))
        return images

    def transfer(self, rows) -> tf.Tensor:
        """Each particle's CTF on the cropped grid, one optics group at a time."""
        values = {k: tf.gather(v, rows) for k, v in self.ctf.items()}
        group = tf.gather(self.group_of, rows)
        out = tf.zeros([tf.shape(rows)[0], self.size, self.size])
        for g, (voltage, cs, amplitude) in enumerate(self.groups):
            ctf = ctf_2d(
                self.size,
                self.pixel,
                values["defocus_u"],
                values["defocus_v"],
                values["defocus_angle"],
                float(voltage),
                float(cs),
                float(amplitude),
                values["phase_shift"],
                values["b_factor"],
            )
            out = tf.where((group == g)[:, None, None], ctf, out)
        return out
