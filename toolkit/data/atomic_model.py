"""Atomic models (PDB, mmCIF) as blob samples: one Gaussian per atom, in Angstrom.

Each atom is a blob at its position, centred as a whole on the weighted centre of mass (as the
F is), with
* a weight, its forward scattering: `scattering: electron` (cryo-EM) takes f(0) = a1 + ... + a5
  of the five-Gaussian electron scattering factors of International Tables vol. C, table
  4.3.2.2 (gemmi's `c4322`), in Angstrom; `scattering: xray` takes the atomic number Z (the
  electrons of the neutral atom, f(0) for X-rays);
* a width `sigma` in Angstrom, widened by the atom's B-factor where `b_factor` is set (a
  B-factor B is a Gaussian of variance B / (8 pi^2) per axis, added to sigma^2).
The shadow source blurs atoms narrower than a pixel to a pixel (`BlobSample.widened_to`), since
the blob renderer is exact only for blobs of at least a pixel; the blur keeps each atom's mass.

Files are read with gemmi (the `structures` extra). Where a file has no element column (CHARMM
and other simulation programs write none), gemmi guesses elements from atom names and reads CA
as calcium; inside standard amino-acid and nucleotide residues (and CHARMM's and AMBER's
histidines, HSD, HIE and the like) the element is therefore the first letter of the atom name
(selenium excepted), as the PDB's naming rules make it.
A path `PACKAGE:RELATIVE` names a file shipped inside an installed Python package, such as
`MDAnalysisTests:data/adk_open.pdb` (the `structures` extra's adenylate kinase).
"""

from __future__ import annotations

import importlib
import importlib.resources
import math
from pathlib import Path

import numpy as np

from toolkit.data.objects import BlobSample

SCATTERING = ("electron", "xray")
# Histidine as CHARMM and AMBER name its protonation states; gemmi's table does not list them.
_HISTIDINES = frozenset({"HSD", "HSE", "HSP", "HID", "HIE", "HIP"})
_EXTRAS = {"gemmi": "structures", "MDAnalysisTests": "structures"}  # module: the extra that installs it


def _import(module: str):
    """The module, or an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        extra = _EXTRAS.get(module)
        if extra is None:
            raise ImportError(f"{module} is not installed: install the package that ships it") from error
        raise ImportError(
            f"{module} is not installed: atomic models need the `{extra}` extra; "
            f'run `pip install -e ".[{extra}]"`'
        ) from error


def resolve_path(path: str | Path) -> Path:
    """`path` itself, or the file `RELATIVE` inside the installed package of `PACKAGE:RELATIVE`."""
    text = str(path)
    package, separator, relative = text.partition(":")
    if separator and len(package) > 1 and package.isidentifier():
        root = importlib.resources.files(_import(package).__name__)
        path = Path(str(root / relative))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{text}: no such atomic model file; give a PDB or mmCIF path")
    return path


def _element(gemmi, residue, atom):
    """The atom's element, from the name in standard polymer residues (see the module docstring)."""
    info = gemmi.find_tabulated_residue(residue.name)
    standard = info is not None and (info.is_amino_acid() or info.is_nucleic_acid())
    polymer = standard or residue.name in _HISTIDINES
    if polymer and atom.element.name != "Se":
        letter = next((c for c in atom.name if c.isalpha()), "X")
        return gemmi.Element(letter)
    return atom.element


def read_atoms(path: str | Path, model: int = 0) -> dict[str, np.ndarray]:
    """Positions [N, 3] (Angstrom), element symbols [N] and B-factors [N] of one model of a file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file has no such model, no atoms, or an atom of unknown element.
        ImportError: gemmi is missing (the message names the `structures` extra).
    """
    gemmi = _import("gemmi")
    path = resolve_path(path)
    try:
        structure = gemmi.read_structure(str(path))
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"{path}: not a readable PDB or mmCIF file ({error})") from None
    if not 0 <= model < len(structure):
        raise ValueError(f"{path}: model {model} does not exist; the file has {len(structure)} model(s)")
    positions, elements, b_factors = [], [], []
    for chain in structure[model]:
        for residue in chain:
            for atom in residue:
                element = _element(gemmi, residue, atom)
                if element.atomic_number == 0:
                    raise ValueError(
                        f"{path}: atom {atom.name} of residue {residue.name} {chain.name}/{residue.seqid} "
                        f"has no known element; write its element symbol in the file"
                    )
                positions.append(atom.pos.tolist())
                elements.append(element.name)
                b_factors.append(atom.b_iso)
    if not positions:
        raise ValueError(f"{path}: model {model} has no atoms; give a model with coordinates")
    return {
        "positions": np.array(positions, np.float64),
        "elements": np.array(elements),
        "b_factors": np.array(b_factors, np.float64),
    }


def scattering_weights(elements, scattering: str = "electron") -> np.ndarray:
    """Forward scattering f(0) per element symbol: electron (Angstrom) or X-ray (electrons)."""
    if scattering not in SCATTERING:
        raise ValueError(f"`scattering` must be one of {', '.join(SCATTERING)}, got {scattering!r}.")
    gemmi = _import("gemmi")
    weights = {}
    for symbol in set(np.asarray(elements).tolist()):
        element = gemmi.Element(symbol)
        if scattering == "xray":
            weights[symbol] = float(element.atomic_number)
        else:
            weights[symbol] = float(sum(element.c4322.get_coefs()[:5]))
    return np.array([weights[symbol] for symbol in np.asarray(elements).tolist()], np.float64)


def atomic_model(
    path: str, scattering: str = "electron", sigma: float = 1.0, b_factor: bool = False, model: int = 0
) -> BlobSample:
    """The atoms of a PDB or mmCIF model as a blob sample in Angstrom (see the module docstring).

    Args:
        path: the file, or `PACKAGE:RELATIVE` for a file shipped in an installed package.
        scattering: `electron` or `xray`: what weighs each atom. Default value: `"electron"`.
        sigma: each atom's width in Angstrom before the B-factor. Default value: `1.0`.
        b_factor: widen each atom by its B-factor. Default value: `False`.
        model: which model of a multi-model file. Default value: `0`.
    """
    atoms = read_atoms(path, model)
    weights = scattering_weights(atoms["elements"], scattering)
    widths = np.full(len(weights), float(sigma))
    if b_factor:
        widths = np.sqrt(widths**2 + np.maximum(atoms["b_factors"], 0.0) / (8 * math.pi**2))
    positions = atoms["positions"]
    centred = positions - (weights @ positions) / weights.sum()
    return BlobSample(centred, weights, widths, angstrom=True)
