"""Every shipped recipe, mutated key by key: each mutation is refused naming its key path, or builds.

The mutations are generated, not chosen by hand. Each shipped recipe is loaded with its
`base:` and the defaults validation fills (`load_recipe`), and every key of that resolved
recipe is mutated in the recipe *file* (its `base:` kept), which is then read back through
`load_recipe` as a user's edit would be:

* each number, and the first item of each list of numbers or of ranges: as text, negative,
  null, at and beyond the bounds its schema field declares, and (floats) as a numeric string;
* each `type` set to an unknown name, misspelt, and to a list;
* each true/false as text and null; each text null and a number, and a choice unknown or misspelt;
* each key misspelt (its first two letters swapped);
* each section null or a list.

Each component is also switched to each other type of its registry; the variants that
validate must build, and the schema fields they hold that no shipped recipe has (euler_ranges
orientations, gaussian_blobs samples, ...) are mutated the same way, once each, so every field
of the schema is mutated somewhere.

A mutation is either refused, every error one line and one naming the mutated key path (a
misspelt key with a hint to the key meant), or it validates and then builds as
`toolkit run --dry-run` does, and draws a training batch.
"""

from __future__ import annotations

import atexit
import copy
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from toolkit.errors import RecipeError
from toolkit.recipes.loader import load_recipe, read_yaml
from toolkit.recipes.spec import RECIPE

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))
#: The longest error line accepted (one problem, no schema dump).
LONGEST = 300
#: Kinds of mutation that can never give a valid recipe; the others may (then it must build).
NEVER_VALID = {
    "text",
    "item text",
    "unknown type",
    "list type",
    "misspelt type",
    "unknown choice",
    "misspelt choice",
    "number",
    "misspelt",
    "list section",
    "below minimum",
    "above maximum",
}

#: Mutations that pass validation and then fail, or are refused without their key path: each
#: needs a cross-check in the data source or task (not the schema). id -> reason.
KNOWN_FAILURES: dict[str, str] = {}


@dataclass(frozen=True)
class Mutation:
    id: str
    raw: dict  # the mutated recipe file (its `base:` an absolute path)
    path: str  # the key path an error must start with
    hint: str  # text that error must also hold
    kind: str
    field: int | None  # id() of the schema `Field` mutated (None for a `type` key)


def walk(node, path=()):
    """(key path, value) of every mapping entry below `node`, depth first; a list item's index is an int."""
    for key, value in node.items():
        yield path + (key,), value
        if isinstance(value, dict):
            yield from walk(value, path + (key,))
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                yield from walk(item, path + (key, index))


