"""What a published layout says about its artifacts (index.json, or a registry's annotations),
checked before anything in it is used: a malformed or hostile index is refused with where it is
wrong, never followed (a tarball path that leaves the layout, a size that is not a number)."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from pipelines.core.errors import IntegrityError
from pipelines.core.layout import SCHEMAS


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / "index.schema.json").read_text()))


def parse_index(data: bytes, where: str) -> dict[str, Any]:
    """index.json's content, or IntegrityError naming the first place it is wrong."""
    try:
        index = json.loads(data)
    except ValueError as e:
        raise IntegrityError(f"{where} is not JSON ({e}); this is not a posepipe index") from None
    _check(index, where)
    return index


def check_versions(recipe: str, target: str, versions: dict[str, Any], where: str) -> None:
    """The versions of one recipe/target, as a registry's annotations give them."""
    _check({"schema_version": 1, "recipes": {recipe: {target: versions}}}, where)


def _check(index: Any, where: str) -> None:
    errors = sorted(_validator().iter_errors(index), key=lambda e: list(e.absolute_path))
    if errors:
        at = "/".join(map(str, errors[0].absolute_path)) or "(top)"
        raise IntegrityError(f"{where} is malformed at {at}: {errors[0].message}; refusing to use it")
