"""`toolkit compress RUN_DIR`: a thin command around `toolkit.runs.compress.compress_run`."""

from __future__ import annotations

from pathlib import Path

import click

from toolkit.errors import RunError


def parse_ranks(text: str) -> tuple[int, ...]:
    """`"2,4,8"` to `(2, 4, 8)`; an empty string gives no ranks."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise RunError(
            f"--sweep {text!r}: expected a comma list of positive integers, e.g. 2,4,8,16"
        ) from None


def describe(summary: dict) -> str:
    """One line: the parameter ratio and the changes of the validation metrics."""
    params, change = summary["parameters"], summary["relative_change"]
    others = ", ".join(f"{key} {value['finetuned']:+.1%}" for key, value in change.items() if key != "loss")
    return (
        f"compressed layers {params['layers_before']:,} -> {params['layers_after']:,} parameters "
        f"({params['layers_ratio']:.1f}x; model {params['model_ratio']:.2f}x); relative change of the "
        f"validation loss {change['loss']['compressed']:+.2%} before, "
        f"{change['loss']['finetuned']:+.2%} after "
        f"{summary['finetune']['steps']} fine-tuning steps ({others})"
    )


@click.command("compress")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--reduction",
    type=float,
    default=10.0,
    show_default=True,
    help="Times fewer parameters per part's compressed layers; each layer's rank is chosen from it.",
)
@click.option("--rank", type=int, default=None, help="One CP rank for every layer (overrides --reduction).")
@click.option(
    "--fit",
    type=click.Choice(["outputs", "weights"]),
    default="outputs",
    show_default=True,
    help="Fit each layer's outputs on training activations, or its kernel.",
)
@click.option(
    "--modes",
    type=int,
    default=1,
    show_default=True,
    help="Factors each kernel axis is split into (1: a matrix; --fit outputs keeps the input axis whole).",
)
@click.option(
    "--layers",
    metavar="NAMES",
    default=None,
    help="Comma list such as decoder/hidden_dense,decoder/grid_dense "
    "(default: every encoder/decoder part with a Dense layer of >= 10,000 parameters).",
)
@click.option(
    "--finetune-steps",
    type=int,
    default=None,
    help="Optimizer steps after compressing (default: a quarter of the run's training steps).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="New run directory (default RUN_DIR-cpd-<reduction>x, or RUN_DIR-cpd-r<rank>).",
)
@click.option(
    "--sweep", default="2,4,8,16", show_default=True, help="Ranks of the rank-sweep figure ('' for none)."
)
@click.option(
    "--sweep-finetune-steps",
    type=int,
    default=50,
    show_default=True,
    help="Fine-tuning steps of each sweep point (0: before fine-tuning only).",
)
@click.option(
    "--learning-rate", type=float, default=None, help="Fine-tuning learning rate (default: the recipe's)."
)
@click.option(
    "--distill",
    type=float,
    default=0.0,
    show_default=True,
    help="Weight of a fine-tuning term matching the original's reconstructions (VAE runs).",
)
@click.option("--no-export", is_flag=True, help="Skip the SavedModel.")
def compress(
    run_dir,
    reduction,
    rank,
    fit,
    modes,
    layers,
    finetune_steps,
    out,
    sweep,
    sweep_finetune_steps,
    learning_rate,
    distill,
    no_export,
):
    """Replace the large Dense layers of a trained RUN_DIR by CPDDense, fine-tune, and write a new run."""
    from toolkit.runs.compress import compress_run, default_out

    names = None if layers is None else layers.split(",")
    summary = compress_run(
        run_dir,
        rank,
        names,
        finetune_steps,
        out,
        parse_ranks(sweep),
        sweep_finetune_steps,
        learning_rate=learning_rate,
        export=not no_export,
        reduction=reduction,
        modes=modes,
        fit=fit,
        distill=distill,
    )
    click.echo(f"{out or default_out(run_dir, rank, reduction)}: {describe(summary)}")
