"""Every shipped recipe, mutated leaf by leaf: each mutation is refused naming its key path, or builds.

The mutations are generated from the resolved recipes (defaults included), not chosen by
hand: each numeric value as a string, negative or null; each `type` set to an unknown
value; each key misspelt; each section null or a list.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from toolkit.errors import RecipeError
from toolkit.recipes.loader import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))
TOP_LEVEL_TEXT = ("version", "name", "description", "base")


def walk(node, path=()):
    """(key path, value) of every mapping entry below `node`, depth first."""
    for key, value in node.items():
        yield path + (key,), value
        if isinstance(value, dict):
            yield from walk(value, path + (key,))


def misspelt(key: str) -> str:
    """The key with its first two letters swapped (a typo difflib still recognises)."""
    return key[1] + key[0] + key[2:] if key[0] != key[1] else key + key[-1]


def dotted(path) -> str:
    return ".".join(path)


def mutations():
    """(id, recipe path, mutated resolved recipe, key path the error starts with, text it holds)."""
    for recipe_path in RECIPES:
        resolved = load_recipe(recipe_path)
        for path, value in walk(resolved):
            if path[0] in TOP_LEVEL_TEXT:
                continue
            changes = []
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                changes += [("string", str(value) + "x"), ("negative", -abs(value) - 1), ("null", None)]
            if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
                changes += [("negative item", [-abs(value[0]) - 1, *value[1:]])]
            if path[-1] == "type":
                changes += [("unknown type", "no_such_type")]
            if isinstance(value, dict):
                changes += [("null section", None), ("list section", [1, 2])]
            for name, new in changes:
                mutated = copy.deepcopy(resolved)
                parent = mutated
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = new
                yield f"{recipe_path.stem}:{dotted(path)}:{name}", recipe_path, mutated, dotted(path), ""
            mutated = copy.deepcopy(resolved)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            parent[misspelt(path[-1])] = parent.pop(path[-1])
            wrong = dotted(path[:-1] + (misspelt(path[-1]),))
            hint = f"unknown key (did you mean '{path[-1]}'?)"
            yield f"{recipe_path.stem}:{dotted(path)}:misspelt", recipe_path, mutated, wrong, hint


MUTATIONS = list(mutations())


def builds(recipe: dict) -> None:
    """What `toolkit run --dry-run` builds (data, model), on one device."""
    from toolkit.runs.setup import Setup

    setup = Setup(recipe, strategy={"type": "default"})
    data = setup.data()
    setup.model(data.shapes)


@pytest.mark.parametrize(
    ("recipe_path", "mutated", "key_path", "hint"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_a_mutated_recipe_is_refused_at_its_key_path_or_builds(
    tmp_path, recipe_path, mutated, key_path, hint
):
    path = tmp_path / recipe_path.name
    path.write_text(yaml.safe_dump(mutated, sort_keys=False))
    try:
        recipe = load_recipe(path)
    except RecipeError as error:
        assert all("\n" not in line and len(line) < 400 for line in error.errors), error.errors
        assert any(line.startswith(key_path) and hint in line for line in error.errors), error.errors
        return
    builds(recipe)


def test_the_mutations_cover_every_recipe_and_kind():
    assert len(MUTATIONS) > 500
    assert {m[1] for m in MUTATIONS} == set(RECIPES)
    assert {m[0].rsplit(":", 1)[1] for m in MUTATIONS} >= {
        "string",
        "negative",
        "null",
        "unknown type",
        "misspelt",
        "null section",
        "list section",
    }
