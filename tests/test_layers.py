"""The layering in DESIGN.md, enforced: imports only point down, and the core needs no edge library.

    entry (the tasks, the `posepipe` program) -> commands -> cli, run (the engine) -> edges -> core

A module may import its own layer and the layers below it; an upward import fails here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.layout import REPO_ROOT

PACKAGE = REPO_ROOT / "pipelines"
# What each layer may import from posepipe (besides itself and the package root's __version__).
ALLOWED = {
    "core": {"core"},
    "edges": {"core", "edges"},
    "cli": {"core", "cli"},
    "run": {"core", "edges", "run"},
    "commands": {"core", "edges", "run", "cli", "commands"},
    "entry": {"core", "edges", "run", "cli", "commands", "entry"},
}
EDGE_LIBRARIES = ("docker", "requests", "urllib3", "rich", "oras", "invoke", "cryptography")


def posepipe_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(node.lineno, n) for n in names if n.startswith("pipelines.")]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "relative import"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("pipelines.")]
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_every_module_lives_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside the layer folders: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_point_down(path):
    layer = path.relative_to(PACKAGE).parts[0]
    if layer not in ALLOWED:
        return
    for line, module in posepipe_imports(path):
        assert module != "relative import", f"{path}:{line}: use absolute imports so the layer is visible"
        target = layer_of(module)
        if target is not None:
            assert target in ALLOWED[layer], f"{path}:{line}: {layer} may not import {module} ({target} is above it)"


def test_core_imports_and_works_without_edge_libraries(tmp_path):
    """In a fresh interpreter where docker, requests, rich, oras ... cannot be imported."""
    script = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EDGE_LIBRARIES!r}:
            raise ImportError("edge library " + name + " is not installed here")
sys.meta_path.insert(0, Refuse())
import pkgutil, importlib, pipelines.core
for m in pkgutil.walk_packages(pipelines.core.__path__, "pipelines.core."):
    importlib.import_module(m.name)
from pipelines.core.layout import REPO_ROOT
from pipelines.core.recipe import load_recipe
from pipelines.core.plan import plan
r = load_recipe(REPO_ROOT / "recipes" / "hrnet_sophon.yaml")
steps = plan(r, r.targets, "c" * 64, "d" * 64)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {EDGE_LIBRARIES!r})
print(len(steps), loaded)
"""
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    count, loaded = res.stdout.split(" ", 1)
    assert int(count) > 5 and loaded.strip() == "[]"
