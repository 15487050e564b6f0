"""`invoke matrix`: the recipe x target build matrix for GitHub Actions.

One cell per recipe x target, with the runner label its toolchain needs
(``ubuntu-latest`` for open toolchains, a self-hosted label for vendor ones;
``.github/runners.yaml`` overrides them). ``--changed-since REF`` keeps only
the cells whose recipe, toolchains or posepipe code changed since REF.
GitHub refuses more than 256 jobs per matrix and job outputs over 1 MB, so a
matrix beyond either is an error here rather than a confusing failure there.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import yaml

from pipelines.cli import console
from pipelines.commands.recipes import all_valid
from pipelines.core.cells import Cell, cells, default_runner_labels
from pipelines.core.errors import UsageError
from pipelines.core.layout import Layout
from pipelines.core.plan import CALIBRATION_TOOLCHAIN, EXPORT_TOOLCHAIN, needs_calibration, with_combined
from pipelines.core.recipe import Recipe, Target
from pipelines.edges.containers.provisioning import declared_python

MAX_JOBS = 256
MAX_OUTPUT_BYTES = 1_000_000
# Files whose change can alter every artifact.
GLOBAL_PATHS = ("pipelines/", "tasks.py", "pyproject.toml", "recipes/checkpoints.lock", "docker/base/",
                "docker/common/")


def runner_labels(layout: Layout) -> dict[str, str]:
    labels = default_runner_labels()
    override = layout.checkout / ".github" / "runners.yaml"
    if override.is_file():
        data = yaml.safe_load(override.read_text()) or {}
        unknown = sorted(set(data) - set(labels))
        if unknown:
            raise UsageError(f"{override}: unknown toolchain(s) {', '.join(unknown)}")
        labels.update({k: str(v) for k, v in data.items()})
    return labels


def touches(recipe: Recipe, target: Target, changed: list[str]) -> bool:
    """Pure: does a change to these paths affect this cell (its target and the targets it combines)?"""
    mine = (f"recipes/{recipe.name}.yaml", f"docker/{EXPORT_TOOLCHAIN}/", *(f"docker/{t.toolchain}/" for t in with_combined(recipe, (target,))))
    if needs_calibration(recipe, (target,)):
        mine += (f"docker/{CALIBRATION_TOOLCHAIN}/",)
    return any(path.startswith(prefix) for path in changed for prefix in mine + GLOBAL_PATHS)


def changed_paths(root: Path, ref: str) -> list[str]:
    res = subprocess.run(["git", "diff", "--name-only", f"{ref}...HEAD"], cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        raise UsageError(f"cannot diff against {ref!r}: {res.stderr.strip()}")
    return res.stdout.split()


def matrix_cells(layout: Layout, changed_since: str | None = None) -> list[Cell]:
    recipes = {r.name: r for r in all_valid(layout)}
    changed = changed_paths(layout.checkout, changed_since) if changed_since else None
    return [replace(c, python=pythons(layout, recipes[c.recipe], recipes[c.recipe].target(c.target)))
            for c in cells(recipes.values(), runner_labels(layout))
            if changed is None or touches(recipes[c.recipe], recipes[c.recipe].target(c.target), changed)]


def pythons(layout: Layout, recipe: Recipe, target: Target) -> str:
    """The CPythons a cell's runner must offer, one per line: those of its toolchain and of the toolchains of the
    targets it combines (built in the same job), for posepipe to copy into their images."""
    return "\n".join(sorted({declared_python(layout.docker, t.toolchain) for t in with_combined(recipe, (target,))} - {""}))


def render(cell_list: list[Cell]) -> str:
    """The JSON GitHub's ``fromJSON`` takes, refusing what GitHub would refuse."""
    if len(cell_list) > MAX_JOBS:
        raise UsageError(f"the matrix has {len(cell_list)} cells; GitHub runs at most {MAX_JOBS} jobs per matrix")
    text = json.dumps({"include": [asdict(c) for c in cell_list]}, separators=(",", ":"))
    if len(text.encode()) > MAX_OUTPUT_BYTES:
        raise UsageError(f"the matrix is {len(text.encode())} bytes; GitHub job outputs hold at most 1 MB")
    return text


def matrix(layout: Layout, changed_since: str | None) -> str:
    text = render(matrix_cells(layout, changed_since))
    console.line(text)
    return text
