"""Steps and their cache keys: what a recipe becomes, and the one rule that names a result.

Pure: no Docker, no files. A step's key is a digest of what determines its output,
so equal keys mean interchangeable results.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.core.digests import sha256_json
from pipelines.core.errors import UsageError


@dataclass(frozen=True)
class Step:
    id: str
    toolchain: str
    params: Mapping[str, Any]
    label: str  # "recipe/target/step" for people
    deps: tuple[tuple[str, str], ...] = ()  # (input name, step id): outputs mounted at /in/<name>
    blobs: tuple[tuple[str, str], ...] = ()  # (input name, sha256): store blob mounted at /in/<name>
    timeout: float = 3600.0
    script: str = "command"  # which in-image command of its toolchain runs it: "command" (builds), "run" (runs an
    # artifact on photos) or "score" (scores a runner's predictions)


def step_key(toolchain: str, command: tuple[str, ...], params: Mapping[str, Any], inputs: Mapping[str, str], epoch: int) -> str:
    """The cache key of one step. ``toolchain`` is the digest of the toolchain image's inputs, not
    Docker's image ID (which changes on every rebuild): the same key on every machine."""
    return sha256_json(
        {
            "schema": "posepipe-step/v2",
            "toolchain": toolchain,
            "command": list(command),
            "params": params,
            "inputs": dict(inputs),
            "env": {"SOURCE_DATE_EPOCH": str(epoch)},
        }
    )


def sorter(steps: list[Step]) -> graphlib.TopologicalSorter:
    """A prepared TopologicalSorter over ``steps``; refuses duplicate ids, unknown deps and cycles."""
    by_id = {s.id: s for s in steps}
    if len(by_id) != len(steps):
        raise UsageError("two steps share an id")
    graph: graphlib.TopologicalSorter = graphlib.TopologicalSorter()
    for s in steps:
        for _, dep in s.deps:
            if dep not in by_id:
                raise UsageError(f"step {s.id} depends on unknown step {dep}")
        graph.add(s.id, *(dep for _, dep in s.deps))
    try:
        graph.prepare()
    except graphlib.CycleError as e:
        raise UsageError(f"steps form a cycle: {' -> '.join(e.args[1])}") from None
    return graph


def upstream(steps: list[Step], final: str) -> list[Step]:
    """``final`` and every step it depends on, upstream first."""
    by_id = {s.id: s for s in steps}
    wanted: set[str] = set()
    todo = [final]
    while todo:
        sid = todo.pop()
        if sid not in wanted:
            wanted.add(sid)
            todo += [dep for _, dep in by_id[sid].deps]
    graph, order = sorter([by_id[s] for s in sorted(wanted)]), []
    while graph.is_active():
        ready = sorted(graph.get_ready())
        order += ready
        graph.done(*ready)
    return [by_id[sid] for sid in order]
