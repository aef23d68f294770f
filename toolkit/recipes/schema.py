"""A small declarative schema: fields with descriptions, validated in one pass with key paths.

Every field carries its description, so validation, `toolkit validate` and the recipe docs
come from one place. Validation collects every error (one line each) instead of stopping
at the first.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from toolkit.errors import RecipeError  # noqa: F401  (raised by validation users)

REQUIRED = object()
FLOAT_TEXT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Field:
    """One recipe key: its kind, default, description and range.

    `kind` is one of "int", "float", "str", "bool", "int_list", "float_list", "str_list",
    "ranges" (a list of [low, high] pairs), "section" (nested `fields`), "section_list" (a
    non-empty list of such sections) or "component" (a dict with a `type:` chosen from `registry`).
    """

    kind: str
    default: Any = REQUIRED
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple | None = None
    nullable: bool = False
    fields: dict[str, Field] | None = None
    registry: dict[str, Component] | None = None


@dataclass(frozen=True)
class Component:
    """A choice for a `type:` key: its description, its own fields and what builds it.

    `build` is called with the component's validated fields (the `type` key left out) or,
    for models and data, constructs their task or data source. It is a callable, or a
    `"module:attribute"` string for the ones whose module itself reads the schema.
    """

    description: str
    fields: dict[str, Field] = field(default_factory=dict)
    build: Callable | str | None = None

    @property
    def builder(self) -> Callable:
        """`build`, imported first when it is a `"module:attribute"` string."""
        if isinstance(self.build, str):
            module, attribute = self.build.split(":")
            return getattr(importlib.import_module(module), attribute)
        if self.build is None:
            raise TypeError(f"component {self.description!r} has no builder")
        return self.build

    def make(self, spec: dict, **fixed):
        """`builder(**fixed, **fields of spec)`: lists become tuples, `type` is left out."""
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "type"}
        return self.builder(**fixed, **kwargs)


def suggest(name: str, options, prefer=()) -> str:
    """A ' (did you mean ...?)' hint for a misspelt key, or ''.

    Of the close matches (difflib), one with the same letters as `name` (two swapped:
    `edcoder` is `decoder`, not `encoder`) comes first, then one of `prefer` (the keys not
    written, which a typo stands for), then the closest.
    """
    name, options, prefer = str(name), [str(o) for o in options], {str(p) for p in prefer}
    close = difflib.get_close_matches(name, options, n=max(len(options), 1), cutoff=0.6)
    if not close:
        return ""
    best = min(close, key=lambda option: (sorted(option) != sorted(name), option not in prefer))
    return f" (did you mean '{best}'?)"


def describe(value) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _check_number(path: str, value, spec: Field, errors: list[str]) -> None:
    if spec.minimum is not None:
        if spec.exclusive_minimum and not value > spec.minimum:
            errors.append(f"{path}: expected a number > {spec.minimum}, got {value!r}")
        elif not spec.exclusive_minimum and value < spec.minimum:
            errors.append(f"{path}: expected a number >= {spec.minimum}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        errors.append(f"{path}: expected a number <= {spec.maximum}, got {value!r}")


def _scalar(path: str, value, kind: str, errors: list[str]):
    """Check and convert one scalar; returns the value or None after recording an error."""
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {describe(value)}")
            return None
    elif kind == "float":
        if isinstance(value, str) and FLOAT_TEXT.match(value):
            value = float(value)  # YAML 1.1 reads "1e-4" (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{path}: expected a number, got {describe(value)}")
            return None
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {describe(value)}")
            return None
    elif kind == "bool":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {describe(value)}")
            return None
    return value


def validate_value(path: str, value, spec: Field, errors: list[str]):
    """Validate one value against its field; returns the normalized value."""
    if value is None:
        if not spec.nullable:
            errors.append(f"{path}: expected a value ({spec.kind}), got null")
        return None
    if spec.kind == "section":
        return validate_section(path, value, spec.fields or {}, errors)
    if spec.kind == "component":
        return validate_component(path, value, spec.registry or {}, errors)
    if spec.kind == "section_list":
        if not isinstance(value, (list, tuple)) or not value:
            errors.append(f"{path}: expected a non-empty list of mappings, got {describe(value)}")
            return None
        return [
            validate_section(f"{path}[{i}]", item, spec.fields or {}, errors) for i, item in enumerate(value)
        ]
    if spec.kind.endswith("_list") or spec.kind == "ranges":
        if not isinstance(value, (list, tuple)):
            errors.append(f"{path}: expected a list, got {describe(value)}")
            return None
        if spec.kind == "ranges":
            out = []
            for i, pair in enumerate(value):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    errors.append(f"{path}[{i}]: expected a [low, high] pair, got {describe(pair)}")
                    continue
                low = _scalar(f"{path}[{i}][0]", pair[0], "float", errors)
                high = _scalar(f"{path}[{i}][1]", pair[1], "float", errors)
                if low is not None and high is not None and low > high:
                    errors.append(f"{path}[{i}]: expected low <= high, got [{low}, {high}]")
                out.append([low, high])
            return out
        kind = spec.kind[: -len("_list")]
        out = []
        for i, item in enumerate(value):
            item = _scalar(f"{path}[{i}]", item, kind, errors)
            if item is not None and kind in ("int", "float"):
                _check_number(f"{path}[{i}]", item, spec, errors)
            out.append(item)
        return out
    value = _scalar(path, value, spec.kind, errors)
    if value is None:
        return None
    if spec.choices is not None and value not in spec.choices:
        errors.append(
            f"{path}: expected one of {', '.join(map(str, spec.choices))}, got {value!r}"
            + suggest(value, spec.choices)
        )
    if spec.kind in ("int", "float"):
        _check_number(path, value, spec, errors)
    return value


def validate_section(path: str, value, fields: dict[str, Field], errors: list[str]) -> dict | None:
    """Validate a mapping: unknown keys, missing required keys, and every value."""
    if not isinstance(value, dict):
        errors.append(f"{path or 'recipe'}: expected a mapping of keys, got {describe(value)}")
        return None
    prefix = f"{path}." if path else ""
    unwritten = [name for name in fields if name not in value]  # a typo stands for a key not written
    for key in value:
        if key not in fields:
            hint = suggest(key, fields, prefer=unwritten)
            errors.append(f"{prefix}{key}: unknown key{hint}; allowed: {', '.join(fields)}")
    out = {}
    for key, spec in fields.items():
        if key in value:
            out[key] = validate_value(prefix + key, value[key], spec, errors)
        elif spec.default is REQUIRED:
            errors.append(f"{prefix}{key}: missing required key ({spec.description})")
        elif spec.kind in ("section", "component") and isinstance(spec.default, dict):
            out[key] = validate_value(prefix + key, dict(spec.default), spec, errors)
        else:
            out[key] = spec.default
    return out


def validate_component(path: str, value, registry: dict[str, Component], errors: list[str]) -> dict | None:
    """Validate a `{type: NAME, ...}` mapping against the fields of the chosen component."""
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping with a 'type' key, got {describe(value)}")
        return None
    kind = value.get("type")
    if isinstance(kind, (dict, list)) or kind not in registry:  # a mapping or list is no name (nor hashable)
        if kind is None:
            # One line for both: the key the user wrote for `type`, and `type` itself missing.
            typo = difflib.get_close_matches("type", [str(k) for k in value if k != "type"], n=1, cutoff=0.6)
            written = f"{path}.{typo[0]}: unknown key (did you mean 'type'?); " if typo else ""
            errors.append(f"{written}{path}.type: missing, expected one of {', '.join(registry)}")
        else:
            hint = suggest(kind, registry) if isinstance(kind, str) else ""
            errors.append(
                f"{path}.type: unknown type {describe(kind)}{hint}; expected one of {', '.join(registry)}"
            )
        return None
    # `type` is one of the component's keys, so a misspelt one next to it (e.g. a `tpye` over
    # a base recipe's `type`) is hinted and `allowed:` lists it.
    chosen = Field("str", REQUIRED, "the component's type", choices=tuple(registry))
    return validate_section(path, value, {"type": chosen, **registry[kind].fields}, errors)


KIND_OF_DEFAULT = {bool: "bool", int: "int", float: "float", str: "str"}


def fields_from_signature(cls, fixed: tuple = (), overrides: dict | None = None) -> dict[str, Field]:
    """Recipe fields for a layer's constructor arguments, typed by their defaults.

    `fixed` names the arguments the model builder sets itself (they are refused in a recipe);
    `overrides` gives explicit fields for arguments whose default does not tell their type.
    """
    overrides = overrides or {}
    out = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if (
            name in ("self",)
            or name in fixed
            or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        ):
            continue
        if name in overrides:
            out[name] = overrides[name]
            continue
        default = parameter.default
        if isinstance(default, (list, tuple)):
            kind = "int_list" if all(isinstance(v, int) for v in default) else "float_list"
            out[name] = Field(kind, list(default), f"{cls.__name__} argument `{name}`", minimum=1)
        elif type(default) in KIND_OF_DEFAULT:
            kind = KIND_OF_DEFAULT[type(default)]
            out[name] = Field(kind, default, f"{cls.__name__} argument `{name}`")
        elif default is None:
            out[name] = Field("str", None, f"{cls.__name__} argument `{name}`", nullable=True)
        else:
            out[name] = Field(
                "str",
                default if default is not parameter.empty else REQUIRED,
                f"{cls.__name__} argument `{name}`",
            )
    return out
