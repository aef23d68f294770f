"""The numpy-only readers of this folder, the independent oracles of the mrcfile and starfile wrappers."""

import importlib.util
import sys
from pathlib import Path

import pytest


def _load(name: str):
    """Import `name.py` next to this file (pytest runs with --import-mode=importlib)."""
    key = f"toolkit_tests_io_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


@pytest.fixture(scope="session")
def numpy_mrc():
    """`numpy_mrc.py`: the header words and data of an MRC file, read with numpy alone."""
    return _load("numpy_mrc")


@pytest.fixture(scope="session")
def numpy_star():
    """`numpy_star.py`: the blocks of a STAR file, parsed line by line in Python."""
    return _load("numpy_star")
