"""`invoke gc`: bound the store by age and size, least recently used first.

What it counts and may remove: step entries, blobs, partial downloads, wheels (each
``wheels/<sha256>/`` folder), step logs, and failed steps kept by --keep-failed. What a running build
holds is never deleted: step entries and blobs a step mounts (their shared "use" locks) and a partial
download whose fetch is under way (its fetch lock); everything is removed whole, never partly.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.edges.fs import try_file_lock
from pipelines.edges.store.blobs import BlobStore
from pipelines.core.errors import UsageError
from pipelines.edges.store.steps import StepCache
from pipelines.edges.store import Store

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
AGES = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)I?B?\s*", text.upper())
    if not m:
        raise UsageError(f"size {text!r} is not like 500M or 20G")
    return int(float(m[1]) * UNITS[m[2]])


def parse_age(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not m:
        raise UsageError(f"age {text!r} is not like 12h or 30d")
    return float(m[1]) * AGES[m[2]]


@dataclass(frozen=True)
class Item:
    kind: str  # "step", "blob", "partial", "wheel", "log" or "failed"
    name: str
    size: int
    last_used: float


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def inventory(store_root: Path) -> list[Item]:
    steps, blobs = StepCache(store_root), BlobStore(store_root)
    items = [Item("step", k, _tree_size(steps.entry_path(k)), steps.entry_path(k).stat().st_mtime) for k in steps.keys()]
    items += [Item("blob", s, blobs.blob_path(s).stat().st_size, blobs.last_used(s)) for s in blobs.shas()]
    items += [Item("partial", p.stem, p.stat().st_size, p.stat().st_mtime) for p in blobs.partials()]
    for kind, paths in _loose(store_root).items():
        items += [Item(kind, str(p), _tree_size(p) if p.is_dir() else p.stat().st_size, p.stat().st_mtime) for p in paths]
    return sorted(items, key=lambda i: i.last_used)


def _loose(store_root: Path) -> dict[str, list[Path]]:
    """The store's other areas, each item a path removed whole: wheels, logs, kept failed steps."""
    store = Store(store_root)
    wheels, logs, failed = store.wheels, store.logs, store.failed
    return {
        "wheel": sorted(p for p in wheels.iterdir() if p.is_dir()) if wheels.is_dir() else [],
        "log": sorted(p for p in logs.rglob("*.log") if p.is_file()) if logs.is_dir() else [],
        "failed": sorted(p for p in failed.iterdir() if p.is_dir()) if failed.is_dir() else [],
    }


def choose(items: list[Item], max_size: int | None, max_age: float | None, now: float) -> list[Item]:
    """Pure: which items to drop, oldest use first, to meet both bounds."""
    drop = [i for i in items if max_age is not None and now - i.last_used > max_age]
    total = sum(i.size for i in items) - sum(i.size for i in drop)
    for i in items:
        if max_size is None or total <= max_size:
            break
        if i not in drop:
            drop.append(i)
            total -= i.size
    return drop


def collect(store_root: Path, max_size: str | None, max_age: str | None) -> tuple[list[Item], list[Item]]:
    """Remove what ``choose`` picks, except entries in use; returns (removed, kept because in use)."""
    if max_size is None and max_age is None:
        raise UsageError("give --max-size and/or --max-age")
    size = parse_size(max_size) if max_size else None
    age = parse_age(max_age) if max_age else None
    steps, blobs = StepCache(store_root), BlobStore(store_root)
    removed, busy = [], []
    for item in choose(inventory(store_root), size, age, time.time()):
        if item.kind in ("wheel", "failed"):
            path = Path(item.name)
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(item)
            continue
        with contextlib.ExitStack() as held:
            free = all(held.enter_context(try_file_lock(lock)) for lock in _locks(item, steps, blobs))
            if free:
                _remove(item, steps, blobs)
            (removed if free else busy).append(item)
    return removed, busy


def _locks(item: Item, steps: StepCache, blobs: BlobStore) -> list[Path]:
    """The locks a running build holds on what ``item`` names: all must be free to remove it."""
    if item.kind == "blob":
        return [blobs.use_lock_path(item.name)]
    if item.kind == "partial":
        return [blobs.lock_path(item.name)]
    if item.kind == "log":
        return [steps.log_lock_path(Path(item.name))]
    return [steps.store.step_use_lock(item.name), steps.lock_path(item.name)]


def _remove(item: Item, steps: StepCache, blobs: BlobStore) -> None:
    if item.kind == "log":
        Path(item.name).unlink(missing_ok=True)
    elif item.kind == "blob":
        blobs.discard(item.name)
    elif item.kind == "partial":
        blobs.partial_path(item.name).unlink(missing_ok=True)
    else:
        steps.remove(item.name)
