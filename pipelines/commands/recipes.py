"""The recipes of a checkout, as every command loads them: by name, all at once, or one target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.core.errors import InvalidRecipes, RecipeError, UsageError
from pipelines.core.layout import Layout
from pipelines.core.recipe import Recipe, Target, load_recipe, recipe_paths


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


def all_valid(layout: Layout, names: list[str] | None = None) -> tuple[Recipe, ...]:
    """Every recipe, or InvalidRecipes naming every problem of every invalid one."""
    v = validate_all(layout, names)
    if v.errors:
        raise InvalidRecipes(list(v.errors))
    return v.recipes


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
