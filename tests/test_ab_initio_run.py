"""`toolkit run` of an ab initio recipe: its files read by mrcfile and starfile, and the commands
that follow it (infer, reconstruct, fsc) on its outputs."""

import mrcfile
import numpy as np
import pytest
import starfile
import tensorflow as tf
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from toolkit.cli import cli
from toolkit.layers import VoxelDensity

TINY_AB_INITIO = [
    "data.image_size=32",
    "data.validation_size=16",
    "model.density.count=10",
    "model.encoder.filters=[4]",
    "model.encoder.units=8",
    "model.head.hidden_units=[8]",
    "model.local_rounds=1",
    "model.candidates=2",
    "train.global_batch_size=8",
    "train.epochs=1",
    "train.steps_per_epoch=5",
]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def sets(overrides):
    return [a for o in overrides for a in ("--set", o)]


@pytest.fixture(scope="module")
def ab_initio_run(tmp_path_factory, recipes_dir):
    out = tmp_path_factory.mktemp("ab_initio") / "run"
    result = invoke("run", recipes_dir / "f_ab_initio.yaml", *sets(TINY_AB_INITIO), "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def test_the_run_writes_the_map_the_held_out_images_and_their_poses(ab_initio_run):
    with mrcfile.open(ab_initio_run / "map.mrc") as written:
        assert written.data.shape == (32, 32, 32)
        assert float(written.voxel_size.x) == pytest.approx(2.0)  # the recipe's data.pixel_size
    with mrcfile.open(ab_initio_run / "particles.mrcs") as stack:
        assert stack.data.shape == (16, 32, 32)
    poses = starfile.read(ab_initio_run / "poses.star")
    rows = poses["particles"]
    assert list(rows["rlnImageName"]) == [f"{i:06d}@particles.mrcs" for i in range(1, 17)]
    angles = rows[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy()
    matrices = Rotation.from_euler("ZYZ", angles, degrees=True).as_matrix().transpose(0, 2, 1)
    np.testing.assert_allclose(np.linalg.det(matrices), 1.0, atol=1e-6)
    assert float(poses["optics"]["rlnImagePixelSize"].iloc[0]) == pytest.approx(2.0)
    assert (ab_initio_run / "figures" / "map_vs_truth.png").is_file()


def test_the_exported_orientation_is_the_encoders(ab_initio_run):
    exported = tf.saved_model.load(str(ab_initio_run / "saved_model")).signatures["orientation"]
    images = mrcfile.read(ab_initio_run / "particles.mrcs")[:, None, :, :, None]
    rotations = exported(images=tf.constant(images))["rotations"].numpy().reshape(-1, 3, 3)
    assert rotations.shape == (16, 3, 3)
    np.testing.assert_allclose(
        rotations @ rotations.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (16, 3, 3)), atol=1e-4
    )


def test_infer_aligns_the_learned_frame_before_scoring(ab_initio_run, tmp_path, recipes_dir):
    particles = tmp_path / "particles"
    simulate = invoke(
        "simulate", recipes_dir / "f_ab_initio.yaml", *sets(TINY_AB_INITIO), "--count", 12, "--out", particles
    )
    assert simulate.exit_code == 0, simulate.output
    result = invoke("infer", ab_initio_run, particles / "particles.star", "--out", tmp_path / "poses.star")
    assert result.exit_code == 0, result.output
    assert "in the learned map's frame, aligned globally" in result.output


def test_reconstruct_and_fsc_read_the_runs_outputs(ab_initio_run, tmp_path):
    result = invoke("reconstruct", ab_initio_run / "poses.star", "--out", tmp_path / "map.mrc")
    assert result.exit_code == 0, result.output
    result = invoke("fsc", tmp_path / "map.mrc", ab_initio_run / "map.mrc", "--align")
    assert result.exit_code == 0, result.output


def test_a_sequence_of_views_is_refused_with_the_key_to_change(recipes_dir):
    overrides = TINY_AB_INITIO + [
        "data.sequence_length=2",
        "model.stages=[{downsample: 5, blur: 1.0, until: 1.0}]",
    ]
    result = invoke("validate", recipes_dir / "f_ab_initio.yaml", *sets(overrides))
    assert result.exit_code == 2
    assert "data.sequence_length: ab_initio learns from single images, got 2; set it to 1" in result.output
    assert "data.image_size: 32 pixels must be a multiple of model.stages[0].downsample = 5" in result.output


def test_a_run_on_a_particle_file_writes_every_particles_pose_and_origin_into_a_copy_of_it(
    tmp_path, recipes_dir
):
    particles = tmp_path / "particles"
    simulated = invoke(
        "simulate",
        recipes_dir / "f_ab_initio_snr0.1.yaml",
        *sets(["data.image_size=32"]),
        "--count",
        24,
        "--out",
        particles,
    )
    assert simulated.exit_code == 0, simulated.output
    star = particles / "particles.star"
    overrides = TINY_AB_INITIO + [
        "data.type=particles",
        f"data.star={star}",
        "data.ctf=phase_flip",
        "data.validation_size=8",
        "model.max_shift=4.0",
    ]
    out = tmp_path / "run"
    result = invoke("run", recipes_dir / "f_ab_initio.yaml", *sets(overrides), "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    given, written = starfile.read(star), starfile.read(out / "poses.star")
    rows = written["particles"]
    assert len(rows) == 24 and not (out / "particles.mrcs").exists()
    # The same images (names relative to the run directory), CTF and optics, with new poses and origins.
    stacks = [str((out / name.split("@")[1]).resolve()) for name in rows["rlnImageName"]]
    assert stacks == [
        str((particles / name.split("@")[1]).resolve()) for name in given["particles"]["rlnImageName"]
    ]
    np.testing.assert_allclose(rows["rlnDefocusU"], given["particles"]["rlnDefocusU"])
    assert not np.allclose(rows["rlnAngleRot"], given["particles"]["rlnAngleRot"])
    origins = rows[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy()
    pixel = float(given["optics"]["rlnImagePixelSize"].iloc[0])
    assert np.all(np.abs(origins) <= 6.0 * pixel), origins  # within max_shift and its refinement
    result = invoke("reconstruct", out / "poses.star", "--out", tmp_path / "map.mrc")
    assert result.exit_code == 0, result.output
    # The exported encoder predicts shifts too, which infer writes as the particles' origins.
    result = invoke("infer", out, star, "--out", tmp_path / "inferred.star")
    assert result.exit_code == 0, result.output
    inferred = starfile.read(tmp_path / "inferred.star")["particles"]
    assert len(inferred) == 24 and {"rlnOriginXAngst", "rlnOriginYAngst"} <= set(inferred.columns)
    origins = inferred[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy()
    assert np.isfinite(origins).all() and not np.allclose(origins, 0.0)
    exported = tf.saved_model.load(str(out / "saved_model")).signatures["orientation"]
    assert set(exported.structured_outputs) == {"rotations", "relion_rot_tilt_psi", "shifts"}


def test_a_run_on_ctf_shadows_writes_the_held_out_images_with_their_ctf(tmp_path, recipes_dir):
    out = tmp_path / "run"
    overrides = TINY_AB_INITIO + ["model.max_shift=4.0"]
    result = invoke("run", recipes_dir / "f_ab_initio_snr0.1.yaml", *sets(overrides), "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    poses = starfile.read(out / "poses.star")
    rows, optics = poses["particles"], poses["optics"]
    assert len(rows) == 16
    # The recipe's microscope: defocus 5,000-10,000 A, astigmatism up to 300 A, at 300 kV.
    assert rows["rlnDefocusU"].between(5000, 10150).all() and rows["rlnDefocusV"].between(4850, 10000).all()
    assert float(optics["rlnVoltage"].iloc[0]) == pytest.approx(300.0)
    assert {"rlnOriginXAngst", "rlnOriginYAngst"} <= set(rows.columns)
    result = invoke("reconstruct", out / "poses.star", "--out", tmp_path / "map.mrc")
    assert result.exit_code == 0, result.output


def test_a_voxel_map_run_writes_its_map_as_learned_and_a_bad_search_downsample_is_refused(
    tmp_path, recipes_dir
):
    out = tmp_path / "run"
    result = invoke(
        "run", recipes_dir / "f_ab_initio_voxels.yaml", *sets(TINY_AB_INITIO), "--out", out, "--quiet"
    )
    assert result.exit_code == 0, result.output
    # The map is the voxels as trained: moved from their start, the random blobs' density.
    start = VoxelDensity(size=32, extent=1.0, count=10, radius=0.07, sigma=0.1, seed=0)
    start.build((None, 3, 3))
    learned = mrcfile.read(out / "map.mrc")
    assert learned.shape == (32, 32, 32)
    change = np.abs(learned - start.as_map()).max()
    assert 0.01 < change < 0.1, change  # five Adam steps of about 10 x 0.001 per voxel
    assert len(starfile.read(out / "poses.star")["particles"]) == 16
    stages = "[{downsample: 2, search_downsample: 5, blur: 1.0, until: 1.0}]"
    result = invoke(
        "validate",
        recipes_dir / "f_ab_initio_voxels.yaml",
        *sets(TINY_AB_INITIO + [f"model.stages={stages}"]),
    )
    assert result.exit_code == 2
    assert (
        "data.image_size: 32 pixels must be a multiple of model.stages[0].search_downsample = 5"
        in result.output
    )
