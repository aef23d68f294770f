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
    """Training loss and held-out negative ELBO per epoch, and held-out SSIM."""
    epochs = [int(r["epoch"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.plot(epochs, [float(r["train_loss"]) for r in rows], marker="o", label="train loss")
    left.plot(epochs, [-float(r["val_elbo"]) for r in rows], marker="o", label="validation -ELBO")
    left.set_xlabel("epoch")
    left.set_ylabel("nats per example")
    left.legend()
    right.plot(epochs, [float(r["val_ssim"]) for r in rows], marker="o", label="posterior mean")
    if rows and "val_ssim_prior" in rows[0]:
        right.plot(epochs, [float(r["val_ssim_prior"]) for r in rows], marker="o", label="prior mean")
    right.set_xlabel("epoch")
    right.set_ylabel("validation SSIM")
    right.legend()
    return save(fig, path)


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
