"""`toolkit compress` and `dense_rank`: a trained run's Dense layers CP-compressed into a new run."""

import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.commands.compress import compress as compress_command
from toolkit.commands.compress import describe
from toolkit.errors import RecipeError, RunError
from toolkit.layers import CPDDense, ProjectionDecoder, RotationConditionedEncoder
from toolkit.layers.cpd_dense import auto_factors
from toolkit.recipes.loader import load_recipe
from toolkit.runs.compress import (
    Distilled,
    build_compressed,
    compress_run,
    compressed_recipe,
    fit_layers,
    layer_inputs,
    plan_layers,
    sublayer,
    transfer,
)
from toolkit.runs.directory import load_run
from toolkit.runs.setup import Setup
from toolkit.runs.train import run
from toolkit.tasks.conditional_vae import evaluate

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
#: f_shadow shrunk to seconds; hidden_dense is 7 -> 8 and grid_dense 8 -> 4 * 4 * 8 = 128.
TINY = [
    "strategy.type=default",
    "data.image_size=16",
    "data.sequence_length=2",
    "data.validation_size=16",
    "model.latent_dim=3",
    "model.encoder.filters=[4]",
    "model.encoder.units=8",
    "model.encoder.condition_units=4",
    "model.sampler.units=4",
    "model.decoder.filters=[8, 8]",
    "model.decoder.units=8",
    "model.decoder.condition_units=4",
    "train.global_batch_size=4",
    "train.epochs=1",
    "train.steps_per_epoch=3",
    "train.checkpoint_every=3",
    "output.figures=false",
    "output.export=false",
]
ALL_LAYERS = ["encoder/output_dense", "decoder/hidden_dense", "decoder/grid_dense"]
DECODER_LAYERS = "decoder/hidden_dense,decoder/grid_dense"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("compress") / "tiny"
    run(RECIPES / "f_shadow.yaml", TINY, out=run_dir, quiet=True)
    return run_dir


@pytest.fixture(scope="module")
def compressed(trained) -> tuple[Path, dict]:
    """The default plan (outputs fit, ranks from the budget) at 2x on every compressible layer
    (min_params=0 selects them all; the tiny layers cannot be cut 10x), 2 fine-tuning steps."""
    summary = compress_run(
        trained, reduction=2, finetune_steps=2, sweep_ranks=(1, 2), sweep_finetune_steps=1, min_params=0
    )
    return trained.with_name("tiny-cpd-2x"), summary


def cp_params(rank: int, in_features: int, units: int) -> int:
    """R * (sum of the input and output mode sizes) + bias, modes as CPDDense picks them."""
    return rank * (sum(auto_factors(in_features)) + sum(auto_factors(units))) + units


def test_parameter_counts_follow_the_budget(trained, compressed):
    _, summary = compressed
    original = load_run(trained).model
    assert list(summary["layers"]) == ALL_LAYERS
    before = after = 0
    for name in ALL_LAYERS:
        in_features, units = sublayer(original, name).kernel.shape
        info = summary["layers"][name]
        assert (info["input_modes"], info["output_modes"]) == ([in_features], [units])
        assert info["params_before"] == in_features * units + units
        assert info["params_after"] == info["rank"] * (in_features + units) + units
        before, after = before + info["params_before"], after + info["params_after"]
    params = summary["parameters"]
    assert (params["layers_before"], params["layers_after"]) == (before, after)
    assert params["layers_ratio"] == pytest.approx(before / after)
    assert params["model_before"] == original.count_params()
    assert params["model_after"] == params["model_before"] - before + after
    for part, ratio in params["parts_ratio"].items():
        members = [info for name, info in summary["layers"].items() if name.startswith(part)]
        assert ratio >= 2, part
        # The budget is spent: one more rank of the cheapest layer would break it.
        spare = sum(i["params_before"] for i in members) / 2 - sum(i["params_after"] for i in members)
        assert spare < min(i["kernel_shape"][0] + i["kernel_shape"][1] for i in members), part


