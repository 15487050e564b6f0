"""All recipes of a checkout, and the recipe x target rows every listing shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import RecipeError, UsageError
from .paths import Layout
from .recipe import Recipe, Target, load_recipe, recipe_paths
from .toolchains import TOOLCHAINS, Status, status


@dataclass(frozen=True)
class Validation:
    recipes: tuple[Recipe, ...]
    errors: tuple[RecipeError, ...]


def validate_all(layout: Layout, names: list[str] | None = None) -> Validation:
    """Load every recipe (or the named ones), collecting errors instead of stopping at the first."""
    paths = [_recipe_path(layout, n) for n in names] if names else recipe_paths(layout.recipes)
    recipes, errors = [], []
    for path in paths:
        try:
            recipes.append(load_recipe(path))
        except RecipeError as e:
            errors.append(e)
    return Validation(tuple(recipes), tuple(errors))


def load_named(layout: Layout, name: str) -> Recipe:
    return load_recipe(_recipe_path(layout, name))


def _recipe_path(layout: Layout, name: str) -> Path:
    path = layout.recipes / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in recipe_paths(layout.recipes)) or "none"
        raise UsageError(f"no recipe named {name!r} in {layout.recipes} (known: {known})")
    return path


def select_targets(recipe: Recipe, target_id: str | None) -> tuple[Target, ...]:
    if target_id is None:
        return recipe.targets
    try:
        return (recipe.target(target_id),)
    except KeyError:
        known = ", ".join(t.id for t in recipe.targets)
        raise UsageError(f"recipe {recipe.name!r} has no target {target_id!r} (known: {known})") from None


@dataclass(frozen=True)
class Row:
    recipe: str
    target: str
    toolchain: str
    kind: str
    output: str
    status: Status


def rows(layout: Layout, recipes: tuple[Recipe, ...]) -> list[Row]:
    out = []
    for r in recipes:
        for t in r.targets:
            tc = TOOLCHAINS[t.toolchain]
            out.append(Row(r.name, t.id, tc.name, tc.kind, t.output, status(tc.name, layout.root)))
    return out
