"""`invoke lock`: a toolchain's requirements.in resolved into its hash-locked requirements.lock."""

from __future__ import annotations

from pipelines.cli import console
from pipelines.core.errors import UsageError
from pipelines.core.layout import Layout
from pipelines.edges.containers import wheelhouse
from pipelines.edges.containers.images import load_toolchain
from pipelines.edges.store import Store


def lock(layout: Layout, toolchain: str) -> None:
    source = layout.docker / toolchain / "requirements.in"
    if not source.is_file():
        raise UsageError(f"{source} does not exist")
    out = wheelhouse.lock(source, Store(layout.store).wheels, load_toolchain(layout.docker, toolchain).python)
    console.line(f"wrote {out} ({len(wheelhouse.locked_hashes(out))} wheels)")