def test_ranks_follow_the_whitened_spectra(trained):
    """A looser budget buys more ranks and takes none away from any layer."""
    loaded = load_run(trained, with_data=True)
    names = ["decoder/hidden_dense", "decoder/grid_dense"]
    inputs = layer_inputs(loaded.model, loaded.data, names, batch_size=4, batches=4)
    grid = inputs["decoder/grid_dense"]
    assert (grid.count, grid.covariance.shape) == (4 * 4 * 2, (8, 8))  # batches x batch x views; units
    loose = plan_layers(loaded.model, names, inputs, None, reduction=1.5, modes=1)
    tight = plan_layers(loaded.model, names, inputs, None, reduction=3, modes=1)
    assert all(loose[name]["rank"] >= tight[name]["rank"] for name in names)
    assert sum(loose[name]["rank"] for name in names) > sum(tight[name]["rank"] for name in names)


def test_validation_numbers_are_consistent(trained, compressed):
    _, summary = compressed
    metrics, change = summary["validation"], summary["relative_change"]
    loaded = load_run(trained, with_data=True)
    data, original, step = loaded.data, loaded.model, loaded.step
    assert metrics["original"]["val_elbo"] == pytest.approx(evaluate(original, data.validation)["val_elbo"])
    for stage in ("original", "compressed", "finetuned"):
        assert metrics[stage]["loss"] == -metrics[stage]["val_elbo"]
    for key in ("loss", "val_mse", "val_ssim"):
        for stage in ("compressed", "finetuned"):
            base = metrics["original"][key]
            assert change[key][stage] == pytest.approx((metrics[stage][key] - base) / abs(base))
    assert (summary["source_step"], summary["step"]) == (step, step + 2)
    assert [row["rank"] for row in summary["sweep"]] == [1, 2]
    shapes = [info["kernel_shape"] for info in summary["layers"].values()]
    assert summary["sweep"][1]["layer_params"] == sum(2 * (i + o) + o for i, o in shapes)
    assert "compressed layers" in describe(summary)


def test_new_run_directory_reloads_with_the_fine_tuned_model(compressed):
    out, summary = compressed
    for name in ("figures/als_convergence.png", "figures/rank_sweep.png", "saved_model/saved_model.pb"):
        assert (out / name).stat().st_size > 0, name
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    for name in ALL_LAYERS:
        part, sub = name.split("/")
        written = recipe["model"][part]["dense_cp"][sub]
        info = summary["layers"][name]
        assert written == {k: info[k] for k in ("rank", "input_modes", "output_modes")}, name
    loaded = load_run(out, with_data=True)
    data, model, step = loaded.data, loaded.model, loaded.step
    assert step == summary["step"]
    for name in ALL_LAYERS:
        layer = sublayer(model, name)
        assert isinstance(layer, CPDDense) and layer.rank == summary["layers"][name]["rank"], name
    assert not any("grid_dense/kernel" in v.path for v in model.trainable_variables)
    reloaded = evaluate(model, data.validation)
    assert reloaded["val_elbo"] == pytest.approx(summary["validation"]["finetuned"]["val_elbo"], rel=1e-5)
    assert set(tf.saved_model.load(str(out / "saved_model")).signatures) == {"encode", "decode"}


def test_compressed_layers_stay_within_the_als_error_bound(trained):
    """A weights fit of balanced modes at rank 2:
    ||f(x) - f_cp(x)||_F <= ||x||_F ||W - W_cp||_2 <= ||x||_F rel_error ||W||_F (ReLU is 1-Lipschitz)."""
    loaded = load_run(trained)
    original = loaded.model
    plan = plan_layers(original, ALL_LAYERS, None, 2, reduction=10, modes=2)
    fits, infos = fit_layers(original, plan, None, {})
    model, _ = build_compressed(compressed_recipe(loaded.recipe, plan), loaded.shapes)
    transfer(original, model, fits)
    for name in ALL_LAYERS:
        dense, cpd = sublayer(original, name), sublayer(model, name)
        in_features, units = dense.kernel.shape
        assert cpd.count_params() == cp_params(2, in_features, units), name
        x = np.random.default_rng(0).standard_normal((32, dense.kernel.shape[0])).astype("float32")
        gap = np.linalg.norm(keras.ops.convert_to_numpy(dense(x) - cpd(x)))
        bound = np.linalg.norm(x) * infos[name]["relative_error"] * np.linalg.norm(dense.kernel.numpy())
        assert gap <= bound * (1 + 1e-4) + 1e-5, name
    # Everything else is a copy of the original.
    kept = {v.path: v.numpy() for v in original.variables if "_dense/" not in v.path or "condition" in v.path}
    copied = {v.path: v.numpy() for v in model.variables if v.path in kept}
    assert copied.keys() == {k for k in kept if "seed_generator" not in k} and all(
        np.array_equal(copied[k], kept[k]) for k in copied
    )


