"""Malformed recipes and --set strings through the command line: exit 2, the key path, nothing written."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from toolkit.cli import cli

F_SHADOW = Path(__file__).resolve().parents[2] / "recipes" / "f_shadow.yaml"
RECIPE = yaml.safe_load(F_SHADOW.read_text())

#: (id, --set overrides on the shipped f_shadow recipe, text expected in the one error line). Kinds
#: of mistake that `test_mutations.py` generates for every shipped recipe are not repeated here,
#: but for a few (a misspelt type, a layer's own check) that show them through the command line.
BAD_OVERRIDES = [
    ("float for int", ["model.latent_dim=2.5"], "model.latent_dim: expected an integer, got 2.5"),
    ("bool for int", ["train.epochs=true"], "train.epochs: expected an integer, got True"),
    (
        "misspelt layer type",
        ["model.decoder.type=ProjectionDecodr"],
        "model.decoder.type: unknown type 'ProjectionDecodr' (did you mean 'ProjectionDecoder'?)",
    ),
    ("unknown layer argument", ["model.encoder.filtres=[8]"], "model.encoder.filtres: unknown key"),
    ("argument the builder sets", ["model.decoder.image_size=64"], "model.decoder.image_size: unknown key"),
    ("scalar for a list", ["model.encoder.filters=8"], "model.encoder.filters: expected a list, got 8"),
    (
        "devices not a list",
        ["strategy.type=mirrored", "strategy.devices=/cpu:0"],
        "strategy.devices: expected a list",
    ),
    (
        "reversed angle range",
        ["data.orientations.type=euler_ranges", "data.orientations.ranges=[[10, 0]]"],
        "data.orientations.ranges[0]: expected low <= high",
    ),
    (
        "layer's own check",
        ["model.decoder.condition_units=-1"],
        "model.decoder.condition_units: ProjectionDecoder: `condition_units`",
    ),
    (
        "image size vs decoder upsampling",
        ["data.image_size=30"],
        "data.image_size: 30 must be a multiple of 2 ** len(model.decoder.filters) = 4",
    ),
    (
        "dense sampler with sequences",
        ["model.sampler={type: Dense}"],
        "model.sampler.type: Dense reads one shadow, but data.sequence_length is 4",
    ),
    (
        "bernoulli shadows",
        ["model.likelihood={type: bernoulli}"],
        "model.likelihood.type: bernoulli needs intensities",
    ),
    ("newer version", ["version=2"], "version: 2 is newer than this toolkit reads"),
    ("set without =", ["train.epochs"], "--set 'train.epochs': expected key.path=value"),
    (
        "set with an empty key part",
        ["train..epochs=3"],
        "--set 'train..epochs=3': the key path 'train..epochs' has",
    ),
    ("set with no key", ["=3"], "--set '=3': the key path '' has an empty part"),
    ("set below a value", ["data.image_size.x=3"], "--set 'data.image_size.x=3': data.image_size is a int"),
]

#: (id, files to write {name: text}, the recipe to run, text expected in the error line)
BAD_FILES = [
    (
        "bad YAML syntax",
        {"r.yaml": "version: 1\nname: [unclosed\n"},
        "r.yaml",
        "r.yaml: invalid YAML at line 3",
    ),
    (
        "tab indentation",
        {"r.yaml": "version: 1\nname: x\n\tdata: 1\n"},
        "r.yaml",
        "r.yaml: invalid YAML at line",
    ),
    ("empty file", {"r.yaml": ""}, "r.yaml", "r.yaml: the recipe is empty"),
    (
        "top level is a list",
        {"r.yaml": "- version\n- name\n"},
        "r.yaml",
        "r.yaml: expected a mapping of keys at the top level, got list",
    ),
    (
        "missing required key",
        {"r.yaml": yaml.safe_dump({k: v for k, v in RECIPE.items() if k != "model"})},
        "r.yaml",
        "model: missing required key",
    ),
    (
        "base loop",
        {"a.yaml": yaml.safe_dump({"base": "b.yaml", **RECIPE}), "b.yaml": "base: a.yaml\nname: b\n"},
        "a.yaml",
        "base: recipes extend each other in a loop (a.yaml -> b.yaml -> a.yaml)",
    ),
    (
        "base not found",
        {"r.yaml": "base: gone.yaml\nname: r\n"},
        "r.yaml",
        "base: recipe 'gone.yaml' not found",
    ),
    ("base not a path", {"r.yaml": "base: 3\nname: r\n"}, "r.yaml", "base: expected a recipe path, got int"),
    ("no such recipe", {}, "missing.yaml", "missing.yaml: recipe file not found"),
]


def invoke(args, out: Path):
    result = CliRunner().invoke(cli, ["run", *map(str, args), "--out", str(out)])
    return result.exit_code, [line for line in result.stderr.splitlines() if line]


def check(code, lines, expected, out):
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()  # nothing written


@pytest.mark.parametrize(
    "overrides, expected", [c[1:] for c in BAD_OVERRIDES], ids=[c[0] for c in BAD_OVERRIDES]
)
def test_bad_override_exits_2_with_the_key_path(tmp_path, overrides, expected):
    out = tmp_path / "run"
    code, lines = invoke([F_SHADOW, *[a for o in overrides for a in ("--set", o)]], out)
    check(code, lines, expected, out)


@pytest.mark.parametrize("files, recipe, expected", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_recipe_file_exits_2_with_its_location(tmp_path, files, recipe, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "run"
    code, lines = invoke([tmp_path / recipe], out)
    check(code, lines, expected, out)


def test_a_negative_seed_exits_2_before_any_data_is_made(tmp_path):
    """The issue's case: mnist_cvae with a negative seed died in numpy with a traceback and exit 1."""
    out = tmp_path / "run"
    code, lines = invoke([F_SHADOW.parent / "mnist_cvae.yaml", "--set", "data.seed=-7"], out)
    check(code, lines, "data.seed: expected a number >= 0, got -7", out)
