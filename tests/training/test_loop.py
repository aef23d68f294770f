"""The custom training loop: replica-count invariance, resumable data order, determinism."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.errors import RunError
from toolkit.recipes.loader import load_recipe
from toolkit.recipes.registry import source_for, task_for
from toolkit.training.checkpoints import restore_checkpoint, save_checkpoint
from toolkit.training.loop import build_for_training, make_train_step, training_dataset
from toolkit.training.optimizers import make_optimizer


def prepared(recipe, strategy, learning_rate=1.0):
    task = task_for(recipe)
    data = source_for(recipe).build(task.orientation_condition)
    with strategy.scope():
        keras.utils.set_random_seed(recipe["train"]["seed"])
        model = task.build_model(data.shapes)
        optimizer = make_optimizer("sgd", learning_rate)
        build_for_training(task, model, optimizer, data.validation)
    return data, model, optimizer


def distributed_steps(recipe, strategy, data, model, optimizer, steps, start=0):
    task, batch = task_for(recipe), recipe["train"]["global_batch_size"]
    dataset = training_dataset(task, model, data, batch, 0, start)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step = make_train_step(task, model, optimizer, strategy, batch)
    return [[float(x) for x in step(iterator)] for _ in range(steps)]


def weights(model):
    return {v.path: np.array(v.numpy()) for v in model.trainable_variables}


def test_two_replicas_match_one_for_the_same_global_batch(tiny_f_shadow, two_cpus):
    path, overrides = tiny_f_shadow
    recipe = load_recipe(path, overrides + ["train.global_batch_size=8"])
    one = tf.distribute.get_strategy()
    two = two_cpus
    assert two.num_replicas_in_sync == 2
    data, model_one, opt_one = prepared(recipe, one)
    _, model_two, opt_two = prepared(recipe, two)
    model_two.set_weights(model_one.get_weights())
    before = weights(model_one)
    (loss_one,) = distributed_steps(recipe, one, data, model_one, opt_one, 1)
    (loss_two,) = distributed_steps(recipe, two, data, model_two, opt_two, 1)
    np.testing.assert_allclose(loss_one[:2], loss_two[:2], rtol=1e-5)
    after_one, after_two = weights(model_one), weights(model_two)
    for name, start in before.items():
        # SGD with learning rate 1: the update is minus the gradient.
        np.testing.assert_allclose(
            start - after_one[name], start - after_two[name], rtol=1e-4, atol=1e-6, err_msg=name
        )
    assert any(not np.allclose(before[n], after_one[n]) for n in before)


def test_resuming_from_a_checkpoint_continues_the_same_run(tiny_f_shadow, tmp_path):
    path, overrides = tiny_f_shadow
    recipe = load_recipe(path, overrides)
    strategy = tf.distribute.get_strategy()
    data, straight, opt = prepared(recipe, strategy, learning_rate=0.01)
    losses = distributed_steps(recipe, strategy, data, straight, opt, 4)

    data, first, opt_first = prepared(recipe, strategy, learning_rate=0.01)
    early = distributed_steps(recipe, strategy, data, first, opt_first, 2)
    checkpoint = save_checkpoint(tmp_path, 2, first, opt_first, keep=1)
    data, resumed, opt_resumed = prepared(recipe, strategy, learning_rate=0.01)
    restore_checkpoint(checkpoint, resumed, opt_resumed)
    late = distributed_steps(recipe, strategy, data, resumed, opt_resumed, 2, start=2)
    np.testing.assert_allclose(np.array(early + late), np.array(losses), rtol=1e-6)
    for name, value in weights(straight).items():
        np.testing.assert_allclose(weights(resumed)[name], value, rtol=1e-6, atol=1e-7, err_msg=name)


def test_checkpoints_keep_the_newest(tiny_f_shadow, tmp_path):
    path, overrides = tiny_f_shadow
    recipe = load_recipe(path, overrides)
    _, model, opt = prepared(recipe, tf.distribute.get_strategy())
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, model, opt, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-3.npz", "step-4.npz"]


def test_restore_refuses_a_checkpoint_of_another_model(tiny_f_shadow, tmp_path):
    path, overrides = tiny_f_shadow
    small = load_recipe(path, overrides)
    _, model, opt = prepared(small, tf.distribute.get_strategy())
    checkpoint = save_checkpoint(tmp_path, 1, model, opt, keep=1)
    for change, message in (
        ("model.encoder.filters=[4, 4]", "checkpoint lacks"),
        ("model.decoder.units=9", "shape"),
    ):
        _, model_other, opt_other = prepared(
            load_recipe(path, overrides + [change]), tf.distribute.get_strategy()
        )
        with pytest.raises(RunError, match=message):
            restore_checkpoint(checkpoint, model_other, opt_other)


def test_cosine_decay_follows_the_half_cosine():
    """lr(k) = lr0 (1 + cos(pi k / T)) / 2, read from the optimizer's step counter."""
    optimizer = make_optimizer("sgd", 0.5, decay="cosine", total_steps=10)
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer.build([variable])
    rates = []
    for _ in range(4):
        rates.append(float(optimizer.learning_rate))
        optimizer.apply([np.ones(3, "float32")], [variable])
    expected = [0.5 * (1 + np.cos(np.pi * k / 10)) / 2 for k in range(4)]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    # Each SGD step moves the variable by the rate it was taken at.
    np.testing.assert_allclose(variable.numpy(), -sum(expected) * np.ones(3), rtol=1e-6)
    with pytest.raises(ValueError, match="`decay` must be one of constant, cosine, got 'linear'"):
        make_optimizer("adam", 1e-3, decay="linear")
