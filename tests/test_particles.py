"""`toolkit simulate` and `toolkit infer`, checked with mrcfile, starfile, scipy and a hand projection."""

import math

import mrcfile
import numpy as np
import pytest
import starfile
from click.testing import CliRunner
from scipy import ndimage
from scipy.spatial.transform import Rotation

from toolkit.cli import cli

CTF = [
    "data.ctf={defocus_min: 8000.0, defocus_max: 12000.0, astigmatism: 400.0}",
    "data.pixel_size=3.0",
]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def simulate(tiny, count, out, extra=()):
    """`toolkit simulate` of the tiny orientation recipe; fails the test if the command does."""
    recipe, overrides = tiny
    result = invoke("simulate", recipe, *sets(overrides + list(extra)), "--count", count, "--out", out)
    assert result.exit_code == 0, result.output
    return result


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


def hand_projection(tiny, relion_angles, extra=()) -> np.ndarray:
    """Shadows of the recipe's sample at RELION poses, from the Gaussian formula and scipy alone."""
    from toolkit.recipes.loader import load_recipe
    from toolkit.recipes.registry import source_for

    recipe = load_recipe(tiny[0], tiny[1] + list(extra))
    source = source_for(recipe).shadow_data()
    centers = np.asarray(source.sample.centers, np.float64)
    weights = np.asarray(source.sample.weights, np.float64)
    sigma = float(source.sample.sigma)
    size, extent = recipe["data"]["image_size"], recipe["data"]["extent"]
    grid = (np.arange(size) - size // 2) * 2 * extent / size  # pixel N // 2 at 0, as in RELION
    # RELION's matrix A maps the volume to the image frame: A = (scipy ZYZ matrix) transposed.
    poses = Rotation.from_euler("ZYZ", relion_angles, degrees=True).as_matrix().transpose(0, 2, 1)
    images = []
    for pose in poses:
        x, y = (centers @ pose.T)[:, 0], (centers @ pose.T)[:, 1]
        gy = np.exp(-((grid[:, None] - y[None]) ** 2) / (2 * sigma**2))  # [row, blob]
        gx = np.exp(-((grid[:, None] - x[None]) ** 2) / (2 * sigma**2))  # [col, blob]
        images.append((gy * weights / (2 * math.pi * sigma**2)) @ gx.T)
    return np.asarray(images) / source.intensity_scale


def test_simulated_particles_are_shadows_at_their_relion_angles(tmp_path, tiny_f_orientation):
    simulate(tiny_f_orientation, 5, tmp_path)
    assert (tmp_path / "particles.png").stat().st_size > 0
    with mrcfile.open(tmp_path / "particles.mrcs", permissive=False) as stack:
        assert stack.is_image_stack() and stack.data.shape == (5, 16, 16)
        assert np.isclose(float(stack.voxel_size.x), 2.0)
        images = np.array(stack.data)
    star = starfile.read(tmp_path / "particles.star")
    particles, optics = star["particles"], star["optics"]
    assert list(particles["rlnImageName"]) == [f"{i:06d}@particles.mrcs" for i in range(1, 6)]
    assert float(optics["rlnImagePixelSize"][0]) == 2.0 and int(optics["rlnImageSize"][0]) == 16
    angles = particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    expected = hand_projection(tiny_f_orientation, angles)
    np.testing.assert_allclose(images, expected, atol=2e-4 * expected.max())


def test_simulated_ctf_is_the_one_the_star_file_states(tmp_path, tiny_f_orientation, ctf_reference):
    simulate(tiny_f_orientation, 4, tmp_path, CTF)
    images = mrcfile.read(tmp_path / "particles.mrcs")
    star = starfile.read(tmp_path / "particles.star")
    particles, optics = star["particles"], star["optics"]
    assert (
        particles["rlnDefocusU"].between(8000, 12200).all()
        and particles["rlnDefocusV"].between(7800, 12000).all()
    )
    assert (particles["rlnDefocusU"] - particles["rlnDefocusV"]).between(0, 400).all()
    angles = particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    clean = hand_projection(tiny_f_orientation, angles, CTF)
    for image, truth, (_, row) in zip(images, clean, particles.iterrows(), strict=True):
        transfer = ctf_reference.ctf(
            16,
            float(optics["rlnImagePixelSize"][0]),
            row["rlnDefocusU"],
            row["rlnDefocusV"],
            row["rlnDefocusAngle"],
            float(optics["rlnVoltage"][0]),
            float(optics["rlnSphericalAberration"][0]),
            float(optics["rlnAmplitudeContrast"][0]),
        )
        expected = np.real(np.fft.ifft2(np.fft.fft2(truth) * transfer))
        np.testing.assert_allclose(image, expected, atol=1e-3 * np.abs(expected).max())


def test_origins_centre_each_particle_as_relion_reads_them(tmp_path, tiny_f_orientation):
    shifted = ["data.shift=2.0", "data.image_size=32"]  # blobs 4 pixels wide: scipy's spline is accurate
    simulate(tiny_f_orientation, 4, tmp_path, shifted)
    images = mrcfile.read(tmp_path / "particles.mrcs")
    star = starfile.read(tmp_path / "particles.star")
    particles, optics = star["particles"], star["optics"]
    apix = float(optics["rlnImagePixelSize"][0])
    origins = particles[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy() / apix
    assert np.abs(origins).max() > 0.5
    angles = particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    centred_truth = hand_projection(tiny_f_orientation, angles, shifted)
    for image, (x, y), truth in zip(images, origins, centred_truth, strict=True):
        # RELION moves a particle by its origin to centre it: scipy's shift by (y, x).
        centred = ndimage.shift(image.astype(np.float64), (y, x), order=3, mode="constant")
        wrong_way = ndimage.shift(image.astype(np.float64), (-y, -x), order=3, mode="constant")
        assert np.abs(centred - truth).max() < 0.02 * truth.max()
        assert np.abs(wrong_way - truth).max() > 0.2 * truth.max()


def test_simulate_writes_the_true_map_and_a_phase_shift(tmp_path, tiny_f_orientation):
    simulate(tiny_f_orientation, 3, tmp_path, CTF)
    with mrcfile.open(tmp_path / "truth.mrc", permissive=False) as truth:
        assert truth.data.shape == (16, 16, 16) and np.isclose(float(truth.voxel_size.x), 3.0)
        volume = np.array(truth.data, np.float64)
    assert "rlnPhaseShift" in starfile.read(tmp_path / "particles.star")["particles"]
    # The map's sum along z is the clean particle at the identity pose.
    np.testing.assert_allclose(
        volume.sum(axis=0), hand_projection(tiny_f_orientation, [[0, 0, 0]])[0], atol=1e-3
    )


def test_reconstruct_turns_simulated_particles_into_the_true_map(tmp_path, tiny_f_orientation):
    extra = CTF + ["data.shift=1.0"]
    simulate(tiny_f_orientation, 300, tmp_path, extra)
    result = invoke("reconstruct", tmp_path / "particles.star", "--out", tmp_path / "map.mrc", "--half-maps")
    assert result.exit_code == 0, result.output
    assert "half maps, FSC 0.143" in result.output
    truth = mrcfile.read(tmp_path / "truth.mrc")
    maps = {name: mrcfile.read(tmp_path / f"{name}.mrc") for name in ("map", "map_half1", "map_half2")}

    def correlation(a, b):
        a, b = np.ravel(a) - np.mean(a), np.ravel(b) - np.mean(b)
        return float(a @ b / np.sqrt((a @ a) * (b @ b)))

    assert all(correlation(volume, truth) > 0.9 for volume in maps.values())  # positive: RELION's sign
    split = starfile.read(tmp_path / "map_particles.star")["particles"]["rlnRandomSubset"]
    assert sorted(np.bincount(split)[1:].tolist()) == [150, 150]
    assert (tmp_path / "map_halves_fsc.csv").read_text().startswith("shell,")

    inverted = tmp_path / "inverted.mrc"
    result = invoke("reconstruct", tmp_path / "particles.star", "--out", inverted, "--invert-contrast")
    assert result.exit_code == 0, result.output
    assert correlation(mrcfile.read(inverted), truth) < -0.9


def test_two_shard_processes_merge_to_the_one_process_maps(tmp_path, tiny_f_orientation):
    import subprocess
    import sys

    simulate(tiny_f_orientation, 40, tmp_path, CTF + ["data.shift=1.0"])
    star = tmp_path / "particles.star"
    whole = invoke("reconstruct", star, "--out", tmp_path / "whole.mrc", "--half-maps")
    assert whole.exit_code == 0, whole.output
    command = [sys.executable, "-m", "toolkit", "reconstruct", str(star), "--half-maps"]
    workers = [
        subprocess.Popen(command + ["--shard", f"{i}/2", "--out", str(tmp_path / f"part{i}.npz")])
        for i in (1, 2)
    ]
    assert [worker.wait(timeout=300) for worker in workers] == [0, 0]
    parts = [tmp_path / "part1.npz", tmp_path / "part2.npz"]
    merged = invoke("reconstruct", "--merge", *parts, "--out", tmp_path / "merged.mrc", "--half-maps")
    assert merged.exit_code == 0, merged.output
    for name in ("", "_half1", "_half2"):
        one, two = (mrcfile.read(tmp_path / f"{stem}{name}.mrc") for stem in ("whole", "merged"))
        np.testing.assert_allclose(two, one, atol=1e-5 * np.abs(one).max())


def test_a_shard_of_infer_holds_every_nth_particle(tmp_path, tiny_f_orientation, orientation_run):
    simulate(tiny_f_orientation, 7, tmp_path)
    out = tmp_path / "shard.star"
    result = invoke("infer", orientation_run, tmp_path / "particles.star", "--out", out, "--shard", "2/3")
    assert result.exit_code == 0, result.output
    names = starfile.read(out)["particles"]["rlnImageName"].tolist()
    assert names == [f"{i:06d}@particles.mrcs" for i in (2, 5)]
    bad = invoke(
        "infer", orientation_run, tmp_path / "particles.star", "--out", tmp_path / "b.star", "--shard", "4/3"
    )
    assert bad.exit_code == 2 and "--shard" in bad.output and not (tmp_path / "b.star").exists()


def test_reconstruct_refuses_a_star_file_without_poses(tmp_path):
    from toolkit.io.mrc import write_stack
    from toolkit.io.particles import write_particles

    write_stack(tmp_path / "p.mrcs", np.zeros((2, 8, 8)), 1.0)
    write_particles(tmp_path / "p.star", ["1@p.mrcs", "2@p.mrcs"], 1.0, 8)
    result = CliRunner().invoke(
        cli, ["reconstruct", str(tmp_path / "p.star"), "--out", str(tmp_path / "m.mrc")]
    )
    assert result.exit_code == 2
    assert "no _rlnAngleRot" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m.mrc").exists()


def test_refine_recovers_poses_and_keeps_every_column(tmp_path, tiny_f_orientation):
    extra = ["data.image_size=32", "data.shift=1.0"] + CTF
    simulate(tiny_f_orientation, 6, tmp_path, extra)
    out = tmp_path / "refined.star"
    result = invoke(
        "refine",
        tmp_path / "particles.star",
        "--reference",
        tmp_path / "truth.mrc",
        "--out",
        out,
        "--last-level",
        4,
    )
    assert result.exit_code == 0, result.output
    given, refined = (starfile.read(p)["particles"] for p in (tmp_path / "particles.star", out))
    assert set(given.columns) < set(refined.columns)
    assert {"rlnMaxValueProbDistribution", "rlnNrOfSignificantSamples"} <= set(refined.columns)
    np.testing.assert_array_equal(given["rlnDefocusU"], refined["rlnDefocusU"])
    angle_columns = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
    truth, found = (
        Rotation.from_euler("ZYZ", table[angle_columns].to_numpy(), degrees=True)
        for table in (given, refined)
    )
    assert np.median(np.degrees((found * truth.inv()).magnitude())) < 2.0
    origins = ["rlnOriginXAngst", "rlnOriginYAngst"]
    np.testing.assert_allclose(refined[origins].to_numpy(), given[origins].to_numpy(), atol=0.5 * 3.0)


def test_an_interrupted_refine_resumes_where_it_stopped(tmp_path, tiny_f_orientation, monkeypatch):
    import toolkit.runs.refine as workflow

    simulate(tiny_f_orientation, 6, tmp_path)
    monkeypatch.setattr(workflow, "CHUNK", 2)
    calls, real = [], workflow.refine

    def stops_after_one_chunk(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the session stops in the middle
        return real(*args, **kwargs)

    monkeypatch.setattr(workflow, "refine", stops_after_one_chunk)
    out = tmp_path / "refined.star"
    command = ["refine", tmp_path / "particles.star", "--reference", tmp_path / "truth.mrc", "--out", out]
    invoke(*command, "--last-level", 2)
    assert not out.exists() and workflow.partial_path(out).exists()
    calls.clear()
    monkeypatch.setattr(workflow, "refine", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    result = invoke(*command, "--last-level", 2)
    assert result.exit_code == 0, result.output
    assert calls == [2, 2]  # the first two particles were not refined again
    assert len(starfile.read(out)["particles"]) == 6 and not workflow.partial_path(out).exists()


def test_each_half_is_refined_against_its_own_half_map(tmp_path, tiny_f_orientation):
    from toolkit.io.mrc import write_map

    simulate(tiny_f_orientation, 8, tmp_path)
    split = tmp_path / "split.star"
    table = starfile.read(tmp_path / "particles.star")
    table["particles"]["rlnRandomSubset"] = [1, 2] * 4
    starfile.write(table, split)
    write_map(tmp_path / "empty.mrc", np.zeros((16, 16, 16), np.float32), 2.0)
    out = tmp_path / "refined.star"
    references = ["--reference", tmp_path / "truth.mrc", "--reference", tmp_path / "empty.mrc"]
    result = invoke("refine", split, *references, "--out", out, "--last-level", 2)
    assert result.exit_code == 0, result.output
    scores = starfile.read(out)["particles"]["toolkitMatchScore"].to_numpy()
    assert np.all(scores[0::2] > 0.9) and np.all(scores[1::2] == 0)  # half 2 saw only the empty map
    unsplit = invoke("refine", tmp_path / "particles.star", *references, "--out", tmp_path / "u.star")
    assert unsplit.exit_code == 2 and "_rlnRandomSubset" in unsplit.output


def test_refine_refuses_a_reference_of_another_box(tmp_path, tiny_f_orientation):
    from toolkit.io.mrc import write_map

    simulate(tiny_f_orientation, 2, tmp_path)
    write_map(tmp_path / "small.mrc", np.zeros((8, 8, 8), np.float32), 2.0)
    out = tmp_path / "refined.star"
    result = invoke(
        "refine", tmp_path / "particles.star", "--reference", tmp_path / "small.mrc", "--out", out
    )
    assert result.exit_code == 2 and "--new_box 16" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


@pytest.fixture(scope="module")
def orientation_run(tmp_path_factory, tiny_f_orientation):
    out = tmp_path_factory.mktemp("runs") / "orientation"
    result = invoke("run", tiny_f_orientation[0], *sets(tiny_f_orientation[1]), "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_infer_writes_the_models_poses_and_scores_them(tmp_path, tiny_f_orientation, orientation_run):
    import tensorflow as tf

    particles = tmp_path / "particles"
    simulate(tiny_f_orientation, 7, particles)
    out = tmp_path / "poses" / "predicted.star"
    out.parent.mkdir()
    result = invoke("infer", orientation_run, particles / "particles.star", "--out", out, "--batch-size", 3)
    assert result.exit_code == 0, result.output

    predicted = starfile.read(out)["particles"]
    assert list(predicted["rlnImageName"]) == [f"{i:06d}@../particles/particles.mrcs" for i in range(1, 8)]
    exported = tf.saved_model.load(str(orientation_run / "saved_model")).signatures["orientation"]
    images = mrcfile.read(particles / "particles.mrcs")[:, None, :, :, None]
    model_poses = exported(images=tf.constant(images))["rotations"].numpy()[:, 0]
    angles = predicted[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    written_poses = Rotation.from_euler("ZYZ", angles, degrees=True).as_matrix().transpose(0, 2, 1)
    np.testing.assert_allclose(written_poses, model_poses, atol=1e-4)

    truth = starfile.read(particles / "particles.star")["particles"]
    assert list(truth.columns) == list(predicted.columns)  # every column of the input is kept
    true_poses = Rotation.from_euler(
        "ZYZ", truth[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy(), degrees=True
    ).inv()  # the inverse of scipy's rotation is RELION's pose matrix
    errors = np.degrees((Rotation.from_matrix(written_poses) * true_poses.inv()).magnitude())
    assert f"median error {np.median(errors):.1f} degrees" in result.output


def test_infer_reads_a_bare_stack(tmp_path, orientation_run):
    stack = tmp_path / "bare.mrcs"
    with mrcfile.new(stack) as handle:
        handle.set_data(np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
        handle.set_image_stack()
        handle.voxel_size = 1.5
    result = invoke("infer", orientation_run, stack, "--out", tmp_path / "poses.star")
    assert result.exit_code == 0, result.output
    star = starfile.read(tmp_path / "poses.star")
    assert len(star["particles"]) == 3 and float(star["optics"]["rlnImagePixelSize"][0]) == 1.5


def test_bad_particle_input_exits_2_with_one_line_and_keeps_files(
    tmp_path, recipes_dir, tiny_f_orientation, orientation_run
):
    simulated = tmp_path / "sim"
    simulate(tiny_f_orientation, 2, simulated)
    star_text = (simulated / "particles.star").read_text()
    wrong_size = tmp_path / "big.mrcs"
    with mrcfile.new(wrong_size) as handle:
        handle.set_data(np.zeros((2, 32, 32), np.float32))
    cases = [
        (["infer", orientation_run, tmp_path / "missing.star", "--out", tmp_path / "a.star"], "missing.star"),
        (["infer", orientation_run, wrong_size, "--out", tmp_path / "b.star"], "the model reads 16x16"),
        (["infer", tmp_path, simulated / "particles.star", "--out", tmp_path / "c.star"], "no SavedModel"),
        (
            ["infer", orientation_run, simulated / "particles.star", "--out", simulated / "particles.star"],
            "already exists",
        ),
        (
            ["simulate", recipes_dir / "mnist_vae.yaml", "--out", tmp_path / "m"],
            "mnist cannot draw new particles",
        ),
        (["simulate", recipes_dir / "f_orientation.yaml", "--out", simulated], "already exists"),
        (
            [
                "simulate",
                recipes_dir / "f_orientation.yaml",
                "--set",
                "data.ctf.defocus_min=-1",
                "--out",
                tmp_path / "n",
            ],
            "data.ctf.defocus_min",
        ),
    ]
    for args, expected in cases:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], (args, result.output)
    assert (simulated / "particles.star").read_text() == star_text
    assert not (tmp_path / "m").exists() and not (tmp_path / "n").exists()


def test_a_vae_run_has_no_orientation_to_infer(tmp_path, tiny_f_shadow):
    recipe, overrides = tiny_f_shadow
    run_dir = tmp_path / "vae"
    assert invoke("run", recipe, *sets(overrides), "--out", run_dir, "--quiet").exit_code == 0
    stack = tmp_path / "s.mrcs"
    with mrcfile.new(stack) as handle:
        handle.set_data(np.zeros((1, 16, 16), np.float32))
    result = invoke("infer", run_dir, stack, "--out", tmp_path / "p.star")
    assert result.exit_code == 2 and "has no `orientation` signature" in result.output


def test_the_cryoem_recipe_trains_on_ctf_modulated_noisy_shadows(tmp_path, recipes_dir, tiny_f_orientation):
    from toolkit.recipes.loader import load_recipe
    from toolkit.recipes.registry import source_for
    from toolkit.runs.train import run

    recipe = recipes_dir / "f_orientation_cryoem.yaml"
    validation = source_for(load_recipe(recipe, tiny_f_orientation[1])).build().validation
    defocus = validation["defocus"].reshape(-1, 3)
    assert np.all((defocus[:, :2] >= 5000 - 150) & (defocus[:, :2] <= 10000 + 150))
    assert np.all(defocus[:, 0] - defocus[:, 1] <= 300 + 1e-3)
    summary = run(recipe, tiny_f_orientation[1], tmp_path / "run", quiet=True)
    assert summary["steps"] == 2 and np.isfinite(summary["val_median_error_deg"])


def _peak_rss_anon_mib(args) -> float:
    """Peak anonymous memory of a child process (a memory map's page cache is not counted)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    process = subprocess.Popen([sys.executable, "-m", "toolkit", *map(str, args)], stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text().splitlines()
            peak = max(peak, next(int(line.split()[1]) for line in status if line.startswith("RssAnon:")))
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            pass
        time.sleep(0.05)
    assert process.returncode == 0
    return peak / 1024


@pytest.mark.skipif(not __import__("pathlib").Path("/proc/self/status").exists(), reason="needs /proc")
def test_infer_memory_is_bounded_by_a_batch_not_by_the_stack(tmp_path, orientation_run):
    from toolkit.io.mrc import write_stack_chunks

    # 512 MB of 16x16 images; every 64th is read, so the run stays short while the stack is large.
    count, chunk = 2**19, np.zeros((2**15, 16, 16), np.float32)
    write_stack_chunks(
        tmp_path / "big.mrcs", (chunk for _ in range(count // len(chunk))), count, (16, 16), 2.0
    )
    write_stack_chunks(tmp_path / "small.mrcs", [chunk[: count // 64]], count // 64, (16, 16), 2.0)
    small = _peak_rss_anon_mib(
        ["infer", orientation_run, tmp_path / "small.mrcs", "--out", tmp_path / "s.star"]
    )
    big = _peak_rss_anon_mib(
        ["infer", orientation_run, tmp_path / "big.mrcs", "--out", tmp_path / "b.star", "--shard", "1/64"]
    )
    assert big - small < 128, (small, big)  # reading the whole stack would add 512 MB
