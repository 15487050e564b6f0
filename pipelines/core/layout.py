"""Where posepipe reads and writes: the repo's folders and the user's store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Layout:
    root: Path
    store: Path

    @property
    def recipes(self) -> Path:
        return self.root / "recipes"

    @property
    def lock_file(self) -> Path:
        return self.recipes / "checkpoints.lock"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def docker(self) -> Path:
        return self.root / "docker"


def default_store() -> Path:
    """POSEPIPE_STORE, else $XDG_CACHE_HOME/posepipe, else ~/.cache/posepipe."""
    if env := os.environ.get("POSEPIPE_STORE"):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "posepipe"


def layout(root: Path | None = None, store: Path | None = None) -> Layout:
    """POSEPIPE_ROOT points the tasks at another checkout (recipes/, docker/, artifacts/)."""
    env_root = os.environ.get("POSEPIPE_ROOT")
    return Layout(root=root or (Path(env_root) if env_root else REPO_ROOT), store=store or default_store())
