"""`invoke keys`: an Ed25519 key pair for signing artifacts."""

from __future__ import annotations

from pathlib import Path

from pipelines.cli import console
from pipelines.edges.publishing import signing


def keys(out: Path, name: str) -> tuple[Path, Path]:
    private, public = signing.make_keys(out, name)
    console.line(f"private key: {private} (keep it secret; CI reads it from POSEPIPE_SIGNING_KEY)")
    console.line(f"public key:  {public}")
    return private, public
