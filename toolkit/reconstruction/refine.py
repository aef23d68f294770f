"""Projection matching against a known reference: a hierarchical SO(3) and shift search, then a polish.

Each particle X is compared with the reference's projection P at pose R, through the particle's
CTF C, after centring it by a shift s, on a band of frequencies (the DC term left out):

    score(R, s) = Re <X_s, C P_R> / (|X| |C P_R|)

the correlation that least squares with a free scale per particle maximizes. The search starts
on the whole level-1 grid of `toolkit.geometry.grids` (576 rotations, about 30 degrees) with a
square of shifts, or, from initial poses, on the cells around each of them at level 2; each
level keeps the best candidates, each with its best shift, and scores their 8 children at the
next, each child on a finer square of shifts around its parent's, with a wider band of
frequencies. The best pose and shift of the last level are then polished by gradient ascent on
the score through the differentiable projector. `exhaustive_search` scores every cell of one
level instead: the baseline the hierarchy is measured against.

The spread of the candidates at the last level is reported as RELION reports its own: the
largest posterior probability of a softmax over them (`rlnMaxValueProbDistribution`) and how
many candidates hold 99.9% of it (`rlnNrOfSignificantSamples`). The logits are the Gaussian
log-likelihoods with the noise power estimated from the best candidate's residual.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from toolkit.data.projector import images_to_spectra, slice_at, volume_spectrum
from toolkit.geometry import grids


class Reference:
    """Centred projection spectra of a reference at poses, on a band of the D x D frequency grid."""

    size: int

    def spectra(self, poses: tf.Tensor, band: np.ndarray) -> tf.Tensor:
        """complex64 [M, K] at poses [M, 3, 3] and the flat indices `band` of the centred grid."""
        raise NotImplementedError


class MapReference(Reference):
    """A map [D, D, D] through the Fourier projector (padded twice, gridding-corrected)."""

    def __init__(self, volume: np.ndarray):
        self.size = int(np.shape(volume)[0])
        self.spectrum = volume_spectrum(volume)
        self.slice = tf.function(slice_at, jit_compile=True)  # XLA fuses the trilinear reads: ~5x faster

    def spectra(self, poses, band):
        return self.slice(self.spectrum, poses, tf.constant(band_frequencies(self.size, band)))


class RenderedReference(Reference):
    """A renderer of real images [M, D, D] at poses, e.g. the exact blob renderer of a recipe's sample."""

    def __init__(self, render: Callable[[tf.Tensor], tf.Tensor], size: int):
        self.render, self.size = render, int(size)

    def spectra(self, poses, band):
        spectra = images_to_spectra(self.render(poses))
        return tf.gather(tf.reshape(spectra, [tf.shape(spectra)[0], -1]), band, axis=1)


@dataclass(frozen=True)
class Schedule:
    """How the search narrows: the levels visited, candidates kept and the shift squares."""

    last_level: int = 5
    kept: tuple[int, ...] = (64, 16, 8, 4, 4)  # after levels 1, 2, 3, ...: the F has twin views
    max_shift: float = 4.0  # pixels either way in the first level's square
    shift_step: float = 1.0  # pixels between its shifts; halved at each level
    polish_steps: int = 40
    polish_rate: float = 0.003  # Adam's first step for the rotation, radians
    polish_shift_rate: float = 0.03  # and for the shift, pixels: the last level's shifts are 1/16 px apart
    exhaustive: bool = False  # score every cell of the last level instead: the baseline, 8^k times the work


@dataclass
class Result:
    """Per particle: the pose [N, 3, 3], the centring shift [N, 2] (x, y pixels) and the search's figures."""

    rotations: np.ndarray
    shifts: np.ndarray
    scores: np.ndarray
    max_probability: np.ndarray
    significant: np.ndarray


def band_indices(size: int, radius: float) -> np.ndarray:
    """Flat indices of the centred grid's frequencies with 0 < |k| <= radius (Fourier pixels)."""
    k = np.arange(size) - size // 2
    ky, kx = np.meshgrid(k, k, indexing="ij")
    r = np.hypot(kx, ky).ravel()
    return np.flatnonzero((r > 0) & (r <= radius))