def test_full_rank_decoder_reproduces_the_model(trained, tmp_path):
    """At rank 64 the CP of both tiny decoder kernels is exact, so validation metrics are unchanged."""
    summary = compress_run(
        trained, 64, DECODER_LAYERS, finetune_steps=0, out=tmp_path / "full", sweep_ranks=(), export=False
    )
    assert list(summary["layers"]) == DECODER_LAYERS.split(",")
    assert all(info["relative_error"] < 1e-4 for info in summary["layers"].values())
    assert abs(summary["relative_change"]["val_mse"]["compressed"]) < 1e-3
    assert abs(summary["relative_change"]["loss"]["compressed"]) < 1e-5
    written = yaml.safe_load((tmp_path / "full" / "recipe.yaml").read_text())["model"]
    assert written["encoder"]["dense_cp"] is None
    assert {sub: spec["rank"] for sub, spec in written["decoder"]["dense_cp"].items()} == {
        "hidden_dense": 64,
        "grid_dense": 64,
    }


def test_one_decoder_layer_compresses_alone(trained, tmp_path):
    summary = compress_run(
        trained,
        3,
        "decoder/grid_dense",
        finetune_steps=0,
        out=tmp_path / "grid",
        sweep_ranks=(),
        export=False,
    )
    model = load_run(tmp_path / "grid").model
    assert isinstance(model.decoder.grid_dense, CPDDense) and model.decoder.grid_dense.rank == 3
    assert type(model.decoder.hidden_dense) is keras.layers.Dense
    assert list(summary["layers"]) == ["decoder/grid_dense"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"rank": 0}, "--rank 0: expected a positive integer"),
        ({"rank": -3}, "--rank -3"),
        ({"rank": 2, "sweep_ranks": (2, 0)}, "--sweep 0"),
        (
            {"rank": 2, "layers": "decoder/gird_dense"},
            "'decoder/gird_dense': no such Dense layer in the model; "
            "expected one of encoder/output_dense, decoder/hidden_dense, decoder/grid_dense",
        ),
        (
            {"rank": 2, "layers": "decoder/condition_dense"},
            "'decoder/condition_dense': a recipe cannot declare it",
        ),
        ({"rank": 2}, "no Dense layer with >= 10,000 parameters to compress"),
        ({"reduction": 1}, "--reduction 1: expected a number > 1"),
        ({"rank": 2, "fit": "kernel"}, "--fit 'kernel': expected one of outputs, weights"),
        ({"rank": 2, "modes": 0}, "--modes 0: expected a positive integer"),
        (
            {"min_params": 0},
            "--reduction 10: the encoder's encoder/output_dense cannot be cut that much (rank 1 with the "
            "biases takes 276 of 2,088 parameters); expected a smaller --reduction or --rank",
        ),
    ],
    ids=[
        "zero-rank",
        "negative-rank",
        "sweep-rank",
        "unknown-layer",
        "not-compressible",
        "too-small",
        "no-reduction",
        "unknown-fit",
        "zero-modes",
        "budget-too-tight",
    ],
)
def test_bad_input_raises_and_writes_nothing(trained, tmp_path, kwargs, expected):
    out = tmp_path / "out"
    with pytest.raises(RunError) as caught:
        compress_run(trained, out=out, **kwargs)
    assert expected in str(caught.value)
    assert not out.exists()


