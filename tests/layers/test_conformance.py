"""Conformance suite: every capability a toolkit layer or model must have, tested on every golden.

One test per capability, parametrized over the registry in `conformance.py` (Sonnet's
conformance-test pattern), so adding a golden there covers a new layer everywhere:

1. config and `keras.saving` (de)serialization round trips,
2. training inside functional, Sequential and subclassed user models with `model.fit`,
3. `.keras` save and `keras.saving.load_model`,
4. SavedModel export, reloaded in a separate process that imports only TensorFlow,
5. one training step under `tf.distribute.MirroredStrategy` on two logical CPUs,
6. forward passes under the `mixed_float16` and `mixed_bfloat16` dtype policies,
7. XLA (`jit_compile=True`) forward equal to the eager forward,
8. constructors rejecting bad arguments with a ValueError naming the layer and the value,

plus meta tests: every public layer has a golden and a documented constructor. The models
(`conformance.MODEL_GOLDENS`) are checked for config and `.keras` round trips, a SavedModel
run by TensorFlow alone, a MirroredStrategy step equal to the one-device step, and `model.fit`.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf


def _load_registry():
    """Import `conformance.py` next to this file (pytest runs with --import-mode=importlib)."""
    name = "toolkit_layers_conformance_registry"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("conformance.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


conformance = _load_registry()
GOLDENS = conformance.GOLDENS

#: Capability names, as used by `golden_params` and `conformance.KNOWN_FAILURES`.
CAPABILITIES = (
    "config_round_trip",
    "serialize_round_trip",
    "fit",
    "keras_file",
    "savedmodel",
    "mirrored_strategy",
    "mixed_precision",
    "jit_compile",
    "bad_arguments",
)


def golden_params(capability: str, goldens=GOLDENS) -> list:
    """`pytest.param` per golden, with the golden's skip and any known failure as marks."""
    assert capability in CAPABILITIES, capability
    params = []
    for golden in goldens:
        marks = []
        if golden.skip_reason:
            marks.append(pytest.mark.skip(reason=golden.skip_reason))
        known = conformance.KNOWN_FAILURES.get((golden.name, capability))
        if known:
            marks.append(pytest.mark.xfail(reason=known, strict=True))
        params.append(pytest.param(golden, id=golden.name, marks=marks))
    return params


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _seeded():
    """Weight initialization is seeded too, so a failure reproduces run after run."""
    keras.utils.set_random_seed(1234)


def to_numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def forward(layer, inputs, **kwargs) -> np.ndarray:
    """Eager call on the example inputs (builds the layer); inference mode for all layers."""
    return to_numpy(layer(*inputs, **kwargs))


def model_inputs(inputs):
    """What a Keras model takes: the array itself for one input, else a list."""
    return inputs[0] if len(inputs) == 1 else list(inputs)


def functional_model(layer, inputs) -> keras.Model:
    """A user's functional model whose only layer is `layer`."""
    symbolic = [keras.Input(shape=x.shape[1:], dtype=str(x.dtype)) for x in inputs]
    return keras.Model(model_inputs(symbolic), layer(*symbolic))


