"""The commands behind the Invoke tasks, as plain functions over a Layout."""

from __future__ import annotations

import shutil

from . import catalog, report
from .errors import InvalidRecipes, NotImplementedYet, UsageError
from .paths import Layout


def validate(layout: Layout, names: list[str] | None) -> catalog.Validation:
    v = catalog.validate_all(layout, names)
    report.validation(v)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return v


def list_targets(layout: Layout, names: list[str] | None) -> list[catalog.Row]:
    v = catalog.validate_all(layout, names)
    rows = catalog.rows(layout, v.recipes)
    report.rows(rows)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return rows


def build(layout: Layout, recipe: str, target: str | None) -> None:
    r = catalog.load_named(layout, recipe)
    catalog.select_targets(r, target)
    raise NotImplementedYet(
        f"recipe {r.name!r} is valid, but the step engine that builds it has not landed yet; nothing was built"
    )


def not_implemented(command: str) -> None:
    raise NotImplementedYet(f"`invoke {command}` has not landed yet; nothing was done")


def clean(layout: Layout, recipe: str | None, target: str | None) -> list[str]:
    """Remove build outputs under artifacts/ (the store is left to `invoke gc`)."""
    if target and not recipe:
        raise UsageError("--target needs --recipe")
    base = layout.artifacts
    victim = base / recipe / target if target else (base / recipe if recipe else base)
    if not victim.exists():
        report.out.print(f"nothing to clean at {victim}")
        return []
    shutil.rmtree(victim)
    report.out.print(f"removed {victim}")
    return [str(victim)]
