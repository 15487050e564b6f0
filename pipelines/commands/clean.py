"""`invoke clean`: remove build outputs under artifacts/ (the store is bounded by `invoke gc`)."""

from __future__ import annotations

import shutil

from pipelines.cli import console
from pipelines.core.errors import UsageError
from pipelines.core.layout import Layout


def clean(layout: Layout, recipe: str | None, target: str | None) -> list[str]:
    if target and not recipe:
        raise UsageError("--target needs --recipe")
    base = layout.artifacts
    victim = base / recipe / target if target else (base / recipe if recipe else base)
    if not victim.exists():
        console.line(f"nothing to clean at {victim}")
        return []
    shutil.rmtree(victim)
    console.line(f"removed {victim}")
    return [str(victim)]
