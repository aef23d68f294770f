"""Recipe validation: the shipped recipes pass; malformed ones fail with their key path."""

from pathlib import Path

import pytest
import yaml

from toolkit.errors import RecipeError
from toolkit.recipes.loader import load_recipe, merge

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
F_SHADOW = yaml.safe_load((RECIPES / "f_shadow.yaml").read_text())


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    recipe = load_recipe(path)
    assert recipe["version"] == 1 and recipe["name"]


def write(tmp_path, data, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def changed(**sections):
    """The shipped f_shadow recipe with some sections deep-merged."""
    return merge(F_SHADOW, sections)


def errors_of(path, overrides=()):
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, overrides)
    return caught.value.errors


def test_defaults_are_filled_and_typed(tmp_path):
    minimal = {
        "version": 1,
        "name": "tiny",
        "data": {"type": "shadows"},
        "model": {"type": "conditional_vae"},
    }
    recipe = load_recipe(write(tmp_path, minimal))
    assert recipe["train"]["global_batch_size"] == 64
    assert recipe["data"]["sample"] == {"type": "letter_f", "size": 1.0, "thickness": 0.2, "blob_sigma": 0.05}
    assert recipe["model"]["decoder"]["filters"] == [64, 32]
    assert recipe["strategy"] == {"type": "auto"}


#: Hand-picked mistakes that `test_mutations.py` does not generate from the shipped recipes
#: (it covers misspelt keys and types, text, negative, null and out-of-range values, unknown
#: types and choices, null or list sections).
MALFORMED = [
    (
        "float for int",
        changed(train={"global_batch_size": 3.5}),
        "train.global_batch_size: expected an integer",
    ),
    (
        "derived layer argument",
        changed(model={"decoder": {"image_size": 64}}),
        "model.decoder.image_size: unknown key",
    ),
    (
        "missing version",
        {k: v for k, v in F_SHADOW.items() if k != "version"},
        "version: missing required key",
    ),
    ("newer version", {**F_SHADOW, "version": 99}, "version: 99 is newer than this toolkit reads"),
    ("bool for int", changed(train={"epochs": True}), "train.epochs: expected an integer, got True"),
    (
        "bad ranges",
        changed(data={"orientations": {"type": "euler_ranges", "ranges": [[10, 0]]}}),
        "data.orientations.ranges[0]: expected low <= high",
    ),
    ("image size vs decoder", changed(data={"image_size": 30}), "data.image_size: 30 must be a multiple of"),
    (
        "dense sampler with sequences",
        changed(model={"sampler": {"type": "Dense"}}),
        "model.sampler.type: Dense reads one shadow, but data.sequence_length is 4",
    ),
    (
        "bernoulli shadows",
        changed(model={"likelihood": {"type": "bernoulli"}}),
        "model.likelihood.type: bernoulli",
    ),
    (
        "strategy devices type",
        {**F_SHADOW, "strategy": {"type": "mirrored", "devices": "/cpu:0"}},
        "strategy.devices: expected a list",
    ),
    (
        "lstm on mnist",
        {**F_SHADOW, "data": {"type": "mnist"}},
        "model.sampler.type: LSTMSampler reads sequences",
    ),
]


@pytest.mark.parametrize("data, expected", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_recipe_names_key_path(tmp_path, data, expected):
    errors = errors_of(write(tmp_path, data))
    assert any(expected in e for e in errors), errors
    assert all("\n" not in e for e in errors)


def test_a_misspelt_type_is_named_beside_the_missing_type(tmp_path):
    errors = errors_of(write(tmp_path, {**F_SHADOW, "data": {"tpye": "shadows"}}))
    assert errors == [
        "data.tpye: unknown key (did you mean 'type'?); "
        "data.type: missing, expected one of shadows, particles, mnist"
    ]


def test_every_error_is_reported_at_once(tmp_path):
    data = changed(train={"epochs": "x", "learning_rte": 1}, data={"image_size": 0})
    errors = errors_of(write(tmp_path, data))
    assert len(errors) == 3, errors


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "the recipe is empty"),
        ("version: [1\n", "invalid YAML at line"),
        ("- just\n- a list\n", "expected a mapping of keys at the top level"),
        ("version: 1\nname: x\n\tdata: 1\n", "invalid YAML"),
    ],
)
def test_unreadable_files(tmp_path, text, expected):
    (error,) = errors_of(write(tmp_path, text))
    assert expected in error


def test_missing_file(tmp_path):
    (error,) = errors_of(tmp_path / "nope.yaml")
    assert "nope.yaml: recipe file not found" in error


def test_base_is_extended_and_overridden(tmp_path):
    write(tmp_path, F_SHADOW, "parent.yaml")
    child = write(tmp_path, {"base": "parent.yaml", "name": "child", "train": {"epochs": 2}}, "child.yaml")
    recipe = load_recipe(child)
    assert recipe["name"] == "child" and recipe["train"]["epochs"] == 2
    assert recipe["train"]["learning_rate"] == F_SHADOW["train"]["learning_rate"]
    assert recipe["model"]["latent_dim"] == 15


def test_base_loop_and_missing_base(tmp_path):
    write(tmp_path, {"base": "b.yaml", **F_SHADOW}, "a.yaml")
    write(tmp_path, {"base": "a.yaml", "name": "b"}, "b.yaml")
    (error,) = errors_of(tmp_path / "a.yaml")
    assert "extend each other in a loop (a.yaml -> b.yaml -> a.yaml)" in error
    (error,) = errors_of(write(tmp_path, {"base": "gone.yaml", "name": "c"}, "c.yaml"))
    assert "base: recipe 'gone.yaml' not found" in error


def test_a_type_override_replaces_its_section_in_any_order(tmp_path):
    path = write(tmp_path, F_SHADOW)
    for overrides in (
        ["model.sampler.type=Dense", "model.sampler.use_bias=false", "data.sequence_length=1"],
        ["model.sampler.use_bias=false", "model.sampler.type=Dense", "data.sequence_length=1"],
    ):
        assert load_recipe(path, overrides)["model"]["sampler"] == {"type": "Dense", "use_bias": False}
    # The same type keeps the section's other keys.
    sampler = load_recipe(path, ["model.sampler.type=LSTMSampler"])["model"]["sampler"]
    assert sampler == load_recipe(path)["model"]["sampler"]


def test_overrides_are_typed_and_validated(tmp_path):
    path = write(tmp_path, F_SHADOW)
    recipe = load_recipe(path, ["model.latent_dim=8", "train.learning_rate=1e-4", "data.snr=0.1"])
    assert recipe["model"]["latent_dim"] == 8 and recipe["train"]["learning_rate"] == 1e-4
    assert recipe["data"]["snr"] == 0.1
    assert "model.latent_dim: expected a number >= 1, got 0" in errors_of(path, ["model.latent_dim=0"])[0]
    assert "train.epohcs: unknown key (did you mean 'epochs'?)" in errors_of(path, ["train.epohcs=3"])[0]
    assert "expected key.path=value" in errors_of(path, ["train.epochs"])[0]
    assert "has an empty part" in errors_of(path, ["train..epochs=3"])[0]
    assert "train.epochs is a int, not a section" in errors_of(path, ["train.epochs.x=3"])[0]
