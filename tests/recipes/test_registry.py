"""Every `type:` of the schema resolves to what builds it, and each task and source knows its own name."""

import pytest

from toolkit.data.sources.base import DataSource
from toolkit.recipes import spec
from toolkit.tasks.base import Task


@pytest.mark.parametrize("kind", sorted(spec.MODELS))
def test_every_model_type_names_its_task(kind):
    task = spec.MODELS[kind].builder
    assert issubclass(task, Task) and task.name == kind
    assert set(task.required_keys) <= set(task.input_keys) | {"images"}


@pytest.mark.parametrize("kind", sorted(spec.DATA))
def test_every_data_type_names_its_source(kind):
    source = spec.DATA[kind].builder
    assert issubclass(source, DataSource) and source.name == kind


@pytest.mark.parametrize("registry", ["SAMPLES", "ENCODERS", "SAMPLERS", "DECODERS", "HEADS", "STRATEGIES"])
def test_every_other_type_has_a_builder(registry):
    for kind, component in getattr(spec, registry).items():
        assert callable(component.builder), f"{registry}[{kind!r}]"
