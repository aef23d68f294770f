"""Atomic models as samples: files written by gemmi, weights from the published tables, widths."""

import math
import textwrap
from pathlib import Path

import gemmi  # the structures extra, which dev installs
import mrcfile
import numpy as np
import pytest
import starfile
from click.testing import CliRunner
from scipy.spatial.transform import Rotation

from toolkit.cli import cli
from toolkit.data import atomic_model as am
from toolkit.data.objects import BlobSample
from toolkit.data.render import pixel_centers, pixel_size, render_shadows

# f(0) = a1 + ... + a5 of International Tables vol. C, table 4.3.2.2 (electron), typed from it.
ELECTRON_F0 = {"C": 0.0893 + 0.2563 + 0.7570 + 1.0487 + 0.3575}
ELECTRON_F0["N"] = 0.1022 + 0.3219 + 0.7982 + 0.8197 + 0.1715
ELECTRON_F0["O"] = 0.0974 + 0.2921 + 0.6910 + 0.6990 + 0.2039
ELECTRON_F0["H"] = 0.0349 + 0.1201 + 0.1970 + 0.0573 + 0.1195
ELECTRON_F0["S"] = 0.2497 + 0.5628 + 1.3899 + 2.1865 + 0.7715
RECIPES = Path(__file__).resolve().parents[2] / "recipes"
ATOMS = [  # residue, atom name, element, position, B
    ("ALA", "N", "N", (1.0, 2.0, 3.0), 10.0),
    ("ALA", "CA", "C", (2.5, 2.0, 3.0), 20.0),
    ("ALA", "O", "O", (3.0, 3.2, 2.0), 30.0),
    ("HOH", "O", "O", (-4.0, 1.0, 0.5), 40.0),
]


def _structure():
    structure = gemmi.Structure()
    model, chain = gemmi.Model("1"), gemmi.Chain("A")
    for number, (residue_name, name, element, position, b) in enumerate(ATOMS, 1):
        residue = gemmi.Residue()
        residue.name, residue.seqid = residue_name, gemmi.SeqId(number, " ")
        atom = gemmi.Atom()
        atom.name, atom.element, atom.b_iso = name, gemmi.Element(element), b
        atom.pos = gemmi.Position(*position)
        residue.add_atom(atom)
        chain.add_residue(residue)
    model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    return structure


@pytest.fixture(params=["pdb", "cif"])
def model_file(request, tmp_path):
    path = tmp_path / f"model.{request.param}"
    if request.param == "pdb":
        _structure().write_pdb(str(path))
    else:
        _structure().make_mmcif_document().write_file(str(path))
    return path


def test_a_model_written_by_gemmi_reads_back_its_atoms(model_file):
    atoms = am.read_atoms(model_file)
    np.testing.assert_allclose(atoms["positions"], [a[3] for a in ATOMS], atol=1e-3)
    assert atoms["elements"].tolist() == [a[2] for a in ATOMS]
    np.testing.assert_allclose(atoms["b_factors"], [a[4] for a in ATOMS], atol=1e-2)


def test_weights_are_the_published_forward_scattering(model_file):
    electron = am.atomic_model(str(model_file), scattering="electron")
    np.testing.assert_allclose(electron.weights, [ELECTRON_F0[a[2]] for a in ATOMS], rtol=1e-4)
    xray = am.atomic_model(str(model_file), scattering="xray")
    np.testing.assert_allclose(xray.weights, [{"C": 6, "N": 7, "O": 8}[a[2]] for a in ATOMS])
    assert electron.angstrom and xray.angstrom


def test_the_model_is_centred_on_its_weighted_centre_and_widened_by_b_factors(model_file):
    positions = np.array([a[3] for a in ATOMS])
    weights = np.array([ELECTRON_F0[a[2]] for a in ATOMS])
    sample = am.atomic_model(str(model_file), sigma=0.5, b_factor=True)
    expected = positions - (weights[:, None] * positions).sum(0) / weights.sum()
    np.testing.assert_allclose(sample.centers, expected, atol=1e-3)
    widths = [math.sqrt(0.25 + a[4] / (8 * math.pi**2)) for a in ATOMS]
    np.testing.assert_allclose(sample.sigma, widths, rtol=1e-4)
    assert am.atomic_model(str(model_file), sigma=0.5).sigma.tolist() == [0.5] * len(ATOMS)


def test_blobs_of_their_own_widths_render_as_their_analytic_gaussians():
    centers = np.array([[0.3, -0.2, 0.5], [-0.4, 0.1, -0.2]])
    weights, widths = np.array([1.0, 2.0]), np.array([0.15, 0.3])
    image = render_shadows(BlobSample(centers, weights, widths), np.eye(3)[None], 24, 1.2).numpy()[0]
    x = pixel_centers(24, 1.2)
    expected = sum(
        w / (2 * math.pi * s**2) * np.exp(-((x[None, :] - c[0]) ** 2 + (x[:, None] - c[1]) ** 2) / (2 * s**2))
        for c, w, s in zip(centers, weights, widths)
    )
    np.testing.assert_allclose(image, expected, rtol=1e-4, atol=1e-5)


def test_atoms_narrower_than_a_pixel_are_blurred_to_one_and_keep_their_mass():
    sample = BlobSample([[0.0, 0.0, 0.0], [2.0, 1.0, 0.0]], [1.0, 3.0], [0.5, 3.0], angstrom=True)
    widened = sample.widened_to(2.0)
    assert widened.sigma.tolist() == [2.0, 3.0] and widened.angstrom
    image = render_shadows(widened, np.eye(3)[None], 64, 64.0).numpy()
    assert image.sum() * pixel_size(64, 64.0) ** 2 == pytest.approx(4.0, rel=1e-4)


