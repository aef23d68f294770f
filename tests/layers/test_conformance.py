"""Conformance suite: every capability a toolkit layer or model must have, tested on every golden.

One test per capability, parametrized over the registry in `conformance.py` (Sonnet's
conformance-test pattern), so adding a golden there covers a new layer or model everywhere.
Layers (`conformance.GOLDENS`):

1. config and `keras.saving` (de)serialization round trips,
2. training inside functional, Sequential and subclassed user models with `model.fit`,
3. `.keras` save and `keras.saving.load_model`,
4. SavedModel export, reloaded in a separate process that imports only TensorFlow,
5. one training step under `tf.distribute.MirroredStrategy` on two logical CPUs, equal to
   the same step on one device,
6. forward passes under the `mixed_float16` and `mixed_bfloat16` dtype policies,
7. XLA (`jit_compile=True`) forward equal to the eager forward,
8. constructors rejecting bad arguments with a ValueError naming the layer and the value.

Models (`conformance.MODEL_GOLDENS`), each capability in the same section as the layers':
config round trip; `model.fit` through the model's own `compute_loss`; `.keras` round trip
with the same outputs and training loss; `model.export` run by TensorFlow alone (in the
same child process as the layers); a MirroredStrategy step of the toolkit loop's objective
(`loss_terms` weighted by `term_weights`, over the global batch size) equal to the
one-device step; mixed precision; XLA forward and loss equal to eager.

Meta tests: every public layer and model class has a golden and a documented constructor.
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
MODEL_GOLDENS = conformance.MODEL_GOLDENS
BATCH_SIZE = conformance.BATCH

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
    "docstring",
)


def golden_params(capability: str, goldens=GOLDENS) -> list:
    """`pytest.param` per golden (layer or model), with its skip and any known failure as marks."""
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


def model_params(capability: str) -> list:
    return golden_params(capability, MODEL_GOLDENS)


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


def built_model(golden):
    """A fresh model of a model golden, built by an inference call on its inputs."""
    model = golden.make()
    model(golden.inputs(), training=False)
    return model


def predict(model, inputs: dict) -> np.ndarray:
    """A model's inference output; for a VAE the decoded posterior mean (no sampling)."""
    return to_numpy(model(inputs, training=False))


def step_loss(model, batch, global_batch: int):
    """The toolkit loop's objective: each loss term summed over the batch, over the global batch size."""
    terms = model.loss_terms(batch, training=True)
    return tf.add_n(
        [weight * tf.reduce_sum(terms[name]) / global_batch for name, weight in model.term_weights.items()]
    )


def as_json(config: dict) -> dict:
    """A config as the `.keras` file stores it (tuples become lists, e.g. in build shapes)."""
    return json.loads(json.dumps(config))


def assert_finite(x, what: str) -> None:
    x = np.asarray(x, dtype="float64")
    assert np.all(np.isfinite(x)), f"{what} has non-finite values: {x}"


def assert_same_outputs(actual, expected) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-7)


def target_like(outputs) -> np.ndarray:
    """A seeded random regression target of one example's output shape (broadcast over the batch).

    Not zeros: a rotation (OrientationHead) has a constant squared norm, so a loss pulling it
    to zero has no gradient and the step would move nothing but float noise.
    """
    return np.random.default_rng(5).standard_normal(tuple(outputs.shape[1:])).astype("float32")


def assert_all_changed(variables, before, what: str) -> None:
    """Every variable moved by more than float noise (one optimizer step reached them all)."""
    assert variables, f"{what}: no trainable variables"
    unchanged = [
        v.path
        for v, old in zip(variables, before, strict=True)
        if np.max(np.abs(to_numpy(v) - old)) <= 1e-6 * max(1.0, np.max(np.abs(old)))
    ]
    assert not unchanged, f"{what}: variables not updated by the step: {unchanged}"


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


@pytest.mark.parametrize("golden", model_params("config_round_trip"))
def test_model_config_round_trip(golden):
    model = built_model(golden)
    inputs = golden.inputs()
    expected = predict(model, inputs)
    assert_same_outputs(predict(model, inputs), expected)  # inference is deterministic
    config = as_json(model.get_config())

    clone = type(model).from_config(config)
    clone(inputs, training=False)  # build
    assert as_json(clone.get_config()) == config
    clone.set_weights(model.get_weights())
    assert_same_outputs(predict(clone, inputs), expected)


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
    outputs = to_numpy(model(x))
    y = np.broadcast_to(target_like(outputs), outputs.shape).copy()
    before = [to_numpy(v).copy() for v in layer.trainable_variables]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(x, y, batch_size=len(inputs[0]), epochs=1, verbose=0)
    loss = history.history["loss"]
    assert len(loss) == 1
    assert_finite(loss, "training loss")
    if before:  # OrientationEncoding and GaussianLatent have no weights
        assert_all_changed(layer.trainable_variables, before, golden.name)