def band_frequencies(size: int, indices: np.ndarray) -> np.ndarray:
    """(kx, ky) in cycles per pixel of the chosen flat indices, float32 [K, 2]."""
    k = (np.arange(size) - size // 2) / size
    ky, kx = np.meshgrid(k, k, indexing="ij")
    return np.stack([kx.ravel()[indices], ky.ravel()[indices]], axis=1).astype(np.float32)


def shift_square(half_width: float, step: float) -> np.ndarray:
    """Shifts (x, y) on a square grid from -half_width to +half_width, float32 [S, 2]."""
    count = int(round(half_width / step))
    line = np.arange(-count, count + 1) * step
    y, x = np.meshgrid(line, line, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32)


def _centred_particles(spectra, frequencies, shifts):
    """X(k) exp(-2 pi i k.s): [B, K] spectra moved by each of [B, S, 2] shifts -> [B, S, K]."""
    return spectra[:, None, :] * tf.math.conj(_ramp(shifts, frequencies))


def _scores(particles, ctf, projections):
    """Correlations [B, S, M] of centred particles [B, S, K] with projections [B, M, K] via CTFs [B, K]."""
    modulated = projections * tf.complex(ctf, tf.zeros_like(ctf))[:, None, :]
    dot = tf.math.real(tf.einsum("bsk,bmk->bsm", tf.math.conj(particles), modulated))
    norm = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(modulated)), axis=-1))  # [B, M]
    own = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(particles)), axis=-1))  # [B, S], the same for every shift
    return dot / (norm[:, None, :] * own[:, :, None] + 1e-30)


class Matcher:
    """Scores particles against a reference on the band of each level."""

    def __init__(self, reference: Reference):
        self.reference, self.size = reference, reference.size

    def band(self, level: int) -> np.ndarray:
        # Twice the band per level: the grid's step halves, so does the detail it can resolve.
        return band_indices(self.size, min(self.size // 2, 4 * 2**level))

    def score(self, spectra, ctf, rotations: np.ndarray, centres: np.ndarray, offsets: np.ndarray, band):
        """Scores [B, M, S] of particles' centred spectra [B, D*D] at poses [M, 3, 3] (shared by the
        batch) or [B, M, 3, 3] (per particle), each pose with its own shift centre [B, M, 2] moved
        by each of the offsets [S, 2].

        A shift is a phase ramp and a square of offsets is the same for every candidate, so
        conj(X) e^{2 pi i k.c} C P is formed once per candidate and the offsets are one matrix
        product with their ramps: no [B, M, S, K] tensor.
        """
        per = rotations.shape[-3]
        projections = self.reference.spectra(tf.constant(rotations.reshape(-1, 3, 3)), band)
        projections = tf.reshape(projections, [-1, per, len(band)])
        frequencies = tf.constant(band_frequencies(self.size, band))
        particles, ctf_band = tf.gather(spectra, band, axis=1), tf.gather(ctf, band, axis=1)
        modulated = projections * tf.complex(ctf_band, tf.zeros_like(ctf_band))[:, None, :]  # [B, M, K]
        norm = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(modulated)), axis=-1))  # [B, M]
        own = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(particles)), axis=-1))  # [B]
        toward = tf.math.conj(particles)[:, None, :] * modulated * _ramp(tf.constant(centres), frequencies)
        patterns = _ramp(tf.constant(offsets), frequencies)  # [S, K]
        dot = tf.math.real(tf.einsum("bmk,sk->bms", toward, patterns))
        return dot / (norm[:, :, None] * own[:, None, None] + 1e-30)


def _ramp(shifts, frequencies):
    """exp(+2 pi i k.s) [..., K] of shifts [..., 2] at frequencies [K, 2]."""
    phase = 2.0 * math.pi * tf.tensordot(shifts, frequencies, [[-1], [1]])
    return tf.exp(tf.complex(tf.zeros_like(phase), phase))