def dotted(path) -> str:
    """`model.stages[0].blur`, as validation names a key path."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else f".{key}" if out else key
    return out


def misspelt(key: str) -> str:
    """The key with its first two letters swapped (a typo difflib still recognises)."""
    return key[1] + key[0] + key[2:] if key[0] != key[1] else key + key[-1]


def field_at(recipe: dict, path):
    """The schema `Field` of the key at `path` of a validated recipe; `None` for a `type` key."""
    fields, node, spec = RECIPE, recipe, None
    for key in path:
        if isinstance(key, int):  # an item of a section list: the list's fields
            node = node[key]
            continue
        if fields is None or key not in fields:
            return None
        spec, node = fields[key], node[key]
        if spec.kind in ("section", "section_list"):
            fields = spec.fields
        elif spec.kind == "component" and isinstance(node, dict):
            fields = spec.registry[node["type"]].fields
        else:
            fields = None
    return spec


def raw_file(recipe_path: Path) -> dict:
    """The recipe file as written, its `base:` made absolute so it can be written anywhere."""
    raw = read_yaml(recipe_path)
    if isinstance(raw.get("base"), str):
        raw["base"] = str((recipe_path.parent / raw["base"]).resolve())
    return raw


def node_in(raw: dict, resolved: dict, parents) -> dict:
    """The mapping at `parents` in the recipe file, created (with its resolved `type`) when not written."""
    node = raw
    for key in parents:
        resolved = resolved[key]
        if isinstance(key, int):
            node = node[key]
            continue
        if isinstance(resolved, list):  # a section list, written whole when inherited
            if not isinstance(node.get(key), list):
                node[key] = copy.deepcopy(resolved)
            node = node[key]
            continue
        if not isinstance(node.get(key), dict):
            node[key] = {"type": resolved["type"]} if "type" in resolved else {}
        node = node[key]
    return node


def changed(raw: dict, resolved: dict, path, new) -> dict:
    """A copy of the recipe file with the key at `path` set to `new`."""
    out = copy.deepcopy(raw)
    node_in(out, resolved, path[:-1])[path[-1]] = new
    return out


def respelt(raw: dict, resolved: dict, path) -> dict:
    """A copy of the recipe file with the key at `path` misspelt (written with its value if inherited)."""
    out = copy.deepcopy(raw)
    node = node_in(out, resolved, path[:-1])
    value = node.pop(path[-1]) if path[-1] in node else copy.deepcopy(_get(resolved, path))
    node[misspelt(path[-1])] = value
    return out


def _get(node, path):
    for key in path:
        node = node[key]
    return node


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def bounds(spec, value) -> list:
    """(kind, value) at and beyond the range of a numeric field."""
    out = []
    whole = spec.kind == "int"
    if spec.minimum is not None:
        low = int(spec.minimum) if whole else spec.minimum
        if spec.exclusive_minimum:
            out.append(("below minimum", low))
        else:
            out += [("at minimum", low), ("below minimum", low - 1 if whole else low - 0.5)]
    if spec.maximum is not None:
        high = int(spec.maximum) if whole else spec.maximum
        out += [("at maximum", high), ("above maximum", high + 1 if whole else high + 0.5)]
    return out


def changes(spec, value) -> list:
    """(kind, new value) for the key holding `value`."""
    out = []
    if is_number(value):
        out += [("text", f"{value}x"), ("negative", -abs(value) - 1), ("null", None)]
        out += [("numeric string", str(value))] if spec.kind == "float" else []  # YAML 1.1 reads 1e-4 so
        out += bounds(spec, value)
    elif isinstance(value, list) and value and all(is_number(v) for v in value):
        first, rest = value[0], value[1:]
        out += [("item text", [f"{first}x", *rest]), ("item negative", [-abs(first) - 1, *rest])]
        out += [("item null", [None, *rest])]
    elif isinstance(value, list) and value and all(isinstance(v, list) and v for v in value):
        (low, *high), rest = value[0], value[1:]
        out += [
            ("item text", [[f"{low}x", *high], *rest]),
            ("item negative", [[-abs(low) - 1, *high], *rest]),
        ]
    elif isinstance(value, bool):
        out += [("text", "maybe"), ("null", None)]
    elif isinstance(value, str) and spec is not None:
        out += [("null", None), ("number", 3)]
        if spec.choices:
            out += [("unknown choice", "no_such_choice"), ("misspelt choice", misspelt(value))]
    elif isinstance(value, dict):
        out += [("null section", None), ("list section", [1, 2])]
    return out


def mutations_of(name: str, raw: dict, resolved: dict, covered: set | None = None) -> list[Mutation]:
    """Every mutation of the keys in a recipe file (`resolved` is the file loaded).

    Given `covered` (ids of schema fields already mutated), only the other fields are mutated
    (not the `type` keys), and they join `covered`.
    """
    out = []
    for path, value in walk(resolved):
        spec = field_at(resolved, path)
        if covered is not None:
            if spec is None or id(spec) in covered:
                continue
            covered.add(id(spec))
        key_path, field = dotted(path), None if spec is None else id(spec)
        seen = {json.dumps(value)}
        kinds = changes(spec, value)
        if path[-1] == "type":
            kinds += [("unknown type", "no_such_type"), ("misspelt type", misspelt(value))]
            kinds += [("list type", [value])]
        for kind, new in kinds:
            if json.dumps(new) in seen:  # e.g. "negative" and "below minimum" of a minimum of 0
                continue
            seen.add(json.dumps(new))
            mutated = changed(raw, resolved, path, new)
            hint = f"(did you mean '{value}'?)" if kind.startswith("misspelt") else ""
            out.append(Mutation(f"{name}:{key_path}:{kind}", mutated, key_path, hint, kind, field))
        wrong = dotted(path[:-1] + (misspelt(path[-1]),))
        hint = f"unknown key (did you mean '{path[-1]}'?)"
        mutated = respelt(raw, resolved, path)
        out.append(Mutation(f"{name}:{key_path}:misspelt", mutated, wrong, hint, "misspelt", field))
    return out


def loaded(raw: dict, directory: Path) -> dict | None:
    """The recipe file `raw`, validated, or `None` when it is refused."""
    path = directory / "recipe.yaml"
    path.write_text(dump(raw))
    try:
        return load_recipe(path)
    except RecipeError:
        return None


def dump(raw: dict) -> str:
    return yaml.dump(raw, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def required_files() -> dict[str, dict]:
    """The files the types that read them require (a map, a particle STAR file), written once."""
    import numpy as np

    from toolkit.io.mrc import write_map, write_stack
    from toolkit.io.particles import write_particles

    folder = Path(tempfile.mkdtemp(prefix="mutations-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # read at collection and by every test
    volume = np.zeros((16, 16, 16), np.float32)
    volume[6:10, 5:11, 7:9] = 1.0
    write_map(folder / "map.mrc", volume, 4.0)
    images = np.random.default_rng(0).normal(size=(12, 16, 16)).astype(np.float32)
    write_stack(folder / "particles.mrcs", images, 4.0)
    angles = np.random.default_rng(1).uniform(0, 180, (12, 3))
    ctf = {"defocus_u": 10000.0, "defocus_v": 9000.0, "defocus_angle": 30.0, "voltage": 300.0}
    ctf.update(spherical_aberration=2.7, amplitude_contrast=0.1)
    names = [f"{i + 1:06d}@particles.mrcs" for i in range(12)]
    write_particles(folder / "particles.star", names, 4.0, 16, angles=angles, ctf=ctf)
    return {"map": {"path": str(folder / "map.mrc")}, "particles": {"star": str(folder / "particles.star")}}


#: Types with a required file get their variants (and mutations) in the first recipe that takes them.
REQUIRED = required_files()


def generate() -> list[Mutation]:
    shipped = {path: (raw_file(path), load_recipe(path)) for path in RECIPES}
    out = [m for path, (raw, resolved) in shipped.items() for m in mutations_of(path.stem, raw, resolved)]
    covered, once = {m.field for m in out}, set()
    with tempfile.TemporaryDirectory() as directory:
        for recipe_path, (raw, resolved) in shipped.items():
            name = recipe_path.stem
            for path, value in walk(resolved):
                spec = field_at(resolved, path)
                if spec is None or spec.kind != "component" or not isinstance(value, dict):
                    continue
                for other in spec.registry:
                    if other == value["type"] or other in once:
                        continue
                    variant = changed(raw, resolved, path, {"type": other, **REQUIRED.get(other, {})})
                    validated = loaded(variant, Path(directory))
                    if validated is None:  # refused by a cross-check, e.g. a Dense sampler of sequences
                        continue
                    if other in REQUIRED:
                        once.add(other)
                    label = f"{name}+{dotted(path)}={other}"
                    out.append(Mutation(f"{label}:variant", variant, dotted(path), "", "variant", None))
                    out += mutations_of(label, variant, validated, covered)
    return out


MUTATIONS = generate()

#: What a dry run reads of `train:` (the model's seed and optimizer); the other keys are read
#: by training and the files it writes, as are `output:` and the rest of the top level.
DRY_RUN_TRAIN = ("seed", "optimizer", "learning_rate")
#: The recipes built so far (what a dry run reads of them), and their data by `data:` section.
BUILT: set[str] = set()
DATA: dict[str, object] = {}


def assert_builds(recipe: dict, keep: str = "") -> None:
    """Build what `toolkit run --dry-run` builds (data, model) on one device, and draw a training batch.

    The recipe is shrunk first where that does not touch the value under test (`keep`): a
    validation set of 4. A recipe is built once per session, and its data once per `data:`
    section (building MNIST's data takes seconds).
    """
    from toolkit.runs.setup import Setup

    shrunk = {**copy.deepcopy(recipe), "strategy": {"type": "default"}}
    if "validation_size" in shrunk["data"] and keep != "data.validation_size":
        shrunk["data"]["validation_size"] = min(shrunk["data"]["validation_size"], 4)
    train = {key: shrunk["train"][key] for key in DRY_RUN_TRAIN}
    key = json.dumps(
        {"name": shrunk["name"], "data": shrunk["data"], "model": shrunk["model"], "train": train}
    )
    if key in BUILT:
        return
    setup = Setup(shrunk)
    data_key = json.dumps([shrunk["data"], repr(setup.task.orientation_condition)])
    data = DATA[data_key] if data_key in DATA else setup.data()
    model, _ = setup.model(data.shapes)
    batches = setup.task.training_dataset(model, data.train_dataset(2, 0), train["seed"], 0)
    next(iter(batches))
    BUILT.add(key)
    DATA[data_key] = data


def names(line: str, key_path: str) -> bool:
    """The error line is about `key_path` (or a key or item below it)."""
    return re.match(re.escape(key_path) + r"(?=[:.\[])", line) is not None


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param(m, id=m.id, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[m.id]))
        if m.id in KNOWN_FAILURES
        else pytest.param(m, id=m.id)
        for m in MUTATIONS
    ],
)
def test_a_mutated_recipe_is_refused_at_its_key_path_or_builds(tmp_path, mutation):
    path = tmp_path / "recipe.yaml"
    path.write_text(dump(mutation.raw))
    try:
        recipe = load_recipe(path)
    except RecipeError as error:
        assert error.errors and all("\n" not in e and len(e) <= LONGEST for e in error.errors), error.errors
        assert any(names(e, mutation.path) and mutation.hint in e for e in error.errors), error.errors
        return
    assert mutation.kind not in NEVER_VALID, f"{mutation.id}: accepted"
    assert_builds(recipe, keep=mutation.path)


def schema_fields(fields: dict, out: dict) -> dict:
    """id -> key of every field of the schema, through sections and every component of registries."""
    for key, spec in fields.items():
        out[id(spec)] = key
        if spec.fields:
            schema_fields(spec.fields, out)
        for component in (spec.registry or {}).values():
            schema_fields(component.fields, out)
    return out


def test_the_mutations_cover_every_recipe_kind_and_field():
    assert len(MUTATIONS) > 1000
    assert len({m.id for m in MUTATIONS}) == len(MUTATIONS)
    assert {m.id.split(":")[0] for m in MUTATIONS} >= {p.stem for p in RECIPES}
    assert {m.kind for m in MUTATIONS} >= NEVER_VALID | {
        "numeric string",
        "negative",
        "null",
        "at minimum",
        "at maximum",
        "item negative",
        "null section",
        "variant",
    }
    assert set(KNOWN_FAILURES) <= {m.id for m in MUTATIONS}
    fields = schema_fields(RECIPE, {})
    unmutated = set(fields) - {m.field for m in MUTATIONS}
    assert not unmutated, sorted(fields[f] for f in unmutated)
