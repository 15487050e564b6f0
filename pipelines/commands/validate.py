"""`invoke validate` and `invoke list`: recipes checked, and every recipe x target with its status."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.commands.recipes import Validation, validate_all
from pipelines.core.cells import Cell, Status, cells, default_runner_labels
from pipelines.core.errors import InvalidRecipes
from pipelines.core.layout import Layout
from pipelines.edges.provisioning import status


def validate(layout: Layout, names: list[str] | None) -> Validation:
    v = validate_all(layout, names)
    console.validation(v.recipes, v.errors)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return v


def list_targets(layout: Layout, names: list[str] | None) -> list[tuple[Cell, Status]]:
    v = validate_all(layout, names)
    rows = [(c, status(c.toolchain, layout.docker)) for c in cells(v.recipes, default_runner_labels())]
    console.cells(rows)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return rows
