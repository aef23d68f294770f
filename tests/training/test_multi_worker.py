"""MultiWorkerMirroredStrategy for real: two `toolkit run` worker processes on localhost.

Each worker gets TF_CONFIG with the same cluster and its own task index. Worker 0 is the chief
and writes the run directory; the other worker writes nothing (its --out is never created).
TOOLKIT_FINAL_WEIGHTS makes every worker dump its final variables so they can be compared.
"""

import json
import signal
import socket

from toolkit.training.checkpoints import list_checkpoints


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(runs, args_of, weights_of=None) -> list:
    """One `toolkit run` per worker of a localhost cluster; `args_of(i)` gives worker i's arguments."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        env = {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        if weights_of is not None:
            env["TOOLKIT_FINAL_WEIGHTS"] = str(weights_of(index))
        processes.append(runs.start_toolkit("run", *args_of(index), "--quiet", env=env))
    return processes


def finish_all(runs, processes) -> None:
    results = [runs.finish(p) for p in processes]
    for index, (code, _, stderr) in enumerate(results):
        assert code == 0, f"worker {index}: {stderr[-3000:]}"


def test_two_workers_train_like_one_process(runs, longer_recipe, reference_run, tmp_path):
    path, overrides = longer_recipe
    # With figures and the SavedModel: the chief writes them alone, without the other worker.
    sets = runs.as_sets(
        overrides + ["strategy.type=multi_worker", "output.figures=true", "output.export=true"]
    )
    outs = [tmp_path / "chief", tmp_path / "worker1"]
    weights = [tmp_path / f"weights-{i}.npz" for i in range(2)]
    finish_all(runs, start_workers(runs, lambda i: [path, *sets, "--out", outs[i]], weights.__getitem__))

    assert not outs[1].exists()  # a non-chief worker writes nothing
    assert (outs[0] / "saved_model" / "saved_model.pb").exists() and (outs[0] / "figures").is_dir()
    assert "CollectiveAllReduceStrategy (2 replicas)" in (outs[0] / "run.log").read_text()
    runs.assert_same_weights(weights[1], weights[0])  # bit for bit
    runs.assert_same_weights(outs[0] / "checkpoints" / "step-12.npz", weights[0])
    # Each global batch of 4 is split 2 + 2 (not duplicated), and gradients are summed over workers:
    # the loss curve is the one-process curve up to the all-reduce's summation order.
    runs.assert_same_metrics(outs[0], reference_run, rtol=1e-4)
    runs.assert_same_weights(weights[0], reference_run / "checkpoints" / "step-12.npz", rtol=1e-3, atol=1e-5)


def test_killed_workers_resume_from_the_chief_checkpoint(runs, longer_recipe, reference_run, tmp_path):
    path, overrides = longer_recipe
    sets = runs.as_sets(overrides + ["strategy.type=multi_worker"])
    out = tmp_path / "run"  # one path for both workers, as on a shared file system
    processes = start_workers(runs, lambda i: [path, *sets, "--out", out])
    runs.wait_for(out / "checkpoints" / "step-6.npz", processes)
    for process in processes:
        process.send_signal(signal.SIGKILL)
    assert [runs.finish(p)[0] for p in processes] == [-signal.SIGKILL] * 2
    killed_at = list_checkpoints(out / "checkpoints")[-1][0]
    assert killed_at in (6, 9) and not (out / "summary.json").exists()

    weights = [tmp_path / f"weights-{i}.npz" for i in range(2)]
    finish_all(runs, start_workers(runs, lambda i: ["--resume", out], weights.__getitem__))
    assert f"from step {killed_at}" in (out / "run.log").read_text()
    runs.assert_same_weights(weights[1], weights[0])
    runs.assert_same_metrics(out, reference_run, rtol=1e-4)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [9, 12]


def test_workers_with_different_recipes_refuse_to_train(runs, tiny_f_shadow, tmp_path):
    path, overrides = tiny_f_shadow
    sets = runs.as_sets(overrides + ["strategy.type=multi_worker"])
    differs = [[], ["--set", "train.learning_rate=0.002"]]  # one override more on worker 1
    out = tmp_path / "run"
    processes = start_workers(runs, lambda i: [path, *sets, *differs[i], "--out", out])
    for code, _, stderr in (runs.finish(p, timeout=120) for p in processes):
        lines = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert code == 2 and len(lines) == 1 and "the workers resolved 2 different recipes" in lines[0], (
            stderr
        )
    assert not out.exists()  # refused before the run directory was made
