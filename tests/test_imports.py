"""Every module of the package and every benchmark script imports, and the house keeps its rules."""

import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

import pytest

import toolkit

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit."))
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    assert importlib.import_module(name).__doc__, f"{name} has no module docstring"


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_script_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(path.parent))  # the scripts import each other as run from benchmarks/
    spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)  # defines only: the work happens under `if __name__ == "__main__"`


def test_the_package_top_level_holds_no_workflow_module():
    top = sorted(p.stem for p in (ROOT / "toolkit").glob("*.py"))
    assert top == ["__init__", "__main__", "cli", "errors", "progress", "quiet"]


def test_the_cli_module_holds_no_command():
    """Every verb lives in toolkit.commands; cli.py only registers them."""
    tree = ast.parse((ROOT / "toolkit" / "cli.py").read_text())
    decorated = [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
        if "command" in ast.unparse(decorator)
    ]
    assert decorated == []


def test_no_module_guesses_the_kind_of_a_model():
    """The task answers for its model: nothing outside the models asks what a model has."""
    offenders = []
    for path in (ROOT / "toolkit").rglob("*.py"):
        text = path.read_text()
        for probe in ('hasattr(model, "decode")', 'hasattr(model, "latent")', "data.kind"):
            if probe in text:
                offenders.append(f"{path.relative_to(ROOT)}: {probe}")
    assert offenders == []
