"""Strict YAML reading for recipes: data plus the line of every field.

Recipes are plain data, so anchors/aliases (the 'billion laughs' vector),
duplicate keys (silently overwritten by PyYAML) and non-mapping documents are
refused with the line they occur on. The composed node tree is kept so that
schema errors can name the line of the offending field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from pipelines.core.errors import RecipeError, RecipeProblem

MAX_RECIPE_BYTES = 256 * 1024


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects aliases and duplicate mapping keys."""

    def compose_node(self, parent, index):  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise yaml.MarkedYAMLError(
                None, None, "YAML aliases (*name) are not allowed in recipes", event.start_mark
            )
        if getattr(event, "anchor", None):
            raise yaml.MarkedYAMLError(
                None, None, "YAML anchors (&name) are not allowed in recipes", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise yaml.MarkedYAMLError(
                    None, None, f"mapping keys must be strings, not {key!r}", key_node.start_mark
                )
            if key in seen:
                raise yaml.MarkedYAMLError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@dataclass(frozen=True)
class YamlDocument:
    data: dict[str, Any]
    root: Node

    def line_of(self, path: tuple[str | int, ...]) -> int | None:
        """1-based line of the deepest node along ``path`` that exists."""
        node = self.root
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            node = child
        return node.start_mark.line + 1


def _child(node: Node, part: str | int) -> Node | None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == part:
                return value_node
    elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return node.value[part]
    return None


def read_yaml_mapping(path: Path) -> YamlDocument:
    """Read one YAML mapping document, or raise RecipeError saying what is wrong."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RecipeError(shown, [RecipeProblem("", f"cannot read file: {e.strerror}")]) from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(
            shown, [RecipeProblem("", f"file is {len(raw)} bytes; recipes are limited to {MAX_RECIPE_BYTES}")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecipeError(shown, [RecipeProblem("", f"not UTF-8 text (byte {e.start})")]) from None
    if not text.strip():
        raise RecipeError(shown, [RecipeProblem("", "file is empty")])
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise RecipeError(shown, [RecipeProblem("", "file holds no YAML document")])
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(x for x in (e.context, e.problem) if x) or "YAML syntax error"
        raise RecipeError(shown, [RecipeProblem("", f"YAML: {reason}", line)]) from None
    except yaml.YAMLError as e:
        raise RecipeError(shown, [RecipeProblem("", f"YAML: {e}")]) from None
    except RecursionError:
        raise RecipeError(shown, [RecipeProblem("", "YAML nesting is too deep")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise RecipeError(
            shown, [RecipeProblem("", f"top level must be a mapping of fields, not a {kind}", 1)]
        )
    return YamlDocument(data=data, root=root)