class Wrapper(keras.Model):
    """A user's subclassed model calling `layer` on its (list of) inputs."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.inner = layer

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        return self.inner(*inputs)


def assert_finite(x, what: str) -> None:
    x = np.asarray(x, dtype="float64")
    assert np.all(np.isfinite(x)), f"{what} has non-finite values: {x}"


def assert_same_outputs(actual, expected) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------- 1. config & serialization


@pytest.mark.parametrize("golden", golden_params("config_round_trip"))
def test_config_round_trip(golden):
    layer = golden.make()
    inputs = golden.inputs()
    expected = forward(layer, inputs)
    config = layer.get_config()
    json.dumps(config)  # a config must be JSON (the `.keras` format stores it as JSON)

    clone = type(layer).from_config(config)
    forward(clone, inputs)  # build
    assert clone.get_config() == config
    clone.set_weights(layer.get_weights())
    assert_same_outputs(forward(clone, inputs), expected)


@pytest.mark.parametrize("golden", golden_params("serialize_round_trip"))
def test_serialize_round_trip(golden):
    layer = golden.make()
    inputs = golden.inputs()
    expected = forward(layer, inputs)

    serialized = keras.saving.serialize_keras_object(layer)
    registered = f"toolkit>{type(layer).__name__}"
    assert serialized["registered_name"] == registered
    assert keras.saving.get_registered_object(registered) is type(layer)

    restored = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert type(restored) is type(layer)
    forward(restored, inputs)  # build (a no-op when build_config already did)
    assert restored.get_config() == layer.get_config()
    restored.set_weights(layer.get_weights())
    assert_same_outputs(forward(restored, inputs), expected)


# ------------------------------------------------------------------ 2. inside user models


def _model_kinds():
    params = []
    for kind in ("functional", "sequential", "subclassed"):
        goldens = [g for g in GOLDENS if kind != "sequential" or g.num_inputs == 1]
        for param in golden_params("fit", goldens):
            params.append(pytest.param(kind, *param.values, id=f"{kind}-{param.id}", marks=param.marks))
    return params


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
@pytest.mark.parametrize(("kind", "golden"), _model_kinds())
def test_fit_one_step_in_user_model(kind, golden):
    layer = golden.make()
    inputs = golden.inputs()
    if kind == "functional":
        model = functional_model(layer, inputs)
    elif kind == "sequential":
        model = keras.Sequential([keras.Input(shape=inputs[0].shape[1:]), layer])
    else:
        model = Wrapper(layer)
    x = model_inputs(inputs)
    y = np.zeros_like(to_numpy(model(x)))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(x, y, batch_size=len(inputs[0]), epochs=1, verbose=0)
    loss = history.history["loss"]
    assert len(loss) == 1
    assert_finite(loss, "training loss")


# -------------------------------------------------------------------------- 3. .keras file


@pytest.mark.parametrize("golden", golden_params("keras_file"))
def test_keras_file_round_trip(golden, tmp_path):
    layer = golden.make()
    inputs = golden.inputs()
    model = functional_model(layer, inputs)
    expected = to_numpy(model(model_inputs(inputs), training=False))

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)

    assert any(type(inner) is type(layer) for inner in loaded.layers)
    assert_same_outputs(to_numpy(loaded(model_inputs(inputs), training=False)), expected)


# ------------------------------------------------------- 4. SavedModel, TensorFlow-only child

#: Loads every exported model of a manifest with TensorFlow alone. Keras and the toolkit are
#: made unimportable first: `import tensorflow` (2.21) itself imports `keras.src.optimizers`
#: when Keras is installed (tensorflow/__init__.py, inside try/except ImportError), so without
#: the block "keras" would always be in sys.modules; with it the check proves the artifact
#: needs neither. A functional model's "serve" endpoint takes one positional argument: the
#: model's input structure (the tensor, or the list of tensors).
CHILD_CODE = r"""
import importlib.abc, importlib.machinery, json, sys, traceback

class _Block(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    BLOCKED = ("keras", "tf_keras", "toolkit")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)  # origin None: "not installed"
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"{spec.name} is blocked in this process", name=spec.name)

    def exec_module(self, module):
        raise ModuleNotFoundError(module.__name__)

sys.meta_path.insert(0, _Block())

import numpy as np
import tensorflow as tf

entries = json.load(open(sys.argv[1]))
for entry in entries:
    directory = entry["dir"]
    try:
        inputs = [np.load(f"{directory}/input_{i}.npy") for i in range(entry["num_inputs"])]
        loaded = tf.saved_model.load(f"{directory}/model")
        args = inputs[0] if len(inputs) == 1 else [tf.constant(x) for x in inputs]
        out = loaded.serve(args)
        np.save(f"{directory}/child_output.npy", out.numpy())
    except Exception:
        with open(f"{directory}/child_error.txt", "w") as f:
            f.write(traceback.format_exc())