def _keep(scores: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per particle, the `count` best candidates of scores [B, M, S] (by their best shift) and that shift."""
    best_shift = scores.argmax(axis=2)  # [B, M]
    best = scores.max(axis=2)
    order = np.argsort(-best, axis=1)[:, :count]
    return order, np.take_along_axis(best_shift, order, axis=1)


def search(
    matcher: Matcher,
    spectra: tf.Tensor,
    ctf: tf.Tensor,
    schedule: Schedule,
    initial: np.ndarray | None = None,
) -> dict:
    """The hierarchical search for one batch; returns the last level's candidates and their scores."""
    count = int(spectra.shape[0])
    if initial is None:
        level, (pixels, angles) = 1, grids.full_grid(1)
        pixels, angles = np.tile(pixels, (count, 1)), np.tile(angles, (count, 1))
    else:
        level, (pixels, angles) = 2, grids.nearest_cells(2, initial)
    square = shift_square(schedule.max_shift, schedule.shift_step)
    centres = np.zeros((count, pixels.shape[1], 2), np.float32)  # each candidate keeps its own shift
    step = schedule.shift_step
    while True:
        shared = level == 1 and initial is None  # the whole grid, the same for every particle
        rotations = grids.cell_rotations(
            level, pixels[0] if shared else pixels, angles[0] if shared else angles
        )
        scores = matcher.score(spectra, ctf, rotations, centres, square, matcher.band(level)).numpy()
        kept = schedule.kept[min(level - 1, len(schedule.kept) - 1)]
        order, shift_index = _keep(scores, kept)
        pixels, angles = np.take_along_axis(pixels, order, 1), np.take_along_axis(angles, order, 1)
        chosen = np.take_along_axis(centres, order[..., None], 1) + square[shift_index]  # [B, kept, 2]
        best = np.take_along_axis(scores.max(axis=2), order, 1)
        if level >= schedule.last_level:
            return {
                "rotations": grids.cell_rotations(level, pixels, angles),
                "shifts": chosen,
                "scores": best,
                "band": matcher.band(level),
            }
        step /= 2
        square = shift_square(step, step)  # a candidate's shift and its 8 neighbours, a finer step apart
        pixels, angles = (a.reshape(count, -1) for a in grids.children(pixels, angles))
        centres = np.repeat(chosen, 8, axis=1)  # the children start from their parent's shift
        level += 1


def exhaustive_search(
    matcher: Matcher, spectra: tf.Tensor, ctf: tf.Tensor, schedule: Schedule, block: int = 2048
) -> dict:
    """Every cell of the last level's grid at every shift of the first level's square, per particle.

    The baseline the hierarchy is measured against; the projections are shared by the batch, so
    the scores are two matrix products per block of rotations.
    """
    level, count = schedule.last_level, int(spectra.shape[0])
    band = matcher.band(level)
    square = shift_square(schedule.max_shift, schedule.shift_step)
    frequencies = tf.constant(band_frequencies(matcher.size, band))
    shifted = _centred_particles(
        tf.gather(spectra, band, axis=1), frequencies, tf.constant(np.tile(square, (count, 1, 1)))
    )
    ctf_band = tf.gather(ctf, band, axis=1)
    own = tf.sqrt(tf.reduce_sum(tf.square(tf.abs(shifted)), -1))  # [B, S]
    # Re <X_s, C P> = [Re, Im](C X_s) . [Re, Im](P): one real matrix product for all (b, s, m).
    weighted = shifted * tf.complex(ctf_band, tf.zeros_like(ctf_band))[:, None, :]
    rows = tf.reshape(tf.concat([tf.math.real(weighted), tf.math.imag(weighted)], -1), [-1, 2 * len(band)])
    pixels, angles = grids.full_grid(level)
    kept = schedule.kept[min(level - 1, len(schedule.kept) - 1)]
    best = np.full((count, 0), -np.inf, np.float32)
    best_cells, best_shifts = np.zeros((count, 0), np.int64), np.zeros((count, 0), np.int64)
    for start in range(0, len(pixels), block):
        cells = np.arange(start, min(start + block, len(pixels)))
        projections = matcher.reference.spectra(
            tf.constant(grids.cell_rotations(level, pixels[cells], angles[cells])), band
        )
        dot = tf.matmul(
            rows, tf.concat([tf.math.real(projections), tf.math.imag(projections)], -1), transpose_b=True
        )
        norm = tf.sqrt(tf.matmul(tf.square(ctf_band), tf.square(tf.abs(projections)), transpose_b=True))
        scores = tf.reshape(dot, [count, len(square), -1]) / (norm[:, None, :] * own[:, :, None] + 1e-30)
        scores = tf.transpose(scores, [0, 2, 1]).numpy()  # [B, M, S]
        order, shift_index = _keep(scores, kept)
        best = np.concatenate([best, np.take_along_axis(scores.max(axis=2), order, 1)], 1)
        best_cells = np.concatenate([best_cells, cells[order]], 1)
        best_shifts = np.concatenate([best_shifts, shift_index], 1)
        top = np.argsort(-best, axis=1)[:, :kept]
        best, best_cells, best_shifts = (
            np.take_along_axis(a, top, 1) for a in (best, best_cells, best_shifts)
        )
    return {
        "rotations": grids.cell_rotations(level, pixels[best_cells], angles[best_cells]),
        "shifts": square[best_shifts],
        "scores": best,
        "band": band,
    }


def _rotate(omega: tf.Tensor, rotations: tf.Tensor) -> tf.Tensor:
    """exp([omega]_x) R, by Rodrigues' formula, batched: [B, 3] axis-angle times [B, 3, 3]."""
    angle = tf.sqrt(tf.reduce_sum(tf.square(omega), -1, keepdims=True) + 1e-12)[..., None]
    x, y, z = tf.unstack(omega, axis=-1)
    zero = tf.zeros_like(x)
    skew = tf.reshape(tf.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1), [-1, 3, 3])
    eye = tf.eye(3, batch_shape=[tf.shape(omega)[0]])
    turn = eye + tf.sin(angle) / angle * skew + (1 - tf.cos(angle)) / tf.square(angle) * (skew @ skew)
    return turn @ rotations


