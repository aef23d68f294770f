"""Figures of `toolkit compress`: ALS convergence per layer (poster Fig. 9) and the rank sweep."""

from __future__ import annotations

from pathlib import Path

from matplotlib.ticker import MaxNLocator

from toolkit.figures.plots import plt, save


def als_convergence(curves: dict[str, list[float]], ranks: dict[str, int], path: Path) -> Path:
    """Relative error of each layer's fitted tensor after every ALS sweep, log y.

    Args:
        curves: ALS error curve per compressed layer name (e.g. `"decoder/grid_dense"`); for an
            outputs fit it is the error of the whitened kernel, i.e. of the layer's outputs.
        ranks: the CP rank of each layer, for the legend.
        path: where to write the PNG.
    """
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for name, errors in curves.items():
        ax.plot(range(1, len(errors) + 1), errors, label=f"{name} (rank {ranks[name]})")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("ALS iteration")
    ax.set_ylabel("relative error of the fitted tensor")
    ax.set_title("CP-ALS convergence")
    ax.legend(fontsize=7)
    return save(fig, path)


def rank_sweep(rows: list[dict], original: dict, path: Path, finetune_steps: int, metric: str) -> Path:
    """The validation loss and one more metric against the parameters of the compressed layers.

    Args:
        rows: one dict per rank with `rank`, `layer_params`, `compressed` and, when fine-tuned,
            `finetuned` (each a metrics dict with `loss` and `metric`).
        original: metrics of the uncompressed model (drawn as a horizontal line).
        path: where to write the PNG.
        finetune_steps: steps of the short fine-tune behind `finetuned`, for the legend.
        metric: the key of the second panel, e.g. `"val_mse"` (drawn on a log axis).
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    x = [row["layer_params"] for row in rows]
    for ax, key, label in (
        (axes[0], "loss", "validation loss (the task's; -ELBO for a VAE)"),
        (axes[1], metric, metric),
    ):
        ax.plot(x, [row["compressed"][key] for row in rows], marker="o", label="before fine-tuning")
        if all("finetuned" in row for row in rows):
            tuned = [row["finetuned"][key] for row in rows]
            ax.plot(x, tuned, marker="s", label=f"after {finetune_steps} fine-tuning steps")
        ax.axhline(original[key], color="0.3", linestyle="--", linewidth=0.8, label="original (Dense)")
        for row in rows:
            ax.annotate(
                f"r={row['rank']}",
                (row["layer_params"], row["compressed"][key]),
                textcoords="offset points",
                xytext=(3, 4),
                fontsize=7,
            )
        ax.set_xscale("log")
        ax.set_xlabel("parameters of the compressed layers")
        ax.set_ylabel(label)
    axes[1].set_yscale("log")  # the loss can be negative (a Gaussian -ELBO): linear axis there
    axes[1].legend(fontsize=7)
    fig.suptitle("CP rank sweep")
    return save(fig, path)