leaked = sorted({name.split(".")[0] for name in sys.modules} & {"keras", "tf_keras", "toolkit"})
assert "toolkit" not in sys.modules, leaked
assert "keras" not in sys.modules, leaked
print("CHILD_OK", json.dumps(leaked))
"""


@pytest.fixture(scope="module")
def savedmodel_results(tmp_path_factory):
    """Export every golden in-process, then reload and run them all in one child process."""
    root = tmp_path_factory.mktemp("savedmodels")
    expected, export_errors, manifest = {}, {}, []
    for golden in GOLDENS:
        if golden.skip_reason:
            continue
        directory = root / golden.name
        directory.mkdir()
        try:
            inputs = golden.inputs()
            model = functional_model(golden.make(), inputs)
            expected[golden.name] = to_numpy(model(model_inputs(inputs), training=False))
            model.export(str(directory / "model"), verbose=False)
            for index, x in enumerate(inputs):
                np.save(directory / f"input_{index}.npy", x)
        except Exception:  # reported by that golden's test, not by the others
            export_errors[golden.name] = traceback.format_exc()
            continue
        manifest.append({"name": golden.name, "dir": str(directory), "num_inputs": len(inputs)})
    (root / "manifest.json").write_text(json.dumps(manifest))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    child = subprocess.run(
        [sys.executable, "-c", CHILD_CODE, str(root / "manifest.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return {"root": root, "expected": expected, "export_errors": export_errors, "child": child}


@pytest.mark.parametrize("golden", golden_params("savedmodel"))
def test_savedmodel_in_tensorflow_only_process(golden, savedmodel_results):
    if golden.name in savedmodel_results["export_errors"]:
        pytest.fail(f"export failed in-process:\n{savedmodel_results['export_errors'][golden.name]}")
    child = savedmodel_results["child"]
    assert child.returncode == 0 and "CHILD_OK" in child.stdout, (
        f"child process failed (exit {child.returncode}):\n{child.stdout}\n{child.stderr[-5000:]}"
    )
    directory = savedmodel_results["root"] / golden.name
    if (directory / "child_error.txt").exists():
        pytest.fail(f"child could not run the SavedModel:\n{(directory / 'child_error.txt').read_text()}")
    np.testing.assert_allclose(
        np.load(directory / "child_output.npy"),
        savedmodel_results["expected"][golden.name],
        rtol=1e-5,
        atol=1e-6,
    )


# --------------------------------------------------------------------- 5. MirroredStrategy


@pytest.fixture(scope="module")
def strategy(two_cpus):
    return two_cpus


def _mean_square(outputs):
    return tf.reduce_mean(tf.square(tf.cast(outputs, tf.float32)))


@pytest.mark.parametrize("golden", golden_params("mirrored_strategy"))
def test_mirrored_strategy_step(golden, strategy):
    inputs = golden.inputs()
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        layer = golden.make()
        layer(*inputs)  # build: variables become MirroredVariables
        optimizer = keras.optimizers.SGD(learning_rate=0.5)
        optimizer.build(layer.trainable_variables)
    dataset = tf.data.Dataset.from_tensor_slices(inputs).batch(len(inputs[0]))
    (batch,) = list(strategy.experimental_distribute_dataset(dataset))

    if not layer.trainable_variables:  # e.g. OrientationEncoding, GaussianLatent
        outputs = strategy.run(lambda *x: layer(*x), args=batch)
        gathered = to_numpy(strategy.gather(outputs, axis=0))
        assert_finite(gathered, "distributed forward")
        np.testing.assert_allclose(gathered, forward(layer, inputs), rtol=1e-5, atol=1e-6)
        return

    for variable in layer.trainable_variables:
        assert isinstance(variable.value, tf.distribute.DistributedValues), variable.path
        assert len(variable.value.values) == replicas, variable.path
    initial = layer.get_weights()
    before = [to_numpy(v) for v in layer.trainable_variables]

    @tf.function
    def train_step(batch):
        def replica_step(*x):
            with tf.GradientTape() as tape:
                # The mean over the global batch: each replica holds 1 / replicas of it.
                loss = _mean_square(layer(*x)) / replicas
            grads = tape.gradient(loss, layer.trainable_variables)
            optimizer.apply(grads, layer.trainable_variables)
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=batch), axis=None)

    assert_finite(to_numpy(train_step(batch)), "distributed loss")

    # The same step on one device with the whole batch.
    reference = type(layer).from_config(layer.get_config())
    forward(reference, inputs)
    reference.set_weights(initial)
    with tf.GradientTape() as tape:
        loss = _mean_square(reference(*inputs))
    grads = tape.gradient(loss, reference.trainable_variables)
    keras.optimizers.SGD(learning_rate=0.5).apply(grads, reference.trainable_variables)

    for variable, old, want in zip(
        layer.trainable_variables, before, reference.trainable_variables, strict=True
    ):
        values = [to_numpy(v) for v in variable.value.values]
        assert_finite(values[0], variable.path)
        assert not np.array_equal(values[0], old), f"{variable.path} did not change"
        for other in values[1:]:
            np.testing.assert_array_equal(other, values[0], err_msg=f"replicas differ: {variable.path}")
        np.testing.assert_allclose(values[0], to_numpy(want), rtol=1e-5, atol=1e-6, err_msg=variable.path)


# --------------------------------------------------------------------- 6. mixed precision


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    keras.mixed_precision.set_dtype_policy(request.param)
    try:
        yield keras.mixed_precision.dtype_policy()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("golden", golden_params("mixed_precision"))
def test_mixed_precision_forward(golden, mixed_policy):
    layer = golden.make()
    outputs = layer(*golden.inputs())
    assert layer.dtype_policy.name == mixed_policy.name
    assert keras.backend.standardize_dtype(outputs.dtype) == mixed_policy.compute_dtype
    for variable in layer.weights:
        assert variable.dtype == "float32", f"{variable.path} is {variable.dtype}"
    assert_finite(to_numpy(outputs), f"output under {mixed_policy.name}")


# ----------------------------------------------------------------------------- 7. XLA


@pytest.mark.parametrize("golden", golden_params("jit_compile"))
def test_jit_compile_matches_eager(golden):
    layer = golden.make()
    inputs = golden.inputs()
    eager = forward(layer, inputs)
    compiled = tf.function(lambda *x: layer(*x), jit_compile=True)
    np.testing.assert_allclose(to_numpy(compiled(*inputs)), eager, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- 8. argument checks


@pytest.mark.parametrize("golden", golden_params("bad_arguments"))
def test_constructor_rejects_bad_argument(golden):
    bad_kwargs, bad_value = conformance.BAD_ARGUMENTS[golden.name]
    with pytest.raises(ValueError) as raised:
        golden.make(**bad_kwargs)
    message = str(raised.value)
    assert golden.layer in message, f"{golden.layer} not named in: {message}"
    assert bad_value in message, f"bad value {bad_value} not shown in: {message}"


# ------------------------------------------------------------------------- meta tests


def _public_layers() -> dict:
    import toolkit.layers

    classes = {name: getattr(toolkit.layers, name) for name in toolkit.layers.__all__}
    classes.setdefault("CPDDense", conformance.CPDDense)
    return {name: cls for name, cls in classes.items() if inspect.isclass(cls)}


def test_every_public_layer_has_a_golden():
    public = _public_layers()
    assert public, "toolkit.layers.__all__ exports no layer classes"
    covered = {golden.layer for golden in GOLDENS}
    missing = sorted(set(public) - covered)
    assert not missing, f"public layers without a golden in conformance.GOLDENS: {missing}"
    assert "CPDDense" in covered


def test_registry_is_consistent():
    names = [golden.name for golden in GOLDENS]
    assert len(names) == len(set(names)), "golden names must be unique"
    assert set(conformance.BAD_ARGUMENTS) == set(names), "one BAD_ARGUMENTS row per golden"
    for name, capability in conformance.KNOWN_FAILURES:
        assert name in names, f"KNOWN_FAILURES names unknown golden {name!r}"
        assert capability in CAPABILITIES, f"KNOWN_FAILURES names unknown capability {capability!r}"
    for golden in GOLDENS:
        if golden.skip_reason:
            continue
        inputs = golden.inputs()
        assert inputs and all(isinstance(x, np.ndarray) and x.dtype == np.float32 for x in inputs)
        assert all(len(x) == len(inputs[0]) for x in inputs), f"{golden.name}: batch sizes differ"
        for x, again in zip(inputs, golden.inputs(), strict=True):
            np.testing.assert_array_equal(x, again, err_msg=f"{golden.name}: inputs are not seeded")
        assert type(golden.make()).__name__ == golden.layer
        assert golden.make() is not golden.make(), f"{golden.name}: make() must build a fresh layer"


@pytest.mark.parametrize("name", sorted(_public_layers()))
def test_public_layer_docstring(name):
    doc = inspect.getdoc(_public_layers()[name]) or ""
    assert "Args:" in doc, f"{name} docstring has no 'Args:' section"
    lines = [line.strip() for line in doc.splitlines()]
    assert any(line in ("Example:", "Examples:") for line in lines), (
        f"{name} docstring has no 'Example' section"
    )


# --------------------------------------------------------------------------- the models
#: The models take a dict of batch entries and train through `loss_terms` (the toolkit's
#: loop); each capability is checked on every `conformance.MODEL_GOLDENS` entry.

MODEL_GOLDENS = conformance.MODEL_GOLDENS
model_goldens = pytest.mark.parametrize("golden", MODEL_GOLDENS, ids=[g.name for g in MODEL_GOLDENS])


def built_model(golden):
    model = golden.make()
    model(golden.inputs(), training=False)
    return model


def step_loss(model, batch, global_batch: int):
    """The loop's objective: each loss term summed over the batch, over the global batch size."""
    terms = model.loss_terms(batch, training=True)
    return tf.add_n(
        [weight * tf.reduce_sum(terms[name]) / global_batch for name, weight in model.term_weights.items()]
    )