def test_existing_output_and_missing_run_are_refused(trained, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(RunError, match="not an empty directory"):
        compress_run(trained, 2, out=tmp_path / "taken", min_params=0)
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    with pytest.raises(RunError, match="no recipe.yaml"):
        compress_run(tmp_path / "missing", 2, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [(["--rank", "0"], "--rank 0"), (["--rank", "2", "--layers", "decoder/nope"], "decoder/grid_dense")],
)
def test_command_exits_2_with_one_line(trained, tmp_path, options, expected):
    # A group of the toolkit's own class, for its error mapping (RunError -> exit 2).
    group = type(cli)(name="toolkit", commands={"compress": compress_command})
    result = CliRunner().invoke(group, ["compress", str(trained), "--out", str(tmp_path / "out"), *options])
    assert result.exit_code == 2, result.output
    assert expected in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def built_model(recipe):
    setup = Setup(recipe)
    return setup.model(setup.source.shapes(setup.task.orientation_condition))[0]


def test_f_shadow_cpd_recipe_declares_cpd_layers():
    path = RECIPES / "f_shadow_cpd.yaml"
    recipe = load_recipe(path)
    ranks = {"encoder/output_dense": 12, "decoder/hidden_dense": 34, "decoder/grid_dense": 21}
    small = ["strategy.type=default", "data.validation_size=2"]
    model = built_model(load_recipe(path, small))
    plain = built_model(load_recipe(RECIPES / "f_shadow.yaml", small))
    saved = 0
    for name, rank in ranks.items():
        part, sub = name.split("/")
        assert recipe["model"][part]["dense_cp"][sub]["rank"] == rank
        layer = sublayer(model, name)
        assert isinstance(layer, CPDDense) and layer.rank == rank, name
        in_features, units = sublayer(plain, name).kernel.shape
        assert (layer.input_modes, layer.output_modes) == ((in_features,), (units,)), name
        saved += in_features * units - rank * (in_features + units)
    assert type(model.decoder.condition_dense) is keras.layers.Dense
    assert model.count_params() == plain.count_params() - saved


def test_dense_rank_is_validated_typed_and_serialized(tmp_path):
    for layer_class, args in ((RotationConditionedEncoder, {}), (ProjectionDecoder, {"image_size": 16})):
        for bad in (0, -2, True, 2.5, "8"):
            with pytest.raises(ValueError, match=f"{layer_class.__name__}: `dense_rank` .* got {bad!r}"):
                layer_class(dense_rank=bad, **args)
        layer = layer_class(dense_rank=3, **args)
        assert layer_class.from_config(layer.get_config()).dense_rank == 3
        assert layer_class(**args).get_config()["dense_rank"] is None
    with pytest.raises(RecipeError, match="model.decoder.dense_rank: expected a number >= 1, got 0"):
        load_recipe(RECIPES / "f_shadow.yaml", ["model.decoder.dense_rank=0"])
    with pytest.raises(RecipeError, match="model.encoder.dense_rank: expected an integer, got 'x'"):
        load_recipe(RECIPES / "f_shadow.yaml", ["model.encoder.dense_rank=x"])
    assert (
        load_recipe(RECIPES / "f_shadow_cpd.yaml", ["model.decoder.dense_cp=null"])["model"]["decoder"][
            "dense_cp"
        ]
        is None
    )


def test_dense_cp_is_validated_and_serialized():
    spec = {"grid_dense": {"rank": 3, "input_modes": [8], "output_modes": [8, 16]}, "hidden_dense": None}
    decoder = ProjectionDecoder(image_size=16, filters=(8, 2), units=8, dense_cp=spec, dense_rank=2)
    decoder(np.zeros((2, 3), "float32"))
    assert (decoder.grid_dense.rank, decoder.grid_dense.output_modes) == (3, (8, 16))
    assert decoder.hidden_dense.rank == 2  # not named in dense_cp: dense_rank decides
    config = ProjectionDecoder.from_config(decoder.get_config()).get_config()
    assert config["dense_cp"] == {"grid_dense": spec["grid_dense"]}
    for bad, message in (
        ({"output_dense": {"rank": 2}}, "names 'output_dense'; expected some of hidden_dense, grid_dense"),
        ({"grid_dense": {"rank": 0}}, "`dense_cp.grid_dense.rank` must be a positive integer, got 0"),
        (
            {"grid_dense": {"rank": 2, "modes": [2]}},
            "must be a mapping of rank, input_modes and output_modes",
        ),
        ([2], "`dense_cp` must be a mapping of sublayer names or None"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            ProjectionDecoder(image_size=16, dense_cp=bad)
    with pytest.raises(RecipeError, match=r"model.encoder.dense_cp.output_dense.rank: missing required key"):
        load_recipe(RECIPES / "f_shadow.yaml", ["model.encoder.dense_cp.output_dense.input_modes=[4128]"])


def test_an_orientation_run_compresses_through_its_task(tmp_path, tiny_f_orientation):
    """The task decides the metrics: an estimator is scored by its geodesic error, not an ELBO."""
    recipe, overrides = tiny_f_orientation
    run(recipe, overrides + ["output.figures=false", "output.export=false"], out=tmp_path / "run", quiet=True)
    summary = compress_run(
        tmp_path / "run", 2, "encoder/output_dense", finetune_steps=1, out=tmp_path / "cpd", sweep_ranks=()
    )
    assert set(summary["relative_change"]) == {"loss", "val_median_error_deg", "val_mean_error_deg"}
    for stage in ("original", "compressed", "finetuned"):
        metrics = summary["validation"][stage]
        assert metrics["loss"] == metrics["val_mean_error_deg"] and 0 <= metrics["loss"] <= 180
    loaded = load_run(tmp_path / "cpd")
    assert isinstance(sublayer(loaded.model, "encoder/output_dense"), CPDDense) and loaded.step == 3
    assert set(tf.saved_model.load(str(tmp_path / "cpd" / "saved_model")).signatures) == {"orientation"}
    with pytest.raises(RunError, match="--distill: expected a VAE run"):
        compress_run(tmp_path / "run", 2, "encoder/output_dense", out=tmp_path / "distilled", distill=1.0)
    assert not (tmp_path / "distilled").exists()


def test_the_distillation_term_is_the_likelihood_of_the_original_reconstruction(trained, tmp_path):
    loaded = load_run(trained, with_data=True)
    teacher, data = loaded.model, loaded.data
    plan = plan_layers(teacher, ALL_LAYERS, None, 1, reduction=10, modes=1)
    student, _ = build_compressed(compressed_recipe(loaded.recipe, plan), loaded.shapes)
    transfer(teacher, student, fit_layers(teacher, plan, None, {})[0])
    inputs = {k: data.validation[k][:4] for k in ("images", "condition")}
    assert float(np.max(Distilled(teacher, teacher, 1.0).loss_terms(inputs)["distillation"])) == 0.0
    terms = Distilled(student, teacher, 0.5).loss_terms(inputs, training=False)
    mean_s = student.decode(student.encode(inputs)[0], inputs["condition"]).numpy()
    mean_t = teacher.decode(teacher.encode(inputs)[0], inputs["condition"]).numpy()
    by_hand = 0.5 * (((mean_s - mean_t) / teacher.likelihood_scale) ** 2).reshape(4, -1).sum(axis=1)
    np.testing.assert_allclose(terms["distillation"].numpy(), by_hand, rtol=1e-4)
    assert Distilled(student, teacher, 0.5).term_weights == {
        "reconstruction": 1.0,
        "kl": 1.0,
        "distillation": 0.5,
    }
    summary = compress_run(
        trained,
        1,
        DECODER_LAYERS,
        finetune_steps=2,
        out=tmp_path / "d",
        sweep_ranks=(),
        export=False,
        distill=1.0,
    )
    assert summary["distill"] == 1.0 and summary["step"] == loaded.step + 2
    with pytest.raises(RunError, match=r"--distill -1: expected a number >= 0"):
        compress_run(trained, 1, DECODER_LAYERS, out=tmp_path / "bad", distill=-1)
    assert not (tmp_path / "bad").exists()
