"""Where posepipe reads and writes: a checkout's folders, the package's own data, the user's store.

An installed posepipe (a wheel, no checkout) still downloads and verifies artifacts: what that
needs (the schemas) is package data under ``SCHEMAS``. Recipes, docker/ and artifacts/ belong to
a checkout; the tasks that need them find one (POSEPIPE_ROOT, the source tree this package runs
from, or the current folder or one above it) and say so plainly when there is none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.errors import UsageError

SCHEMAS = Path(__file__).resolve().parent / "schemas"  # package data: shipped in the wheel
REPO_ROOT = Path(__file__).resolve().parents[2]  # the source tree, when the package runs from one


def is_checkout(path: Path) -> bool:
    return (path / "recipes").is_dir() and (path / "docker").is_dir()


@dataclass(frozen=True)
class Layout:
    root: Path | None  # the checkout; None when posepipe runs from an installed wheel outside one
    store: Path

    @property
    def checkout(self) -> Path:
        if self.root is None:
            raise UsageError(
                "this needs a posepipe checkout (its recipes/ and docker/ folders), and there is none here: run it "
                "inside a clone of the posepipe repository or set POSEPIPE_ROOT to one. An installed posepipe "
                "without a checkout can `download` published artifacts, `keys` and `--help`."
            )
        return self.root

    @property
    def recipes(self) -> Path:
        return self.checkout / "recipes"

    @property
    def lock_file(self) -> Path:
        return self.recipes / "checkpoints.lock"

    @property
    def artifacts(self) -> Path:
        return self.checkout / "artifacts"

    @property
    def docker(self) -> Path:
        return self.checkout / "docker"


def default_store() -> Path:
    """POSEPIPE_STORE, else $XDG_CACHE_HOME/posepipe, else ~/.cache/posepipe."""
    if env := os.environ.get("POSEPIPE_STORE"):
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "posepipe"


def find_checkout() -> Path | None:
    """POSEPIPE_ROOT, else the source tree this package runs from, else the current folder or a parent."""
    if env_root := os.environ.get("POSEPIPE_ROOT"):
        return Path(env_root)
    if is_checkout(REPO_ROOT):
        return REPO_ROOT
    here = Path.cwd().resolve()
    return next((p for p in (here, *here.parents) if is_checkout(p)), None)


def layout(root: Path | None = None, store: Path | None = None) -> Layout:
    return Layout(root=root or find_checkout(), store=store or default_store())
