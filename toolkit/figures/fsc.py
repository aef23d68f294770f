"""The figure of `toolkit fsc`: the FSC curve against spatial frequency, with its threshold crossings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.figures.plots import plt, sns
from toolkit.io.atomic import replace_atomically
from toolkit.reconstruction.fsc import FscCurve, resolution


def fsc_figure(
    curve: FscCurve,
    path: str | os.PathLike,
    pixel_size: float,
    thresholds: tuple[float, ...] = (0.5, 0.143),
    title: str = "Fourier shell correlation",
) -> Path:
    """FSC against frequency in 1/Angstrom, a dashed line per threshold and its crossing marked.

    Args:
        curve: from `toolkit.reconstruction.fsc.fsc_curve`.
        path: PNG file to write, atomically (its folder is created).
        pixel_size: Angstrom per pixel (> 0).
        thresholds: FSC values to mark. Default value: `(0.5, 0.143)`.
        title: figure title. Default value: `"Fourier shell correlation"`.

    Returns:
        `path` as a `Path`.
    """
    path = Path(path)
    crossings = [(threshold, resolution(curve, threshold, pixel_size)) for threshold in thresholds]
    frequency = np.asarray(curve.frequency) / pixel_size
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.plot(frequency, curve.fsc, marker="o", markersize=3, color="0.15", label="FSC")
    palette = sns.color_palette()
    for index, (threshold, crossing) in enumerate(crossings):
        color = palette[(index + 1) % len(palette)]
        if crossing is None:
            text, x = f"{threshold:g}: does not cross (better than {1 / frequency[-1]:.1f} Å)", frequency[-1]
            ax.annotate(text, (x, threshold), xytext=(-4, 4), textcoords="offset points", ha="right",
                        fontsize=7, color=color)  # fmt: skip
        else:
            x = crossing.frequency / pixel_size
            ax.plot([x], [threshold], marker="o", color=color)
            ax.annotate(f"{threshold:g}: {crossing.angstrom:.1f} Å", (x, threshold), xytext=(5, 5),
                        textcoords="offset points", fontsize=7, color=color)  # fmt: skip
        ax.axhline(threshold, color=color, linestyle="--", linewidth=0.8)
    ax.axhline(0.0, color="0.6", linewidth=0.5)
    ax.set_xlim(0.0, frequency[-1])
    ax.set_ylim(min(-0.1, float(np.min(curve.fsc)) - 0.05), 1.05)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    # the top axis labels the same ticks as resolutions; 1/x scaling would put a tick at infinity
    ticks = [tick for tick in ax.get_xticks() if 0 < tick <= frequency[-1] * (1 + 1e-9)]
    top = ax.secondary_xaxis("top")
    top.set_xticks(ticks, [f"{1 / tick:.1f}" for tick in ticks])
    top.set_xlabel("resolution (Å)")
    ax.set_title(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace_atomically(path, lambda temporary: fig.savefig(temporary, format="png", dpi=120))
    finally:
        plt.close(fig)
    return path


def map_views_figure(maps: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Central slices and projections along z, y and x of cubic maps, a row per map, each scaled to its range.

    Args:
        maps: name -> map `[z, y, x]`.
        path: PNG file to write.

    Returns:
        `path` as a `Path`.
    """
    from toolkit.figures.plots import image_grid

    rows = []
    for volume in maps.values():
        centre = volume.shape[0] // 2
        views = [volume[centre], volume[:, centre], volume[:, :, centre]]
        views += [volume.sum(axis=axis) for axis in (0, 1, 2)]
        scaled = []
        for view in views:
            low, span = view.min(), max(float(np.ptp(view)), 1e-12)
            scaled.append(((view - low) / span)[::-1, :, None])  # row 0 holds the lowest coordinate
        rows.append(scaled)
    columns = ["slice z", "slice y", "slice x", "proj. z", "proj. y", "proj. x"]
    return image_grid(
        np.asarray(rows),
        Path(path),
        "central slices and projections",
        row_labels=list(maps),
        column_labels=columns,
    )
