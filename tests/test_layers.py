"""The package's layering (the map in fedhet/__init__.py): no module imports from a layer above
its own, and the workflow's side of the package loads without torch."""

import ast
import subprocess
import sys

import pytest

import fedhet
from conftest import REPO

PACKAGE = REPO / "fedhet"


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def fedhet_imports(path) -> set[str]:
    """Every fedhet module ``path`` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fedhet":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "fedhet")
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    for name in MODULES:
        assert fedhet.layer_of(name) is not None, f"{name} belongs to no layer of fedhet.LAYERS"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_from_a_layer_above_its_own(name):
    own = fedhet.layer_of(name)
    for target in fedhet_imports(MODULES[name]):
        layer = fedhet.layer_of(target)
        names = fedhet.LAYERS[own][0], fedhet.LAYERS[layer][0]
        assert layer <= own, f"{name} (layer {names[0]}) imports {target} (layer {names[1]})"


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above could fail: an analysis module importing training is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fedhet.training.cell import run_cell\n")
    assert fedhet.layer_of(next(iter(fedhet_imports(bad)))) > fedhet.layer_of("fedhet.analysis.tables")


def test_the_workflow_side_loads_without_torch():
    """Snakemake imports these while it builds a grid; torch stays out of them."""
    torch_free = [
        n
        for n in MODULES
        if n.startswith(("fedhet.data", "fedhet.workflow", "fedhet.analysis"))
        or n in ("fedhet", "fedhet.io", "fedhet.privacy", "fedhet.privacy.accounting")
        or n in ("fedhet.privacy.tuning_charge", "fedhet.privacy.audit")
    ]
    code = f"import sys\nfor n in {torch_free!r}: __import__(n)\nassert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
