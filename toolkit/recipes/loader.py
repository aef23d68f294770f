"""Read a recipe: YAML, `base:` inheritance, `--set` overrides, version, then validation."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from toolkit.recipes.schema import RecipeError, validate_section
from toolkit.recipes.spec import CURRENT_VERSION, RECIPE

#: Upgrade functions from an older recipe version to the next one, keyed by the old version.
UPGRADES: dict = {}


def read_yaml(path: Path) -> dict:
    """Parse one YAML file into a mapping, with one-line errors."""
    if not path.is_file():
        raise RecipeError([f"{path}: recipe file not found; check the path"])
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError([f"{path}: invalid YAML{where}: {problem}"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError([f"{path}: cannot read the recipe: {error}"]) from None
    if data is None:
        raise RecipeError(
            [f"{path}: the recipe is empty; expected a mapping with version, name, data and model"]
        )
    if not isinstance(data, dict):
        raise RecipeError([f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}"])
    return data


def merge(base: dict, override: dict) -> dict:
    """Deep-merge `override` into a copy of `base`; a `type:` change replaces the whole mapping."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and value.get("type", out[key].get("type")) == out[key].get("type")
        ):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_base(path: Path, seen: tuple = ()) -> dict:
    """The recipe at `path` merged over the chain of recipes it extends with `base:`."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(p.name for p in seen + (path,))
        raise RecipeError(
            [f"{seen[0]}: base: recipes extend each other in a loop ({chain}); remove one base"]
        )
    data = read_yaml(path)
    base = data.get("base")
    if base is None:
        return data
    if not isinstance(base, str):
        raise RecipeError([f"{path}: base: expected a recipe path, got {type(base).__name__}"])
    base_path = (path.parent / base).resolve()
    if not base_path.is_file():
        raise RecipeError([f"{path}: base: recipe {base!r} not found (looked for {base_path})"])
    merged = merge(resolve_base(base_path, seen + (path,)), data)
    merged["base"] = None
    return merged


def parse_override(text: str) -> tuple[list[str], object]:
    """Split `key.path=value` into the key path and the YAML-typed value."""
    if "=" not in text:
        raise RecipeError([f"--set {text!r}: expected key.path=value, e.g. train.epochs=3"])
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise RecipeError(
            [f"--set {text!r}: the key path {key!r} has an empty part; expected e.g. model.latent_dim"]
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict, overrides) -> dict:
    """Set every `key.path=value` into a copy of the raw recipe, creating mappings as needed.

    As with `base:`, a new `type` replaces the whole mapping that holds it (the old type's
    keys would not fit), so type changes are applied first and the other overrides on top.
    """
    out = copy.deepcopy(data)
    parsed = [(text, *parse_override(text)) for text in overrides]
    parsed.sort(key=lambda item: item[1][-1] != "type")  # stable: type changes first
    for text, keys, value in parsed:
        node = out
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                path = ".".join(keys[: depth + 1])
                raise RecipeError([f"--set {text!r}: {path} is a {type(child).__name__}, not a section"])
            node = child
        if keys[-1] == "type" and node.get("type", value) != value:
            node.clear()
        node[keys[-1]] = value
    return out


def upgrade(data: dict, source: str) -> dict:
    """Bring an older recipe to the current version, or refuse one this toolkit cannot read."""
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        return data  # the schema reports the missing or mistyped version
    if version > CURRENT_VERSION:
        raise RecipeError(
            [f"version: {version} is newer than this toolkit reads ({CURRENT_VERSION}); upgrade toolkit"],
            source,
        )
    while version < CURRENT_VERSION:
        if version not in UPGRADES:
            raise RecipeError(
                [
                    f"version: {version} is no longer supported; expected {CURRENT_VERSION}, "
                    f"rewrite the recipe after recipes/f_shadow.yaml"
                ],
                source,
            )
        data = UPGRADES[version](data)
        version = data["version"]
    return data


def load_recipe(path, overrides=()) -> dict:
    """Read, extend, override, upgrade and validate a recipe; raise `RecipeError` listing every problem."""
    path = Path(path)
    data = apply_overrides(resolve_base(path), overrides)
    data = upgrade(data, str(path))
    errors: list[str] = []
    recipe = validate_section("", data, RECIPE, errors)
    if not errors:
        from toolkit.recipes.checks import cross_checks

        errors = cross_checks(recipe)
    if errors:
        raise RecipeError(errors, str(path))
    return recipe
