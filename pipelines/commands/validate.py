"""`invoke validate` and `invoke list`: recipes checked, and every recipe x target with its status."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.commands.recipes import Validation, validate_all
from pipelines.core.cells import Cell, Status, cells, default_runner_labels
from pipelines.core.errors import EngineUnavailable, InvalidRecipes
from pipelines.core.layout import Layout
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.containers.provisioning import blocker


def engine_problem() -> str | None:
    try:
        DockerDriver.from_env()
    except EngineUnavailable as e:
        return str(e)
    return None


def validate(layout: Layout, names: list[str] | None) -> Validation:
    v = validate_all(layout, names)
    console.validation(v.recipes, v.errors)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return v


def list_targets(layout: Layout, names: list[str] | None) -> list[tuple[Cell, Status, str | None]]:
    """Each cell with what keeps it from building here (None: nothing) and which toolchain that is."""
    v = validate_all(layout, names)
    engine = engine_problem()
    targets = [(r, t) for r in v.recipes for t in r.targets]
    rows = []
    for c, (r, t) in zip(cells(v.recipes, default_runner_labels()), targets):
        blocked = blocker(r, t, layout.docker)
        if blocked:
            rows.append((c, blocked[1], blocked[0]))
        else:
            rows.append((c, Status.NO_ENGINE if engine else Status.READY, None))
    console.cells(rows)
    console.note("status checked: the export, calibration (if the target calibrates) and target toolchains' (and those "
                 "of the targets it compiles from) "
                 "definitions, vendor provisioning, the CPython they need, and the Docker engine"
                 + (f" ({engine})" if engine else " (reachable)"))
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return rows