def test_standard_residues_without_an_element_column_are_not_calcium(tmp_path):
    # CHARMM writes no element column (77-78); the calcium ion keeps its own.
    path = tmp_path / "charmm.pdb"
    path.write_text(
        textwrap.dedent(
            """\
            ATOM      1  N   ALA     1       0.000   0.000   0.000  1.00  0.00      PROT
            ATOM      2  CA  ALA     1       1.500   0.000   0.000  1.00  0.00      PROT
            ATOM      3  CA  HSD     2       3.000   0.000   0.000  1.00  0.00      PROT
            ATOM      4  HN  HSD     2       3.500   1.000   0.000  1.00  0.00      PROT
            HETATM    5 CA    CA     3       6.000   0.000   0.000  1.00  0.00          CA
            END
            """
        )
    )
    assert am.read_atoms(path)["elements"].tolist() == ["N", "C", "C", "H", "Ca"]


def test_bad_models_say_what_is_wrong(tmp_path):
    empty = tmp_path / "empty.pdb"
    empty.write_text("REMARK nothing here\nEND\n")
    with pytest.raises(ValueError, match="has no atoms"):
        am.read_atoms(empty)
    with pytest.raises(FileNotFoundError, match="no such atomic model file"):
        am.read_atoms(tmp_path / "missing.pdb")
    unknown = tmp_path / "unknown.pdb"
    unknown.write_text("HETATM    1 QQ1  LIG     1       0.000   0.000   0.000  1.00  0.00\nEND\n")
    with pytest.raises(ValueError, match="atom QQ1 of residue LIG .* has no known element"):
        am.read_atoms(unknown)
    with pytest.raises(ValueError, match="`scattering` must be one of electron, xray"):
        am.scattering_weights(["C"], "neutron")


def test_a_missing_library_names_the_extra_that_installs_it(monkeypatch):
    real = am.importlib.import_module

    def without_gemmi(name, *args):
        if name == "gemmi":
            raise ImportError("No module named 'gemmi'")
        return real(name, *args)

    monkeypatch.setattr(am.importlib, "import_module", without_gemmi)
    with pytest.raises(ImportError, match=r'the `structures` extra; run `pip install -e "\.\[structures\]"`'):
        am.read_atoms("anything.pdb")


def _adk_by_hand() -> tuple[np.ndarray, np.ndarray]:
    """Positions and electron weights of adk_open.pdb from its fixed columns and the PDB naming rule."""
    path = am.resolve_path("MDAnalysisTests:data/adk_open.pdb")
    lines = [line for line in path.read_text().splitlines() if line.startswith(("ATOM", "HETATM"))]
    positions = np.array([[float(line[c : c + 8]) for c in (30, 38, 46)] for line in lines])
    letters = [next(c for c in line[12:16] if c.isalpha()) for line in lines]
    return positions, np.array([ELECTRON_F0[letter] for letter in letters])


def test_adenylate_kinase_simulates_as_its_atoms_project_by_hand(tmp_path):
    sets = ["data.image_size=32", "data.pixel_size=4.0"]  # every atom inside a 128 A field
    args = ["simulate", str(RECIPES / "adk_orientation.yaml"), "--count", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(cli, args + [a for o in sets for a in ("--set", o)])
    assert result.exit_code == 0, result.output
    with mrcfile.open(tmp_path / "particles.mrcs") as stack:
        assert float(stack.voxel_size.x) == 4.0
        images = np.array(stack.data, np.float64)
    with mrcfile.open(tmp_path / "truth.mrc") as truth:
        assert truth.data.shape == (32, 32, 32) and float(truth.voxel_size.x) == 4.0
    particles = starfile.read(tmp_path / "particles.star")["particles"]
    angles = particles[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]]
    positions, weights = _adk_by_hand()
    centred = positions - weights @ positions / weights.sum()
    grid = (np.arange(32) - 16) * 4.0
    sigma = 4.0  # 1 A atoms blurred to a pixel
    poses = Rotation.from_euler("ZYZ", angles.to_numpy(), degrees=True).as_matrix().transpose(0, 2, 1)
    expected = []
    for pose in poses:
        x, y = (centred @ pose.T)[:, 0], (centred @ pose.T)[:, 1]
        gy = np.exp(-((grid[:, None] - y[None]) ** 2) / (2 * sigma**2))
        gx = np.exp(-((grid[:, None] - x[None]) ** 2) / (2 * sigma**2))
        expected.append((gy * weights / (2 * math.pi * sigma**2)) @ gx.T)
    expected = np.array(expected)
    scale = float(np.sum(images * expected) / np.sum(expected**2))  # the recipe's one intensity scale
    np.testing.assert_allclose(images, scale * expected, atol=2e-4 * images.max())


def test_an_atomic_sample_takes_its_field_from_the_pixel_size():
    args = ["validate", str(RECIPES / "adk_orientation.yaml"), "--set", "data.extent=1.0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "data.extent: the atomic_model sample is in Angstrom" in result.output
    missing = ["validate", str(RECIPES / "adk_orientation.yaml"), "--set", "data.sample.path=nowhere.pdb"]
    result = CliRunner().invoke(cli, missing)
    assert result.exit_code == 2
    assert "data.sample.path: nowhere.pdb: no such atomic model file" in result.output
