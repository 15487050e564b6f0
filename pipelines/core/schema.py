"""The recipe JSON Schema: the common part from pipelines/core/schemas/recipe.schema.json, each
toolchain's target fields from its module.

The file in the repo is what editors read (`# yaml-language-server: $schema=...`); its
per-toolchain parts are regenerated from the toolchain modules with
``python -m pipelines.core.schema`` and a test keeps file and modules equal. Validation always
uses the composition, so a new toolchain module is enforced even before the file is regenerated.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from typing import Any

from pipelines.core.layout import SCHEMAS
from pipelines.core.toolchains import registry, target_toolchains

RECIPE_SCHEMA = SCHEMAS / "recipe.schema.json"
TARGET_DEF = "{}_target"


def compose(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with its target toolchain enum, if/then branches and ``*_target`` defs taken from the modules."""
    schema = copy.deepcopy(base)
    defs = schema["$defs"]
    for name in [d for d in defs if d.endswith("_target")]:
        del defs[name]
    names = target_toolchains()
    target = defs["target"]
    target["properties"]["toolchain"] = {"enum": names}
    target["allOf"] = [
        {"if": {"properties": {"toolchain": {"const": n}}, "required": ["toolchain"]},
         "then": {"$ref": f"#/$defs/{TARGET_DEF.format(n)}"}}
        for n in names
    ]
    for n in names:
        defs[TARGET_DEF.format(n)] = copy.deepcopy(dict(registry()[n].target_fields))
    return schema


@functools.cache
def recipe_schema() -> dict[str, Any]:
    return compose(json.loads(RECIPE_SCHEMA.read_text(encoding="utf-8")))


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # regenerate the editors' copy after adding or changing a toolchain module
    RECIPE_SCHEMA.write_text(render(recipe_schema()), encoding="utf-8")
    sys.stdout.write(f"wrote {RECIPE_SCHEMA}\n")
