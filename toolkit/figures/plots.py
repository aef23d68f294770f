"""Figures of a run: reconstructions, the Lambert map of orientations, loss curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="white", context="paper")


def reconstructions(truth: np.ndarray, reconstruction: np.ndarray, path: Path, title: str) -> Path:
    """Truth (top row) over reconstruction (bottom row), the poster's Fig. 6; images [N, H, W, 1]."""
    count = len(truth)
    fig, axes = plt.subplots(2, count, figsize=(1.3 * count, 2.9), squeeze=False)
    for column in range(count):
        for row, images in enumerate((truth, reconstruction)):
            ax = axes[row, column]
            ax.imshow(images[column, ..., 0], cmap="gray", origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("truth")
    axes[1, 0].set_ylabel("reconstruction")
    fig.suptitle(title)
    return save(fig, path)


def lambert_map(points: np.ndarray, path: Path, title: str) -> Path:
    """Lambert azimuthal equal-area projection of view directions ([N, 2] points in the radius-2 disc)."""
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, color=sns.color_palette()[0], linewidths=0)
    for radius, style in ((2.0, "-"), (np.sqrt(2.0), ":")):
        ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="0.3", linestyle=style, linewidth=0.8))
    ax.set_xlim(-2.05, 2.05)
    ax.set_ylim(-2.05, 2.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    ax.text(0, -2.0, "dotted: equator; edge: -z pole", ha="center", va="bottom", fontsize=7, color="0.3")
    return save(fig, path)


def loss_curves(rows: list[dict], path: Path) -> Path:
    """Training loss (and held-out negative ELBO) per epoch, and the held-out quality metric."""
    epochs = [int(r["epoch"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot(epochs, [float(r["train_loss"]) for r in rows], marker="o", label="train loss")
    if rows and "val_elbo" in rows[0]:
        left.plot(epochs, [-float(r["val_elbo"]) for r in rows], marker="o", label="validation -ELBO")
    left.set_xlabel("epoch")
    left.set_ylabel("loss per example")
    left.legend()
    if rows and "val_ssim" in rows[0]:
        right.plot(epochs, [float(r["val_ssim"]) for r in rows], marker="o", label="posterior mean")
        if "val_ssim_prior" in rows[0]:
            right.plot(epochs, [float(r["val_ssim_prior"]) for r in rows], marker="o", label="prior mean")
        right.set_ylabel("validation SSIM")
    elif rows and "val_median_error_deg" in rows[0]:
        right.plot(epochs, [float(r["val_median_error_deg"]) for r in rows], marker="o", label="median")
        right.plot(epochs, [float(r["val_mean_error_deg"]) for r in rows], marker="o", label="mean")
        right.set_ylabel("validation orientation error (degrees)")
    right.set_xlabel("epoch")
    right.legend()
    return save(fig, path)


def error_histogram(errors_deg: np.ndarray, path: Path) -> Path:
    """Histogram of geodesic orientation errors in degrees, with the median and 5/10/15-degree marks."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(errors_deg, bins=np.linspace(0, 180, 73), color=sns.color_palette()[0])
    median = float(np.median(errors_deg))
    ax.axvline(median, color="0.2", linestyle="--", label=f"median {median:.1f} deg")
    for limit in (5, 10, 15):
        ax.axvline(limit, color="0.6", linewidth=0.6)
    ax.set_xlabel("geodesic error (degrees)")
    ax.set_ylabel("held-out shadows")
    ax.legend()
    return save(fig, path)


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# MNIST figures: images are shown top row first (origin "upper"), unlike the shadow panels.


def latent_clusters(
    points2d: np.ndarray,
    labels: np.ndarray,
    path: Path,
    title: str = "latent means by digit",
    axis_labels: tuple[str, str] = ("$z_1$", "$z_2$"),
) -> Path:
    """Latent means coloured by digit, the poster's Fig. 2.

    Args:
        points2d: `[N, 2]` latent means (or their first two principal components).
        labels: `[N]` digit of each point.
        path: PNG file to write.
        title: figure title.
        axis_labels: names of the two axes, e.g. `("PC 1", "PC 2")` after PCA.
    """
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    palette = sns.color_palette("tab10", 10)
    for digit in np.unique(labels):
        chosen = labels == digit
        ax.scatter(
            points2d[chosen, 0],
            points2d[chosen, 1],
            s=6,
            alpha=0.7,
            linewidths=0,
            color=palette[int(digit) % 10],
            label=str(digit),
        )
    ax.legend(
        title="digit",
        markerscale=2.5,
        fontsize=7,
        title_fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        frameon=False,
    )
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.set_title(title)
    return save(fig, path)


def map_projections(maps: dict, path: Path, title: str) -> Path:
    """Each map [D, D, D] (z, y, x) summed along z, y and x: one row per map, named by its key."""
    axes_names = ("along z", "along y", "along x")
    fig, axes = plt.subplots(len(maps), 3, figsize=(6.0, 2.1 * len(maps) + 0.4), squeeze=False)
    for row, (name, volume) in enumerate(maps.items()):
        for column, axis in enumerate((0, 1, 2)):
            ax = axes[row, column]
            ax.imshow(np.sum(volume, axis=axis), cmap="gray", origin="lower", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(axes_names[column], fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save(fig, path)


def image_grid(
    images: np.ndarray,
    path: Path,
    title: str,
    columns: int | None = None,
    row_labels: list[str] | None = None,
    column_labels: list[str] | None = None,
) -> Path:
    """Images in a grid, for reconstructions, samples from the prior and latent sweeps.

    The grid is drawn as one montage image (one axes instead of one per image, which keeps
    an 80-image figure fast to draw).

    Args:
        images: `[N, H, W, 1]` (laid out row by row in `columns` columns) or a ready grid
            `[rows, columns, H, W, 1]`; intensities in [0, 1].
        path: PNG file to write.
        title: figure title.
        columns: columns for `[N, H, W, 1]` input; default a near-square grid.
        row_labels: a label left of each row, or `None`.
        column_labels: a label above each column, or `None`.
    """
    images = np.asarray(images, np.float32)
    if images.ndim == 4:
        columns = columns or int(np.ceil(np.sqrt(len(images))))
        rows = int(np.ceil(len(images) / columns))
        padded = np.zeros((rows * columns,) + images.shape[1:], np.float32)
        padded[: len(images)] = images
        images = padded.reshape((rows, columns) + images.shape[1:])
    rows, columns, height, width = images.shape[:4]
    gap = 2  # pixels of the background between images
    montage = np.ones((rows * (height + gap) - gap, columns * (width + gap) - gap), np.float32)
    for row in range(rows):
        for column in range(columns):
            top, left = row * (height + gap), column * (width + gap)
            montage[top : top + height, left : left + width] = images[row, column, ..., 0]
    fig, ax = plt.subplots(figsize=(0.55 * columns + 0.8, 0.55 * rows + 0.7))
    ax.imshow(montage, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks([c * (width + gap) + width / 2 for c in range(columns)] if column_labels else [])
    ax.set_yticks([r * (height + gap) + height / 2 for r in range(rows)] if row_labels else [])
    if column_labels:
        ax.set_xticklabels(column_labels, fontsize=7)
        ax.xaxis.tick_top()
    if row_labels:
        ax.set_yticklabels(row_labels, fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def latent_sweep(images_grid: np.ndarray, path: Path, values=None, dimension: int = 0) -> Path:
    """Poster Fig. 3: each row a digit, each column one value of a single latent dimension.

    Args:
        images_grid: `[digits, steps, H, W, 1]` decoded images.
        path: PNG file to write.
        values: the `steps` swept values (for the column labels), or `None`.
        dimension: index of the swept latent dimension (for the title).
    """
    labels = None if values is None else [f"{v:+.1f}" for v in values]
    return image_grid(
        images_grid,
        path,
        f"latent dimension {dimension} swept, the others at 0",
        row_labels=[str(d) for d in range(len(images_grid))],
        column_labels=labels,
    )


def class_samples(images_grid: np.ndarray, path: Path) -> Path:
    """Class-conditional samples: row d decodes digit d; a column shares one latent draw (its style).

    Args:
        images_grid: `[digits, samples, H, W, 1]` decoded images.
        path: PNG file to write.
    """
    return image_grid(
        images_grid,
        path,
        "samples from the prior, one digit per row, one draw per column",
        row_labels=[str(d) for d in range(len(images_grid))],
    )