def polish(matcher: Matcher, spectra, ctf, rotations, shifts, schedule: Schedule):
    """Gradient ascent on the full-band score over a rotation and a shift per particle."""
    band = band_indices(matcher.size, matcher.size // 2)
    frequencies = tf.constant(band_frequencies(matcher.size, band))
    particles, ctf_band = tf.gather(spectra, band, axis=1), tf.gather(ctf, band, axis=1)
    start = tf.constant(rotations)

    def score(omega, shift):
        projections = matcher.reference.spectra(_rotate(omega, start), band)
        centred = _centred_particles(particles, frequencies, shift[:, None, :])
        return _scores(centred, ctf_band, projections[:, None, :])[:, 0, 0]

    @tf.function
    def ascent(omega, shift):
        with tf.GradientTape() as tape:
            tape.watch([omega, shift])
            total = tf.reduce_sum(score(omega, shift))
        return tape.gradient(total, [omega, shift])

    variables = [tf.zeros([len(rotations), 3]), tf.constant(shifts)]
    moments = [[tf.zeros_like(v), tf.zeros_like(v)] for v in variables]
    for step in range(1, schedule.polish_steps + 1):
        gradients = ascent(*variables)
        for i, gradient in enumerate(gradients):
            # Adam, by hand: each particle's variables are independent, and the step must not
            # depend on how many particles share the batch.
            m, v = moments[i]
            m, v = 0.9 * m + 0.1 * gradient, 0.999 * v + 0.001 * tf.square(gradient)
            moments[i] = [m, v]
            update = (m / (1 - 0.9**step)) / (tf.sqrt(v / (1 - 0.999**step)) + 1e-12)
            rate = (schedule.polish_rate, schedule.polish_shift_rate)[i]
            variables[i] = variables[i] + rate * update
    return _rotate(variables[0], start).numpy(), variables[1].numpy(), score(*variables).numpy()


def posterior_spread(scores: np.ndarray, band_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(max probability, candidates holding 99.9%) of a softmax over each particle's candidate scores."""
    best = scores.max(axis=1, keepdims=True)
    # Gaussian log-likelihood of a correlation c with 2K real degrees of freedom: K c^2 / (1 - c_best^2).
    logits = band_size * np.square(scores) / np.maximum(1 - np.square(best), 1e-6)
    logits -= logits.max(axis=1, keepdims=True)
    probability = np.exp(logits)
    probability /= probability.sum(axis=1, keepdims=True)
    ordered = -np.sort(-probability, axis=1)
    significant = 1 + np.sum(np.cumsum(ordered, axis=1) < 0.999, axis=1)
    return probability.max(axis=1), np.minimum(significant, scores.shape[1])


def refine(
    reference: Reference,
    images: np.ndarray,
    ctf: np.ndarray | None = None,
    initial: np.ndarray | None = None,
    schedule: Schedule | None = None,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> Result:
    """Poses and shifts of particles [N, D, D] against a reference, batch by batch.

    Args:
        reference: the projections to match (`MapReference`, `RenderedReference`).
        images: the particles, rows y and columns x, pixel D // 2 at the origin.
        ctf: centred CTFs [N, D, D] of the particles; None for none.
        initial: starting poses [N, 3, 3] (e.g. an estimator's); None for a global search.
        schedule: the search's levels, candidates and polish.
        batch_size: particles searched at once.
        progress: called with (particles done in this batch, all particles).
    """
    schedule = schedule or Schedule()
    matcher = Matcher(reference)
    size = reference.size
    parts = []
    for start in range(0, len(images), batch_size):
        rows = slice(start, min(start + batch_size, len(images)))
        spectra = tf.reshape(images_to_spectra(images[rows]), [len(images[rows]), -1])
        block = (
            tf.ones([len(images[rows]), size * size])
            if ctf is None
            else tf.reshape(ctf[rows], [len(images[rows]), -1])
        )
        if schedule.exhaustive:
            found = exhaustive_search(matcher, spectra, block, schedule)
        else:
            found = search(matcher, spectra, block, schedule, None if initial is None else initial[rows])
        probability, significant = posterior_spread(found["scores"], len(found["band"]))
        rotations, shifts, scores = polish(
            matcher, spectra, block, found["rotations"][:, 0], found["shifts"][:, 0], schedule
        )
        parts.append((rotations, shifts, scores, probability, significant))
        if progress is not None:
            progress(len(images[rows]), len(images))
    return Result(*(np.concatenate(column) for column in zip(*parts, strict=True)))