@pytest.mark.parametrize("golden", model_params("fit"))
def test_model_fit_in_a_users_loop(golden):
    """`model.fit` on the training dict alone: the model's `compute_loss` is the loss."""
    model = built_model(golden)
    before = [to_numpy(v).copy() for v in model.trainable_variables]
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(golden.training(), batch_size=BATCH_SIZE, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    assert_finite(history.history["loss"], "training loss")
    assert_all_changed(model.trainable_variables, before, golden.name)


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


@pytest.mark.parametrize("golden", model_params("keras_file"))
def test_model_keras_file_round_trip(golden, tmp_path):
    model = built_model(golden)
    inputs, batch = golden.inputs(), golden.training()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")

    assert type(loaded) is type(model)
    assert as_json(loaded.get_config()) == as_json(model.get_config())  # beta, likelihood, layers
    assert loaded.term_weights == model.term_weights
    assert_same_outputs(predict(loaded, inputs), predict(model, inputs))
    np.testing.assert_allclose(
        to_numpy(step_loss(loaded, batch, BATCH_SIZE)),
        to_numpy(step_loss(model, batch, BATCH_SIZE)),
        rtol=1e-6,
    )


# ------------------------------------------------------- 4. SavedModel, TensorFlow-only child

#: Loads every exported model of a manifest with TensorFlow alone. Keras and the toolkit are
#: made unimportable first: `import tensorflow` (2.21) itself imports `keras.src.optimizers`
#: when Keras is installed (tensorflow/__init__.py, inside try/except ImportError), so without
#: the block "keras" would always be in sys.modules; with it the check proves the artifact
#: needs neither. The "serve" endpoint of `model.export` takes one positional argument, the
#: model's input structure: the tensor, the list of tensors (layers) or the dict (models).
#: Each is called on the whole batch and on its first example alone (the batch size is open).
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


def arguments(entry, inputs, stop=None):
    if entry["structure"] == "dict":
        return {k: tf.constant(v[:stop]) for k, v in inputs.items()}
    tensors = [tf.constant(inputs[f"input_{i}"][:stop]) for i in range(len(inputs))]
    return tensors[0] if len(tensors) == 1 else tensors


entries = json.load(open(sys.argv[1]))
for entry in entries:
    directory = entry["dir"]
    try:
        inputs = dict(np.load(f"{directory}/inputs.npz"))
        loaded = tf.saved_model.load(f"{directory}/model")
        np.save(f"{directory}/child_output.npy", loaded.serve(arguments(entry, inputs)).numpy())
        np.save(f"{directory}/child_output_first.npy", loaded.serve(arguments(entry, inputs, 1)).numpy())
    except Exception:
        with open(f"{directory}/child_error.txt", "w") as f:
            f.write(traceback.format_exc())

leaked = sorted({name.split(".")[0] for name in sys.modules} & {"keras", "tf_keras", "toolkit"})
assert "toolkit" not in sys.modules, leaked
assert "keras" not in sys.modules, leaked
print("CHILD_OK", json.dumps(leaked))
"""


def _export_layer(golden, directory: Path) -> np.ndarray:
    inputs = golden.inputs()
    model = functional_model(golden.make(), inputs)
    expected = to_numpy(model(model_inputs(inputs), training=False))
    model.export(str(directory / "model"), verbose=False)
    np.savez(directory / "inputs.npz", **{f"input_{i}": x for i, x in enumerate(inputs)})
    return expected


def _export_model(golden, directory: Path) -> np.ndarray:
    model, inputs = built_model(golden), golden.inputs()
    signature = {k: tf.TensorSpec([None, *v.shape[1:]], tf.float32, name=k) for k, v in inputs.items()}
    model.export(str(directory / "model"), input_signature=[signature], verbose=False)
    np.savez(directory / "inputs.npz", **inputs)
    return predict(model, inputs)


@pytest.fixture(scope="module")
def savedmodel_results(tmp_path_factory):
    """Export every layer and model golden in-process, then run them all in one child process."""
    root = tmp_path_factory.mktemp("savedmodels")
    expected, export_errors, manifest = {}, {}, []
    for goldens, export, structure in (
        (GOLDENS, _export_layer, "list"),
        (MODEL_GOLDENS, _export_model, "dict"),
    ):
        for golden in goldens:
            if golden.skip_reason:
                continue
            directory = root / golden.name
            directory.mkdir()
            try:
                keras.utils.set_random_seed(1234)
                expected[golden.name] = export(golden, directory)
            except Exception:  # reported by that golden's test, not by the others
                export_errors[golden.name] = traceback.format_exc()
                continue
            manifest.append({"name": golden.name, "dir": str(directory), "structure": structure})
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


def _check_child_ran(golden, results) -> None:
    if golden.name in results["export_errors"]:
        pytest.fail(f"export failed in-process:\n{results['export_errors'][golden.name]}")
    child = results["child"]
    assert child.returncode == 0 and "CHILD_OK" in child.stdout, (
        f"child process failed (exit {child.returncode}):\n{child.stdout}\n{child.stderr[-5000:]}"
    )
    directory = results["root"] / golden.name
    if (directory / "child_error.txt").exists():
        pytest.fail(f"child could not run the SavedModel:\n{(directory / 'child_error.txt').read_text()}")
    expected = results["expected"][golden.name]
    for name, want in (("child_output.npy", expected), ("child_output_first.npy", expected[:1])):
        got = np.load(directory / name)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"{golden.name}: {name}")


@pytest.mark.parametrize("golden", golden_params("savedmodel"))
def test_savedmodel_in_tensorflow_only_process(golden, savedmodel_results):
    _check_child_ran(golden, savedmodel_results)


@pytest.mark.parametrize("golden", model_params("savedmodel"))
def test_model_savedmodel_in_tensorflow_only_process(golden, savedmodel_results):
    _check_child_ran(golden, savedmodel_results)


# --------------------------------------------------------------------- 5. MirroredStrategy


@pytest.fixture(scope="module")
def strategy(two_cpus):
    return two_cpus


def _mean_square(outputs, target):
    return tf.reduce_mean(tf.square(tf.cast(outputs, tf.float32) - target))


def _assert_mirrored_equals(variables, references, replicas: int, rtol: float) -> None:
    """Every replica holds the same value, and it is the one-device reference's value."""
    for variable, want in zip(variables, references, strict=True):
        assert isinstance(variable.value, tf.distribute.DistributedValues), variable.path
        values = [to_numpy(v) for v in variable.value.values]
        assert len(values) == replicas, variable.path
        assert_finite(values[0], variable.path)
        for other in values[1:]:
            np.testing.assert_array_equal(other, values[0], err_msg=f"replicas differ: {variable.path}")
        np.testing.assert_allclose(values[0], to_numpy(want), rtol=rtol, atol=1e-6, err_msg=variable.path)


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

    initial = layer.get_weights()
    before = [to_numpy(v) for v in layer.trainable_variables]
    target = tf.constant(target_like(forward(layer, inputs)))

    @tf.function
    def train_step(batch):
        def replica_step(*x):
            with tf.GradientTape() as tape:
                # The mean over the global batch: each replica holds 1 / replicas of it.
                loss = _mean_square(layer(*x), target) / replicas
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
        loss = _mean_square(reference(*inputs), target)
    grads = tape.gradient(loss, reference.trainable_variables)
    keras.optimizers.SGD(learning_rate=0.5).apply(grads, reference.trainable_variables)

    assert_all_changed(layer.trainable_variables, before, golden.name)
    _assert_mirrored_equals(layer.trainable_variables, reference.trainable_variables, replicas, rtol=1e-5)


@pytest.mark.parametrize("golden", model_params("mirrored_strategy"))
def test_model_mirrored_strategy_step_equals_one_device(golden, strategy):
    """The toolkit loop's step (`loss_terms`, `term_weights`, global batch size) on two replicas."""
    batch = golden.training()
    with strategy.scope():
        model = built_model(golden)
        optimizer = keras.optimizers.SGD(learning_rate=0.1)
        optimizer.build(model.trainable_variables)
    reference = built_model(golden)
    reference.set_weights(model.get_weights())
    before = [to_numpy(v).copy() for v in model.trainable_variables]

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

    assert_finite(loss, "distributed loss")
    np.testing.assert_allclose(loss, to_numpy(want), rtol=1e-5)
    assert_all_changed(model.trainable_variables, before, golden.name)
    _assert_mirrored_equals(
        model.trainable_variables, reference.trainable_variables, strategy.num_replicas_in_sync, rtol=1e-4
    )


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


@pytest.mark.parametrize("golden", model_params("mixed_precision"))
def test_model_mixed_precision_forward_and_loss_terms(golden, mixed_policy):
    """Forward in the compute dtype; float32 variables; the loss terms float32 and finite."""
    model = golden.make()
    outputs = model(golden.inputs(), training=False)
    assert keras.backend.standardize_dtype(outputs.dtype) == mixed_policy.compute_dtype
    assert_finite(to_numpy(outputs), f"output under {mixed_policy.name}")
    for variable in model.weights:
        assert variable.dtype == "float32", f"{variable.path} is {variable.dtype}"
    terms = model.loss_terms(golden.training(), training=True)
    for name in model.term_weights:
        assert keras.backend.standardize_dtype(terms[name].dtype) == "float32", name
        assert_finite(to_numpy(terms[name]), f"loss term {name} under {mixed_policy.name}")


# ----------------------------------------------------------------------------- 7. XLA


@pytest.mark.parametrize("golden", golden_params("jit_compile"))
def test_jit_compile_matches_eager(golden):
    layer = golden.make()
    inputs = golden.inputs()
    eager = forward(layer, inputs)
    compiled = tf.function(lambda *x: layer(*x), jit_compile=True)
    np.testing.assert_allclose(to_numpy(compiled(*inputs)), eager, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("golden", model_params("jit_compile"))
def test_model_jit_compile_matches_eager(golden):
    model, inputs, batch = built_model(golden), golden.inputs(), golden.training()
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
    np.testing.assert_allclose(to_numpy(compiled(inputs)), predict(model, inputs), rtol=1e-5, atol=1e-5)
    compiled_loss = tf.function(lambda b: step_loss(model, b, BATCH_SIZE), jit_compile=True)
    np.testing.assert_allclose(
        to_numpy(compiled_loss(batch)), to_numpy(step_loss(model, batch, BATCH_SIZE)), rtol=1e-5
    )


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


def _public_models() -> dict:
    """The classes of `toolkit.models.__all__` (not its helpers `make_latent`, `dense_sampler`)."""
    import toolkit.models

    classes = {name: getattr(toolkit.models, name) for name in toolkit.models.__all__}
    return {name: cls for name, cls in classes.items() if inspect.isclass(cls)}


def test_every_public_layer_has_a_golden():
    public = _public_layers()
    assert public, "toolkit.layers.__all__ exports no layer classes"
    covered = {golden.layer for golden in GOLDENS}
    missing = sorted(set(public) - covered)
    assert not missing, f"public layers without a golden in conformance.GOLDENS: {missing}"
    assert "CPDDense" in covered


def test_every_public_model_has_a_golden():
    public = _public_models()
    assert public, "toolkit.models.__all__ exports no model classes"
    assert all(issubclass(cls, keras.Model) for cls in public.values())
    covered = {golden.model for golden in MODEL_GOLDENS}
    missing = sorted(set(public) - covered)
    assert not missing, f"public models without a golden in conformance.MODEL_GOLDENS: {missing}"
    assert covered <= set(public), f"model goldens of classes not in toolkit.models: {covered - set(public)}"


def test_registry_is_consistent():
    names = [golden.name for golden in GOLDENS]
    model_names = [golden.name for golden in MODEL_GOLDENS]
    assert len(names) == len(set(names)), "golden names must be unique"
    assert len(model_names) == len(set(model_names)), "model golden names must be unique"
    assert not set(names) & set(model_names), "a layer and a model golden share a name"
    assert set(conformance.BAD_ARGUMENTS) == set(names), "one BAD_ARGUMENTS row per golden"
    public = {**_public_layers(), **_public_models()}
    for name, capability in conformance.KNOWN_FAILURES:
        assert capability in CAPABILITIES, f"KNOWN_FAILURES names unknown capability {capability!r}"
        known = public if capability == "docstring" else names + model_names
        assert name in known, f"KNOWN_FAILURES names unknown golden or class {name!r}"
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
    for golden in MODEL_GOLDENS:
        if golden.skip_reason:
            continue
        inputs, batch = golden.inputs(), golden.training()
        assert set(inputs) <= set(batch), f"{golden.name}: training() must extend inputs()"
        for key, x in batch.items():
            assert isinstance(x, np.ndarray) and x.dtype == np.float32, f"{golden.name}: {key}"
            assert len(x) == BATCH_SIZE, f"{golden.name}: {key} is not a batch of {BATCH_SIZE}"
            np.testing.assert_array_equal(
                x, golden.training()[key], err_msg=f"{golden.name}: {key} not seeded"
            )
            if key in inputs:
                np.testing.assert_array_equal(x, inputs[key], err_msg=f"{golden.name}: {key}")
        assert type(golden.make()).__name__ == golden.model
        assert golden.make() is not golden.make(), f"{golden.name}: make() must build a fresh model"


def _docstring_params(classes: dict) -> list:
    params = []
    for name in sorted(classes):
        known = conformance.KNOWN_FAILURES.get((name, "docstring"))
        marks = [pytest.mark.xfail(reason=known, strict=True)] if known else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.mark.parametrize("name", _docstring_params({**_public_layers(), **_public_models()}))
def test_public_class_docstring(name):
    doc = inspect.getdoc({**_public_layers(), **_public_models()}[name]) or ""
    assert "Args:" in doc, f"{name} docstring has no 'Args:' section"
    lines = [line.strip() for line in doc.splitlines()]
    assert any(line in ("Example:", "Examples:") for line in lines), (
        f"{name} docstring has no 'Example' section"
    )