@model_goldens
def test_model_config_round_trip(golden):
    model = built_model(golden)
    inputs = golden.inputs()
    clone = type(model).from_config(json.loads(json.dumps(model.get_config())))
    clone(inputs, training=False)
    clone.set_weights(model.get_weights())
    assert_same_outputs(to_numpy(clone(inputs, training=False)), to_numpy(model(inputs, training=False)))


@model_goldens
def test_model_keras_file_round_trip(golden, tmp_path):
    model = built_model(golden)
    inputs = golden.inputs()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model)
    assert_same_outputs(to_numpy(loaded(inputs, training=False)), to_numpy(model(inputs, training=False)))
    batch = golden.training()
    np.testing.assert_allclose(
        to_numpy(step_loss(loaded, batch, BATCH_SIZE)),
        to_numpy(step_loss(model, batch, BATCH_SIZE)),
        rtol=1e-6,
    )


BATCH_SIZE = conformance.BATCH

#: Calls the `serve` signature of each exported model with TensorFlow alone (keras and
#: toolkit blocked, as for the layers) and saves its output.
MODEL_CHILD_CODE = (
    CHILD_CODE.split("entries = json.load")[0]
    + r"""
for entry in json.load(open(sys.argv[1])):
    inputs = dict(np.load(f"{entry['dir']}/inputs.npz"))
    loaded = tf.saved_model.load(f"{entry['dir']}/model")
    out = loaded.signatures["serve"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.save(f"{entry['dir']}/child_output.npy", out["output"].numpy())
assert "keras" not in sys.modules and "toolkit" not in sys.modules
print("CHILD_OK")
"""
)


