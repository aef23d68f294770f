"""`data.type: particles`: files written by mrcfile and starfile, prepared as numpy prepares them."""

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile
from scipy.spatial.transform import Rotation

from toolkit.data.sources.particles import ParticleSource
from toolkit.errors import RunError
from toolkit.recipes.spec import DATA

SIZE, COUNT = 16, 40


def _spec(star, **changes):
    fields = DATA["particles"].fields
    spec = {name: field.default for name, field in fields.items() if name != "star"}
    return {**spec, "star": str(star), **changes}


def _write_project(root, count=COUNT, size=SIZE, groups=(300.0, 200.0)):
    """A RELION-like project: the stack under Extract/job002, the STAR file under Refine3D/job010."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(count, size, size)).astype(np.float32)
    images[:, 5:11, 5:11] += 4.0  # a "particle" inside the background circle
    stack = root / "Extract" / "job002" / "particles.mrcs"
    stack.parent.mkdir(parents=True)
    with mrcfile.new(stack) as mrc:
        mrc.set_data(images)
        mrc.voxel_size = 2.0
    angles = Rotation.random(count, random_state=1).as_euler("ZYZ", degrees=True)
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1, 2],
            "rlnOpticsGroupName": ["a", "b"],
            "rlnImagePixelSize": [2.0, 2.0],
            "rlnImageSize": [size, size],
            "rlnVoltage": list(groups),
            "rlnSphericalAberration": [2.7, 1.4],
            "rlnAmplitudeContrast": [0.1, 0.07],
        }
    )
    particles = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@Extract/job002/particles.mrcs" for i in range(count)],
            "rlnAngleRot": angles[:, 0],
            "rlnAngleTilt": angles[:, 1],
            "rlnAnglePsi": angles[:, 2],
            "rlnOriginXAngst": rng.normal(size=count),
            "rlnOriginYAngst": rng.normal(size=count),
            "rlnDefocusU": rng.uniform(8000, 12000, count),
            "rlnDefocusV": rng.uniform(8000, 12000, count),
            "rlnDefocusAngle": rng.uniform(0, 180, count),
            "rlnPhaseShift": np.zeros(count),
            "rlnCtfBfactor": np.zeros(count),
            "rlnOpticsGroup": np.arange(count) % 2 + 1,
        }
    )
    star = root / "Refine3D" / "job010" / "run_data.star"
    star.parent.mkdir(parents=True)
    starfile.write({"optics": optics, "particles": particles}, star)
    return star, images, particles, optics


def _numpy_preparation(images, particles, optics, ctf_reference, size, invert=False):
    """Invert, Fourier-crop, normalize and phase-flip in float64 numpy."""
    full = images.shape[-1]
    out = -images if invert else images.astype(np.float64)
    if size != full:
        axes = (-2, -1)  # pixel N // 2 is the origin, before and after
        spectrum = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(out, axes=axes)), axes=axes)
        start = full // 2 - size // 2
        window = np.fft.ifftshift(spectrum[:, start : start + size, start : start + size], axes=axes)
        out = np.fft.fftshift(np.fft.ifft2(window), axes=axes).real * (size / full) ** 2
    r = np.arange(size) - size // 2
    outside = np.hypot(r[None, :], r[:, None]) > 0.75 * size / 2
    background = out[:, outside]
    out = (out - background.mean(1)[:, None, None]) / background.std(1)[:, None, None]
    group = optics.set_index("rlnOpticsGroup").loc[particles["rlnOpticsGroup"]]
    pixel = 2.0 * full / size
    flipped = []
    for image, (_, p), (_, g) in zip(out, particles.iterrows(), group.iterrows()):
        ctf = ctf_reference.ctf(
            size, pixel, p.rlnDefocusU, p.rlnDefocusV, p.rlnDefocusAngle,
            g.rlnVoltage, g.rlnSphericalAberration, g.rlnAmplitudeContrast,
        )  # fmt: skip
        flipped.append(np.fft.ifft2(np.fft.fft2(image) * np.sign(ctf)).real)
    return np.array(flipped)


@pytest.mark.parametrize("size", [SIZE, 12, 9], ids=["same box", "Fourier-cropped", "cropped to odd"])
def test_validation_particles_are_prepared_as_numpy_prepares_them(tmp_path, ctf_reference, size):
    star, images, particles, optics = _write_project(tmp_path)
    bundle = ParticleSource(_spec(star, image_size=size, validation_size=8)).build()
    order = np.random.default_rng(0).permutation(COUNT)
    rows = np.sort(order[:8])
    expected = _numpy_preparation(images[rows], particles.iloc[rows], optics, ctf_reference, size)
    got = bundle.validation["images"][:, 0, :, :, 0]
    np.testing.assert_allclose(got, expected, atol=2e-4)
    poses = Rotation.from_euler(
        "ZYZ", particles.iloc[rows][["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]], degrees=True
    )
    np.testing.assert_allclose(
        bundle.validation["rotations"][:, 0], poses.as_matrix().transpose(0, 2, 1), atol=1e-5
    )
    pixel = 2.0 * SIZE / size
    origins = particles.iloc[rows][["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy()
    np.testing.assert_allclose(bundle.validation["shifts"][:, 0], -origins / pixel, atol=1e-5)
    assert bundle.shapes.image_size == size and bundle.shapes.measured["pixel_size"] == pixel
    assert bundle.shapes.measured["preparation"]["ctf"] == "phase_flip"


@pytest.mark.parametrize("size", [SIZE, 12], ids=["same box", "Fourier-cropped"])
def test_phase_flipped_particles_carry_the_absolute_value_of_their_ctf(tmp_path, ctf_reference, size):
    star, images, particles, optics = _write_project(tmp_path)
    bundle = ParticleSource(_spec(star, image_size=size, validation_size=8)).build()
    rows = np.sort(np.random.default_rng(0).permutation(COUNT)[:8])
    group = optics.set_index("rlnOpticsGroup").loc[particles.iloc[rows]["rlnOpticsGroup"]]
    expected = [
        np.abs(
            ctf_reference.ctf(
                size,
                2.0 * SIZE / size,
                p.rlnDefocusU,
                p.rlnDefocusV,
                p.rlnDefocusAngle,
                g.rlnVoltage,
                g.rlnSphericalAberration,
                g.rlnAmplitudeContrast,
            )
        )  # fmt: skip
        for (_, p), (_, g) in zip(particles.iloc[rows].iterrows(), group.iterrows())
    ]
    np.testing.assert_allclose(bundle.validation["ctf"][:, 0], expected, atol=1e-4)
    assert "ctf" in bundle.shapes.keys
    unflipped = ParticleSource(_spec(star, image_size=size, validation_size=8, ctf="none")).build()
    assert "ctf" not in unflipped.validation and "ctf" not in unflipped.shapes.keys


def test_training_streams_every_other_particle_once_per_epoch(tmp_path):
    star, images, _, _ = _write_project(tmp_path)
    spec = _spec(star, ctf="none", normalize=False, validation_size=8)
    bundle = ParticleSource(spec).build()
    batches = list(bundle.train_dataset(8, 0, 4).as_numpy_iterator())  # one epoch of 32 particles
    seen = np.concatenate([b["images"][:, 0, :, :, 0] for b in batches])
    rows = [
        int(np.flatnonzero(np.all(np.isclose(images, image, atol=1e-6), axis=(1, 2)))[0]) for image in seen
    ]
    held = set(np.random.default_rng(0).permutation(COUNT)[:8].tolist())
    assert sorted(rows) == sorted(set(range(COUNT)) - held)
    again = next(bundle.train_dataset(8, 2, 1).as_numpy_iterator())  # a resumed run sees the same batch
    np.testing.assert_array_equal(again["images"], batches[2]["images"])


def test_invert_contrast_negates_the_particles(tmp_path):
    star, _, _, _ = _write_project(tmp_path)
    plain = ParticleSource(_spec(star, ctf="none", normalize=False)).build().validation["images"]
    inverted = ParticleSource(_spec(star, ctf="none", normalize=False, invert_contrast=True)).build()
    np.testing.assert_allclose(inverted.validation["images"], -plain)


def test_stacks_resolve_from_the_project_folder_or_stack_root(tmp_path):
    star, _, _, _ = _write_project(tmp_path / "project")
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "project" / "Extract").rename(moved / "Extract")
    with pytest.raises(
        RunError, match=r"row 1: stack Extract/job002/particles.mrcs not found \(tried .*set data.stack_root"
    ):
        ParticleSource(_spec(star)).build()
    bundle = ParticleSource(_spec(star, stack_root=str(moved), validation_size=4)).build()
    assert bundle.validation["images"].shape == (4, 1, SIZE, SIZE, 1)


def test_bad_particle_files_name_the_file_and_row(tmp_path):
    star, _, particles, optics = _write_project(tmp_path)
    broken = particles.copy()
    broken.loc[3, "rlnImageName"] = f"{COUNT + 5:06d}@Extract/job002/particles.mrcs"
    starfile.write({"optics": optics, "particles": broken}, star, overwrite=True)
    with pytest.raises(
        RunError, match=rf"row 4: image {COUNT + 5}@Extract/job002/particles.mrcs is past the end"
    ):
        ParticleSource(_spec(star)).build()
    stack = tmp_path / "Extract" / "job002" / "particles.mrcs"
    held = int(np.sort(np.random.default_rng(0).permutation(COUNT)[:8])[0])  # a validation row
    with mrcfile.open(stack, mode="r+") as mrc:
        mrc.data[held, 2, 2] = np.nan
    starfile.write({"optics": optics, "particles": particles}, star, overwrite=True)
    with pytest.raises(
        RunError, match=f"row {held + 1}: image {held + 1}@Extract/job002/particles.mrcs holds NaN"
    ):
        ParticleSource(_spec(star, validation_size=8)).build()
    no_poses = particles.drop(columns=["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"])
    starfile.write({"optics": optics, "particles": no_poses}, star, overwrite=True)
    with pytest.raises(RunError, match="has no _rlnAngleRot"):
        ParticleSource(_spec(star)).build()
    assert ParticleSource(_spec(tmp_path / "none.star")).check() == [
        f"data.star: {tmp_path / 'none.star'}: file not found; give a particle STAR file"
    ]


def test_a_run_trains_from_particle_files_and_infer_prepares_particles_alike(tmp_path, tiny_f_orientation):
    from click.testing import CliRunner

    from toolkit.cli import cli
    from toolkit.runs.directory import RunDirectory

    recipe, overrides = tiny_f_orientation
    sets = [*overrides, "data.ctf={defocus_min: 8000.0, defocus_max: 12000.0}", "data.shift=1.0"]
    simulate = ["simulate", recipe, "--count", "48", "--out", tmp_path / "parts"]
    result = CliRunner().invoke(cli, [str(a) for a in simulate] + [a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    star = tmp_path / "parts" / "particles.star"
    data = f"data={{type: particles, star: {star}, image_size: 12, validation_size: 8}}"
    train = [*overrides, data]
    result = CliRunner().invoke(
        cli, ["run", str(recipe), "--out", str(tmp_path / "run")] + [a for s in train for a in ("--set", s)]
    )
    assert result.exit_code == 0, result.output
    measured = RunDirectory(tmp_path / "run").read_shapes().measured
    assert measured["preparation"]["image_size"] == 12 and measured["preparation"]["ctf"] == "phase_flip"
    assert measured["pixel_size"] == pytest.approx(2.0 * 16 / 12)
    result = CliRunner().invoke(
        cli, ["infer", str(tmp_path / "run"), str(star), "--out", str(tmp_path / "p.star")]
    )
    assert result.exit_code == 0, result.output
    assert len(starfile.read(tmp_path / "p.star")["particles"]) == 48


def test_stacks_of_different_boxes_are_refused_with_their_sizes(tmp_path):
    star, _, particles, optics = _write_project(tmp_path)
    other = tmp_path / "Extract" / "job002" / "other.mrcs"
    with mrcfile.new(other) as mrc:
        mrc.set_data(np.zeros((2, 12, 12), np.float32))
        mrc.voxel_size = 2.0
    mixed = particles.copy()
    mixed.loc[0, "rlnImageName"] = "000001@Extract/job002/other.mrcs"
    starfile.write({"optics": optics, "particles": mixed}, star, overwrite=True)
    with pytest.raises(
        RunError,
        match=r"stacks hold images of different sizes \(.*other.mrcs: 12x12, .*particles.mrcs: 16x16\)",
    ):
        ParticleSource(_spec(star)).build()
