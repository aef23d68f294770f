"""AbInitio: a density and the poses of its shadows, learned together from unlabeled images.

Each training step searches every image's pose against the current density, then moves the
density toward the images at those poses, as stochastic-gradient ab initio methods do:

1. **Frequency marching.** Training runs through `stages`, each a comparison at one resolution:
   both sides are blurred by a Gaussian of `blur` pixels and sampled on a grid `downsample`
   times coarser. The blob density renders its blurred shadows exactly (a blob of width s
   blurred by b is a blob of width sqrt(s^2 + b^2)), and an image is blurred by two matrix
   products, so a coarse stage costs a fraction of a full-size one. A voxel density is compared
   by Fourier cropping instead: the stage's lowest frequencies of both sides, times the blur's
   transfer, its shadows read from its 3D spectrum (computed once per step) only there.
2. **Search.** The density's shadows at every rotation of an equal-volume SO(3) grid
   (`toolkit.geometry.grids`, level 2: 4,608 rotations about 15 degrees apart) are scored
   against the images in one matrix product, then the `candidates` best rotations are refined
   locally on a 3x3x3 stencil of small turns, `local_rounds` times, each stencil half as wide,
   and the best of them is kept.
3. **Assignment.** A stage with `temperature` > 0 weighs every grid rotation by a softmax of its
   error (soft, the way expectation-maximization weighs poses), which keeps the early density from
   committing to the poses of a wrong shape; a stage with 0 takes the searched pose alone (hard).
4. **Scale-free error.** Each image is compared with the density's shadow at its best scale
   (least squares, `|x|^2 - <x, p>^2 / |p|^2`), so neither the density's mass nor the images'
   normalization has to be learned first.
5. **CTF and shifts.** When the images went through a CTF (`inputs["ctf"]`) or may lie off
   centre (`max_shift` > 0), both sides are compared by their Fourier coefficients, weighted so
   that dot products equal the pixels' (Parseval): the CTF c then enters as
   `<x, c p>^2 / <c^2, |p|^2>`, still two matrix products for all images against all shadows.
   The grid search tries every whole coarse pixel of shift within `max_shift` as a phase ramp on
   the image; each local round then refines the shift on a 3x3 stencil of half the last step,
   moving the rendered shadow.

With `poses="encoder"` there is no search: the encoder's pose of each image renders its shadow
(cryoAI's way), the comparison for the encoder-only runs that the search is measured against.

An image encoder with an orientation head learns, beside the density, to predict the pose that
the search found (never a true pose): it amortizes the search, and the exported `orientation`
signature is that encoder. Poses and density are defined up to one global rotation and a
mirror, so they are scored after a global alignment (`toolkit.geometry.alignment`).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from toolkit.data.projector import slice_at
from toolkit.data.render import pixel_centers, render_shadows
from toolkit.geometry import grids
from toolkit.geometry.quaternion import quaternion_to_matrix
from toolkit.layers.blob_density import flip_in_plane
from toolkit.layers.voxel_density import VoxelDensity

EXTENT = 1.0  # the density lives in box units: the images span [-1, 1]


def blur_matrix(image_size: int, downsample: int, blur: float) -> np.ndarray:
    """[n, S]: image rows (or columns) blurred by `blur` pixels and read at n = S / downsample points.

    `W X W^T` is the image convolved with that Gaussian and read at the coarse grid's centres, which
    share pixel S // 2 as the origin.
    """
    if not blur > 0 or image_size % downsample:
        raise ValueError(
            f"AbInitio: each stage needs `blur` > 0 and a `downsample` dividing the image size "
            f"{image_size}, got blur {blur} and downsample {downsample}."
        )
    fine = pixel_centers(image_size, EXTENT)
    coarse = pixel_centers(image_size // downsample, EXTENT)
    width = blur * (fine[1] - fine[0])
    weights = np.exp(-0.5 * np.square((coarse[:, None] - fine[None, :]) / width))
    return (weights * (fine[1] - fine[0]) / (math.sqrt(2 * math.pi) * width)).astype(np.float32)


def crop_frequencies(image_size: int, downsample: int, blur: float) -> tuple[np.ndarray, np.ndarray]:
    """A stage's comparison by Fourier cropping, for a voxel density: (frequencies, weights).

    frequencies [n (n // 2 + 1), 2]: (kx, ky) in cycles per image pixel, the `rfft2d` half plane
    of an n = S / `downsample` grid; weights [n, n // 2 + 1]: the Gaussian blur's transfer times
    `_parseval(n)` over downsample^2, so vectors have the norm of the blurred image read at n
    points a side, as the blob density's comparison has.
    """
    size = image_size // downsample
    ky, kx = (k / downsample for k in _half_plane(size))
    frequencies = np.stack(np.broadcast_arrays(kx, ky), -1).reshape(-1, 2)
    transfer = np.exp(-2.0 * np.pi**2 * blur**2 * (kx**2 + ky**2))
    return frequencies.astype(np.float32), (transfer * _parseval(size) / downsample**2).astype(np.float32)


def stencil(step_degrees: float) -> np.ndarray:
    """27 small turns [27, 3, 3]: axis-angle vectors on a 3x3x3 cube of `step_degrees` spacing."""
    from scipy.spatial.transform import Rotation

    line = np.radians(step_degrees) * np.array([-1.0, 0.0, 1.0])
    vectors = np.stack(np.meshgrid(line, line, line, indexing="ij"), -1).reshape(-1, 3)
    return Rotation.from_rotvec(vectors).as_matrix().astype(np.float32)


def cross_matrix(vectors):
    """[v]x [B, 3, 3] of vectors [B, 3]: [v]x u = v x u."""
    x, y, z = tf.unstack(vectors, axis=-1)
    zero = tf.zeros_like(x)
    rows = [[zero, -z, y], [z, zero, -x], [-y, x, zero]]
    return tf.stack([tf.stack(row, -1) for row in rows], -2)


def turned(vectors, rotations):
    """exp([v]x) R [B, 3, 3]: each rotation [B, 3, 3] turned by an axis-angle vector [B, 3] (radians)."""
    angle = tf.norm(vectors, axis=-1, keepdims=True) + 1e-12
    half = 0.5 * angle
    return quaternion_to_matrix(tf.concat([tf.cos(half), tf.sin(half) * vectors / angle], -1)) @ rotations


def stencil_shifts() -> np.ndarray:
    """9 moves [9, 2] of one pixel's spacing: the 3x3 square around a shift."""
    line = np.array([-1.0, 0.0, 1.0], np.float32)
    return np.stack(np.meshgrid(line, line, indexing="ij"), -1).reshape(-1, 2)


def residuals(images, shadows, ctf=None):
    """`|x|^2 - <x, c p>^2 / |c p|^2` [B, M]: each image [B, K] against each shadow [M, K] at its best scale.

    `ctf` [B, K] (or None, c = 1) weighs the shadows' components per image: Fourier
    coefficients from `spectra`, with the CTF laid out by `ctf_weights`.
    """
    if ctf is None:
        dot = tf.matmul(images, shadows, transpose_b=True)
        own = tf.reduce_sum(tf.square(shadows), -1)[None, :]
    else:
        dot = tf.matmul(images * ctf, shadows, transpose_b=True)
        own = tf.matmul(tf.square(ctf), tf.square(shadows), transpose_b=True)
    return tf.reduce_sum(tf.square(images), -1, keepdims=True) - tf.square(dot) / (own + 1e-12)


def paired_residuals(images, shadows, ctf=None):
    """The same, pairwise over the last axis: images, shadows and ctf broadcast against each other."""
    weighted = shadows if ctf is None else shadows * ctf
    dot = tf.reduce_sum(images * weighted, -1)
    own = tf.reduce_sum(tf.square(weighted), -1)
    return tf.reduce_sum(tf.square(images), -1) - tf.square(dot) / (own + 1e-12)


def _half_plane(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(ky [n, 1], kx [1, n // 2 + 1]) in cycles per pixel: the frequencies of `tf.signal.rfft2d`."""
    return np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]


def spectra(images):
    """Images [..., n, n] as real vectors [..., 2 n (n // 2 + 1)] of their weighted Fourier coefficients.

    The real parts, then the imaginary parts, of `rfft2d`, each times sqrt(m / n^2) where m is how
    many coefficients of the full spectrum it stands for (1 or 2): so the vectors' dot products
    equal the images' (Parseval).
    """
    weights = tf.constant(_parseval(images.shape[-1]).astype(np.float32))
    return _laid_out(tf.signal.rfft2d(tf.cast(images, tf.float32)), weights)


def _parseval(size: int) -> np.ndarray:
    """sqrt(m / n^2) [n, n // 2 + 1]: the weight of each `rfft2d` coefficient, m the full spectrum's
    coefficients it stands for (1 or 2)."""
    ky, kx = _half_plane(size)
    return np.sqrt(np.where((kx == 0) | (kx == 0.5), 1.0, 2.0) * np.ones_like(ky) / size**2)


def _laid_out(coefficients, weights):
    """Complex coefficients [..., n, n // 2 + 1] times `weights` as `spectra`'s real vectors [..., K]."""
    halves = tf.concat([tf.math.real(coefficients) * weights, tf.math.imag(coefficients) * weights], -1)
    return tf.reshape(halves, tf.concat([tf.shape(coefficients)[:-2], [-1]], 0))


def cropped_spectra(images, size: int, weights):
    """Images [B, S, S] (origin pixel S // 2) as `spectra` of an n = `size` grid, by Fourier cropping.

    The S-pixel spectrum's n x (n // 2 + 1) lowest frequencies, times `weights` [n, n // 2 + 1];
    the voxel density's shadows are read at the same frequencies (`AbInitio.frequencies`).
    """
    full = tf.signal.rfft2d(tf.signal.ifftshift(tf.cast(images, tf.float32), axes=[-2, -1]))
    rows = np.round(np.fft.fftfreq(size) * size).astype(np.int64) % images.shape[-1]
    return _laid_out(tf.gather(full[..., : size // 2 + 1], rows, axis=-2), weights)


def ctf_weights(ctf, size: int):
    """The CTF [B, S, S] (unshifted FFT grid) laid out as `spectra` of an n = `size` grid, [B, K].

    A grid `S / size` times coarser spans the same field: its frequency (i, j) is the fine grid's.
    """
    full = ctf.shape[-1]
    rows = np.round(np.fft.fftfreq(size) * size).astype(np.int64) % full
    half = tf.gather(tf.gather(ctf, rows, axis=-2), np.arange(size // 2 + 1), axis=-1)
    return tf.reshape(tf.concat([half, half], -1), [tf.shape(ctf)[0], -1])


def shift_spectra(vectors, offsets, size: int):
    """`spectra` vectors [B, K] of images moved by -offsets [B, J, 2] ((x, y) pixels) -> [B, J, K].

    An image whose centre lies at `offset` is brought back to the origin.
    """
    ky, kx = (2 * math.pi * k.astype(np.float32) for k in _half_plane(size))
    phase = offsets[..., 0, None, None] * kx + offsets[..., 1, None, None] * ky  # [B, J, n, m]
    halves = tf.reshape(vectors, [tf.shape(vectors)[0], 1, size, 2, -1])
    real, imag = halves[..., 0, :], halves[..., 1, :]
    cos, sin = tf.cos(phase), tf.sin(phase)
    moved = tf.stack([real * cos - imag * sin, real * sin + imag * cos], -2)
    return tf.reshape(moved, [tf.shape(vectors)[0], tf.shape(offsets)[1], -1])


@keras.saving.register_keras_serializable(package="toolkit")
class AbInitio(keras.Model):
    """A density, its poses found by search, and an encoder that learns those poses.

    Args:
        density: a `BlobDensity` or a `VoxelDensity` in box units (extent 1) with the images'
            size. A voxel density is compared by Fourier cropping: its shadows' coefficients
            are read from its spectrum at the stage's n x (n // 2 + 1) lowest frequencies
            (`toolkit.data.projector.slice_at`), the images' from their FFT at the same ones,
            both times the blur's transfer.
        encoder: maps images to features, e.g. `RotationConditionedEncoder`.
        head: maps features to rotation matrices, e.g. `OrientationHead`.
        image_size: pixels per side of the images.
        stages: each a dict of `downsample`, `blur` (pixels), `temperature` and `until`
            (the fraction of the training steps at which the stage ends), and optionally
            `search_downsample`: the search's grid, coarser than the comparison's (a fine
            stage's poses found at a cost of a coarser one). They run in the order of their
            `until`, the last to the end.
        total_steps: the run's optimizer steps, which the stages divide.
        search_level: level of the SO(3) grid searched. Default value: `2`.
        local_rounds: local refinements of the best grid rotations, on stencils of half the grid's
            step, then each half the last. Default value: `4`.
        candidates: grid rotations refined per image. Default value: `4`.
        orientation_weight: weight of the encoder's terms. Default value: `1.0`.
        max_shift: how far (pixels) an image's centre may lie from the box's, searched at every
            stage; 0 searches no shift. With shifts, a shift head (`Dense(2)` on the encoder's
            features) learns the searched shifts. Default value: `0.0`.
        pose_steps: gradient steps on each searched pose (cryoDRGN-AI's refinement by gradient
            descent) after the stencils: each turns the pose along its error's gradient by an
            angle that starts at a quarter of the last stencil's step and halves whenever a turn
            would not lower the error (then the pose stays). Default value: `0`.
        poses: `"search"`, or `"encoder"` for the comparison without a search: the encoder's pose
            of each image (or that pose turned half a turn in plane, whichever fits better,
            cryoAI's symmetric loss) renders the shadow, and the error trains encoder and density
            together; shifts and `temperature` are then not used. Default value: `"search"`.
        **kwargs: standard `keras.Model` arguments.

    Example:

    >>> from toolkit.layers import BlobDensity, OrientationHead, RotationConditionedEncoder
    >>> model = AbInitio(
    ...     BlobDensity(count=5, image_size=8, extent=EXTENT),
    ...     RotationConditionedEncoder(filters=(4,), units=8),
    ...     OrientationHead((8,)),
    ...     image_size=8,
    ...     stages=[{"downsample": 2, "blur": 1.0, "temperature": 0.0, "until": 1.0}],
    ...     total_steps=10,
    ...     search_level=1,
    ... )
    >>> terms = model.loss_terms({"images": np.ones((3, 8, 8, 1), "float32")})
    >>> tuple(terms["poses"].shape), tuple(terms["reconstruction"].shape)
    ((3, 3, 3), (3,))
    """

    def __init__(
        self,
        density,
        encoder,
        head,
        image_size: int,
        stages,
        total_steps: int,
        search_level: int = 2,
        local_rounds: int = 4,
        candidates: int = 4,
        orientation_weight: float = 1.0,
        max_shift: float = 0.0,
        poses: str = "search",
        pose_steps: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.density, self.encoder, self.head = density, encoder, head
        if not density.built:  # the model's call reaches the encoder only
            density.build((None, 3, 3))
        self.image_size, self.total_steps = int(image_size), int(total_steps)
        self.stages = sorted((dict(stage) for stage in stages), key=lambda stage: stage["until"])
        self.search_level, self.local_rounds = int(search_level), int(local_rounds)
        self.candidates = int(candidates)
        self.orientation_weight = float(orientation_weight)
        self.max_shift = float(max_shift)
        # The encoder's in-plane shift head, when shifts are searched: it learns the searched shifts.
        self.shift_head = keras.layers.Dense(2, name="shift_head") if self.max_shift > 0 else None
        if poses not in ("search", "encoder"):
            raise ValueError(f"AbInitio: `poses` is 'search' or 'encoder', got {poses!r}")
        self.poses = poses
        self.pose_steps = int(pose_steps)
        self.voxels = isinstance(density, VoxelDensity)
        # The comparisons ("views"): view i < len(stages) is stage i's, view len(stages) + i its search's.
        self.views = [{"downsample": s["downsample"], "blur": s["blur"]} for s in self.stages]
        self.views += [
            {**view, "downsample": s.get("search_downsample") or view["downsample"]}
            for view, s in zip(list(self.views), self.stages)
        ]
        crops = [crop_frequencies(self.image_size, v["downsample"], v["blur"]) for v in self.views]
        self.frequencies = [tf.constant(frequencies) for frequencies, _ in crops]
        self.transfers = [tf.constant(weights) for _, weights in crops]
        self.grid = tf.constant(grids.cell_rotations(search_level, *grids.full_grid(search_level)))
        first = grids.step_degrees(search_level) / 2
        self.stencils = [tf.constant(stencil(first / 2**r)) for r in range(self.local_rounds)]
        self.first_turn = math.radians(first / 2 ** max(self.local_rounds - 1, 0)) / 4
        self.blurs = [
            tf.constant(blur_matrix(self.image_size, v["downsample"], v["blur"])) for v in self.views
        ]
        self.boundaries = tf.constant([s["until"] * total_steps for s in self.stages[:-1]], tf.float32)

    @property
    def term_weights(self) -> dict:
        weights = {"reconstruction": 1.0, "orientation": self.orientation_weight}
        return {**weights, "shift": self.orientation_weight} if self.shift_head is not None else weights

    def call(self, inputs, training=None):
        """The encoder's poses [B, 3, 3] of images [B, S, S, 1]."""
        return self.encode(inputs)[0]

    def encode(self, inputs):
        """The encoder's (poses, shifts in pixels or None) of images [B, S, S, 1]."""
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        features = self.encoder(images)
        shifts = None if self.shift_head is None else self.shift_head(features)
        return self.head(features), shifts

    def stage_index(self, step):
        """The stage of a training step (0-based); the last stage when `step` is None."""
        if step is None:
            return tf.constant(len(self.stages) - 1, tf.int32)
        return tf.reduce_sum(tf.cast(tf.cast(step, tf.float32) >= self.boundaries, tf.int32))

    def compares_spectra(self, ctf) -> bool:
        """Whether comparisons are of Fourier coefficients: for a voxel density, a CTF or shifts."""
        return self.voxels or ctf is not None or self.max_shift > 0

    def density_state(self):
        """What the shadows are made from: the blobs (centres, masses, widths), or the map's spectrum."""
        return self.density.spectrum() if self.voxels else self.density.blobs()

    def size(self, view: int) -> int:
        """Pixels per side of a view's coarse grid (a view: a stage's comparison, or its search's)."""
        return self.image_size // self.views[view]["downsample"]

    def offsets(self, view: int) -> np.ndarray:
        """The shifts [T, 2] the grid search tries in a view: whole coarse pixels within `max_shift`."""
        reach = self.max_shift / self.views[view]["downsample"]
        line = np.arange(-int(reach), int(reach) + 1, dtype=np.float32)
        grid = np.stack(np.meshgrid(line, line, indexing="ij"), -1).reshape(-1, 2)
        return grid[np.hypot(grid[:, 0], grid[:, 1]) <= reach + 1e-6]

    def shadows(self, state, rotations, view: int, fourier: bool = False, shifts=None):
        """The density's shadows [N, K] at a view's blur and grid: pixels, or `spectra` if `fourier`.

        `state`: from `density_state`; `shifts` [N, 2]: where each shadow's centre lies, (x, y) in
        the view's pixels. A voxel density's shadows are always spectra.
        """
        size = self.size(view)
        if self.voxels:
            values = slice_at(state, rotations, self.frequencies[view]) * self.density.voxel_size
            vectors = _laid_out(tf.reshape(values, [-1, size, size // 2 + 1]), self.transfers[view])
            return vectors if shifts is None else shift_spectra(vectors, -shifts[:, None, :], size)[:, 0]
        centers, masses, widths = state
        blurred = tf.sqrt(
            tf.square(widths) + (self.views[view]["blur"] * 2.0 * EXTENT / self.image_size) ** 2
        )
        moves = None if shifts is None else shifts * (2.0 * EXTENT / size)
        images = render_shadows((centers, masses, blurred), rotations, size, EXTENT, moves)
        return spectra(images) if fourier else tf.reshape(images, [tf.shape(images)[0], size * size])

    def coarse(self, images, view: int, fourier: bool = False):
        """Images [B, S, S] blurred and read on the view's grid [B, K]: pixels, or `spectra` if `fourier`
        (for a voxel density, always: `cropped_spectra`)."""
        if self.voxels:
            return cropped_spectra(images, self.size(view), self.transfers[view])
        blur = self.blurs[view]
        low = tf.einsum("ij,bjk,lk->bil", blur, images, blur)
        return spectra(low) if fourier else tf.reshape(low, [tf.shape(images)[0], -1])

    def search(self, state, images, view: int, ctf=None):
        """Each coarse image's [B, K] best pose [B, 3, 3] and shift [B, 2] (coarse pixels), without gradient.

        The `candidates` best grid rotations (each at its best whole-pixel shift) are refined on
        the stencils, and the best of them is kept: a shadow's few near-equal grid rotations (its
        twins, for a thin sample) each get their own local search. Refined shifts move the
        rendered shadows, exactly, rather than the sampled images. `ctf` [B, K] as in `residuals`;
        images are `spectra` when `compares_spectra`. `state`: from `density_state`.
        """
        count = tf.shape(images)[0]
        fourier = self.compares_spectra(ctf)
        grid_errors, grid_shifts = self.grid_errors(state, images, view, ctf)
        top = tf.math.top_k(-grid_errors, k=self.candidates).indices
        poses = tf.gather(self.grid, top)  # [B, C, 3, 3]
        shifts = tf.gather(grid_shifts, top, batch_dims=1)  # [B, C, 2]
        best = tf.gather(grid_errors, top, batch_dims=1)
        seen = images[:, None, None, :]
        weights = None if ctf is None else ctf[:, None, None, :]

        def errors_at(rotations, moves):  # rotations [B, C, J, 3, 3] at moves [B, C, J, 2] -> [B, C, J]
            shadows = self.shadows(
                state, tf.reshape(rotations, [-1, 3, 3]), view, fourier, tf.reshape(moves, [-1, 2])
            )
            return paired_residuals(
                seen, tf.reshape(shadows, [count, self.candidates, -1, tf.shape(images)[-1]]), weights
            )

        for round_, turns in enumerate(self.stencils):
            if self.max_shift > 0:
                trials = shifts[:, :, None, :] + stencil_shifts() * 0.5 ** (round_ + 1)  # [B, C, 9, 2]
                errors = errors_at(tf.repeat(poses[:, :, None], 9, axis=2), trials)
                shifts = tf.gather(trials, tf.argmin(errors, axis=2), batch_dims=2)
            candidates = tf.einsum("jik,bckl->bcjil", turns, poses)  # [B, C, 27, 3, 3]
            errors = errors_at(candidates, tf.repeat(shifts[:, :, None, :], 27, axis=2))
            poses = tf.gather(candidates, tf.argmin(errors, axis=2), batch_dims=2)
            best = tf.reduce_min(errors, axis=2)
        winner = tf.argmin(best, axis=1)
        poses, shifts = tf.gather(poses, winner, batch_dims=1), tf.gather(shifts, winner, batch_dims=1)
        if self.pose_steps:
            poses = self.polish(
                state, images, view, ctf, poses, shifts, tf.gather(best, winner, batch_dims=1)
            )
        return tf.stop_gradient(poses), tf.stop_gradient(shifts)

    def polish(self, state, images, view: int, ctf, poses, shifts, errors):
        """`pose_steps` gradient steps on each pose [B, 3, 3] at its error [B] (see `pose_steps`)."""
        fourier = self.compares_spectra(ctf)
        step = tf.fill([tf.shape(images)[0]], self.first_turn)

        def error_of(rotations):
            return paired_residuals(images, self.shadows(state, rotations, view, fourier, shifts), ctf)

        for _ in range(self.pose_steps):
            at = tf.zeros([tf.shape(images)[0], 3])
            with tf.GradientTape() as tape:
                tape.watch(at)
                # (I + [v]x) R: the turn's derivative at v = 0, without the angle's singular norm.
                total = tf.reduce_sum(error_of((tf.eye(3) + cross_matrix(at)) @ poses))
            gradient = tape.gradient(total, at)
            direction = -gradient / (tf.norm(gradient, axis=-1, keepdims=True) + 1e-30)
            trial = turned(direction * step[:, None], poses)
            trial_errors = error_of(trial)
            better = trial_errors < errors
            poses = tf.where(better[:, None, None], trial, poses)
            errors = tf.minimum(trial_errors, errors)
            step = tf.where(better, step, step / 2)
        return poses

    def grid_errors(self, state, images, view: int, ctf=None):
        """Each image's [B, K] error at every grid rotation [B, M], at its best grid shift [B, M, 2].

        The best shift of each rotation, so that the candidates kept are distinct rotations.
        """
        shadows = self.shadows(state, self.grid, view, fourier=self.compares_spectra(ctf))
        offsets = self.offsets(view)
        if self.max_shift <= 0:
            errors = residuals(images, shadows, ctf)
            return errors, tf.zeros(tf.concat([tf.shape(errors), [2]], 0))
        moved = shift_spectra(
            images, tf.tile(tf.constant(offsets)[None], [tf.shape(images)[0], 1, 1]), self.size(view)
        )
        flat = tf.reshape(moved, [-1, tf.shape(images)[-1]])
        weights = None if ctf is None else tf.repeat(ctf, len(offsets), axis=0)
        errors = tf.reshape(residuals(flat, shadows, weights), [tf.shape(images)[0], len(offsets), -1])
        return tf.reduce_min(errors, axis=1), tf.gather(tf.constant(offsets), tf.argmin(errors, axis=1))

    def stage_terms(self, images, stage: int, ctf=None, predicted=None):
        """(reconstruction [B], searched poses [B, 3, 3], shifts [B, 2] in pixels) at one stage.

        `ctf` [B, S, S]: the CTF each image went through, or None; `predicted` [B, 3, 3]: the
        encoder's poses, which render the shadows when `poses` is "encoder".
        """
        fourier = self.compares_spectra(ctf)
        low = self.coarse(images, stage, fourier)
        state = self.density_state()
        size, downsample = self.size(stage), self.stages[stage]["downsample"]
        weights = None if ctf is None else ctf_weights(ctf, size)
        if self.poses == "encoder":
            options = tf.stack([predicted, flip_in_plane(predicted)], axis=1)  # [B, 2, 3, 3]
            shadows = self.shadows(state, tf.reshape(options, [-1, 3, 3]), stage, fourier)
            shadows = tf.reshape(shadows, [tf.shape(low)[0], 2, -1])
            errors = paired_residuals(low[:, None], shadows, None if weights is None else weights[:, None])
            chosen = tf.gather(options, tf.argmin(errors, axis=1), batch_dims=1)
            return tf.reduce_min(errors, axis=1), tf.stop_gradient(chosen), tf.zeros([tf.shape(low)[0], 2])
        temperature = self.stages[stage]["temperature"]
        if temperature > 0:
            errors, grid_shifts = self.grid_errors(state, low, stage, weights)
            best = tf.reduce_min(errors, axis=1, keepdims=True)
            scale = temperature * tf.reduce_mean(best) + 1e-12
            soft = tf.stop_gradient(tf.nn.softmax(-(errors - best) / scale, axis=1))
            choice = tf.argmin(errors, axis=1)
            poses = tf.stop_gradient(tf.gather(self.grid, choice))
            shifts = tf.gather(grid_shifts, choice, batch_dims=1)
            return tf.reduce_sum(soft * errors, axis=1), poses, shifts * downsample
        frozen = tf.nest.map_structure(tf.stop_gradient, state)
        view = len(self.stages) + stage  # the search's comparison
        if self.views[view]["downsample"] == downsample:
            view, seen, seen_weights = stage, low, weights
        else:
            seen = self.coarse(images, view, fourier)
            seen_weights = None if ctf is None else ctf_weights(ctf, self.size(view))
        poses, shifts = self.search(frozen, tf.stop_gradient(seen), view, seen_weights)
        shifts = shifts * (self.views[view]["downsample"] / downsample)  # in the stage's pixels
        reconstruction = paired_residuals(low, self.shadows(state, poses, stage, fourier, shifts), weights)
        return reconstruction, poses, shifts * downsample

    def loss_terms(self, inputs, training=None) -> dict:
        """Per example: the density's scale-free error at its pose and the encoder's distance to that pose
        (and, with a shift head, its squared distance in pixels to the searched shift).

        `inputs["step"]` (one value per example, all equal) is the training step, which picks the
        stage; without it the last stage is used.
        """
        size = self.image_size
        images = tf.reshape(tf.cast(inputs["images"], "float32"), [-1, size, size])  # one view per example
        ctf = tf.reshape(tf.cast(inputs["ctf"], "float32"), [-1, size, size]) if "ctf" in inputs else None
        predicted, predicted_shifts = self.encode(inputs)
        predicted = ops.reshape(ops.cast(predicted, "float32"), (-1, 3, 3))
        branches = [lambda s=s: self.stage_terms(images, s, ctf, predicted) for s in range(len(self.stages))]
        step = inputs["step"][0] if "step" in inputs else None
        reconstruction, poses, shifts = tf.switch_case(self.stage_index(step), branches)
        terms = {
            "reconstruction": reconstruction,
            "orientation": ops.sum(ops.square(predicted - poses), axis=(-2, -1)),
            "poses": poses,
            "shifts": shifts,
        }
        if predicted_shifts is not None:
            predicted_shifts = ops.reshape(ops.cast(predicted_shifts, "float32"), (-1, 2))
            terms["shift"] = ops.sum(ops.square(predicted_shifts - shifts), axis=-1)
        return terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The weighted mean of the loss terms, for users' `model.fit` on dicts of images (and steps)."""
        terms = self.loss_terms(x, training=training)
        return ops.sum([weight * ops.mean(terms[name]) for name, weight in self.term_weights.items()])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                **{
                    k: keras.saving.serialize_keras_object(getattr(self, k))
                    for k in ("density", "encoder", "head")
                },
                "image_size": self.image_size,
                "stages": self.stages,
                "total_steps": self.total_steps,
                "search_level": self.search_level,
                "local_rounds": self.local_rounds,
                "candidates": self.candidates,
                "orientation_weight": self.orientation_weight,
                "max_shift": self.max_shift,
                "poses": self.poses,
                "pose_steps": self.pose_steps,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("density", "encoder", "head"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