def serving_module(model, inputs: dict):
    """A module holding `model` and a `serve(**inputs)` signature with the batch size left open."""
    module = tf.Module()
    module.model = model
    specs = {k: tf.TensorSpec([None, *v.shape[1:]], tf.float32, name=k) for k, v in inputs.items()}
    serve = tf.function(lambda **x: {"output": module.model(x, training=False)})
    return module, serve.get_concrete_function(**specs)


def test_every_model_exports_and_runs_in_a_tensorflow_only_process(tmp_path):
    manifest, expected = [], {}
    for golden in MODEL_GOLDENS:
        model, inputs = built_model(golden), golden.inputs()
        directory = tmp_path / golden.name
        directory.mkdir()
        module, signature = serving_module(model, inputs)
        tf.saved_model.save(module, str(directory / "model"), signatures={"serve": signature})
        np.savez(directory / "inputs.npz", **inputs)
        expected[golden.name] = to_numpy(model(inputs, training=False))
        manifest.append({"dir": str(directory)})
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    child = subprocess.run(
        [sys.executable, "-c", MODEL_CHILD_CODE, str(tmp_path / "manifest.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert child.returncode == 0 and "CHILD_OK" in child.stdout, child.stderr[-5000:]
    for golden in MODEL_GOLDENS:
        got = np.load(tmp_path / golden.name / "child_output.npy")
        np.testing.assert_allclose(got, expected[golden.name], rtol=1e-5, atol=1e-6, err_msg=golden.name)


@model_goldens
def test_model_mirrored_strategy_step_equals_one_device(golden, strategy):
    batch = golden.training()
    with strategy.scope():
        model = built_model(golden)
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
        optimizer.build(model.trainable_variables)
    reference = built_model(golden)
    reference.set_weights(model.get_weights())

    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(BATCH_SIZE)
    (distributed,) = list(strategy.experimental_distribute_dataset(dataset))

    @tf.function
    def train_step(batch):
        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss = step_loss(model, batch, BATCH_SIZE)
            optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        return strategy.reduce("SUM", strategy.run(replica_step, args=(batch,)), axis=None)

    loss = to_numpy(train_step(distributed))
    with tf.GradientTape() as tape:
        want = step_loss(reference, batch, BATCH_SIZE)
    grads = tape.gradient(want, reference.trainable_variables)
    keras.optimizers.SGD(learning_rate=0.1).apply(grads, reference.trainable_variables)
    np.testing.assert_allclose(loss, to_numpy(want), rtol=1e-5)
    for variable, expected in zip(model.trainable_variables, reference.trainable_variables, strict=True):
        values = [to_numpy(v) for v in variable.value.values]
        assert len(values) == strategy.num_replicas_in_sync
        for other in values[1:]:
            np.testing.assert_array_equal(other, values[0], err_msg=f"replicas differ: {variable.path}")
        np.testing.assert_allclose(values[0], to_numpy(expected), rtol=1e-4, atol=1e-6, err_msg=variable.path)


@model_goldens
def test_model_fit_in_a_users_loop(golden):
    model = built_model(golden)
    before = [to_numpy(v).copy() for v in model.trainable_variables]
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(golden.training(), batch_size=BATCH_SIZE, epochs=1, verbose=0)
    assert_finite(history.history["loss"], "training loss")
    assert any(not np.array_equal(b, to_numpy(v)) for b, v in zip(before, model.trainable_variables))


def test_every_public_model_has_a_golden():
    import toolkit.models

    public = {name for name in toolkit.models.__all__ if inspect.isclass(getattr(toolkit.models, name))}
    assert public and public == {golden.model for golden in MODEL_GOLDENS}
