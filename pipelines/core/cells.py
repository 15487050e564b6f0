"""The recipe x target cells that `invoke list` shows and `invoke matrix` hands to GitHub Actions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum

from pipelines.core import toolchains
from pipelines.core.recipe import Recipe


class Status(str, Enum):
    """Whether a cell can build on this machine."""

    READY = "ready"
    NOT_PROVISIONED = "not provisioned"
    NOT_IMPLEMENTED = "not implemented"
    NEEDS_PYTHON = "needs a CPython"  # one posepipe copies into the image (toolchain.yaml python:), not found here
    NO_ENGINE = "no Docker engine"  # every toolchain is there, but no engine answers


@dataclass(frozen=True)
class Cell:
    recipe: str
    target: str
    toolchain: str
    kind: str
    runner: str
    output: str
    python: str = ""  # CPythons the runner must offer, one per line, for posepipe to copy into images ("" = none)


def cells(recipes: Iterable[Recipe], runner_labels: Mapping[str, str]) -> list[Cell]:
    out = []
    for r in recipes:
        for t in r.targets:
            kind = toolchains.get(t.toolchain).kind
            out.append(Cell(r.name, t.id, t.toolchain, kind, runner_labels[t.toolchain], t.output))
    return out


def default_runner_labels() -> dict[str, str]:
    return {name: t.runner_label for name, t in toolchains.registry().items()}
