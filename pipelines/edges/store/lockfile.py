"""recipes/checkpoints.lock: the full sha256 of inputs a recipe pins only partly.

OpenMMLab file names carry an 8-hex sha256 prefix and some public data sets
publish no hash at all. The first fetch records the full hash here; later
fetches (and ``--locked`` CI runs) hold the bytes to it. One line per URL,
sorted, so diffs stay small and merges are easy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.edges.fs import file_lock, write_bytes_atomic
from pipelines.core.digests import SHA256_HEX
from pipelines.core.errors import IntegrityError

HEADER = (
    "# posepipe lock file: full sha256 of inputs pinned by an 8-hex prefix or 'unpinned' in a recipe.\n"
    "# Written by `invoke fetch` / `invoke build`; `--locked` refuses inputs missing here.\n"
    "# <sha256> <size> <url>\n"
)


@dataclass(frozen=True)
class LockEntry:
    sha256: str
    size: int
    url: str


def read(path: Path) -> dict[str, LockEntry]:
    entries: dict[str, LockEntry] = {}
    if not path.exists():
        return entries
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or not SHA256_HEX.match(parts[0]) or not parts[1].isdigit():
            raise IntegrityError(f"{path}:{n}: malformed lock line {line!r}; expected '<sha256> <size> <url>'")
        entries[parts[2]] = LockEntry(parts[0], int(parts[1]), parts[2])
    return entries


def render(entries: dict[str, LockEntry]) -> str:
    body = "".join(f"{e.sha256} {e.size} {e.url}\n" for e in sorted(entries.values(), key=lambda e: e.url))
    return HEADER + body


def record(path: Path, entry: LockEntry, guard: Path) -> None:
    """Add or confirm one entry; a different hash for a recorded URL is an integrity error."""
    with file_lock(guard):
        entries = read(path)
        old = entries.get(entry.url)
        if old == entry:
            return
        if old is not None:
            raise IntegrityError(
                f"{entry.url}\n  recorded in {path.name}: {old.sha256} ({old.size} bytes)\n"
                f"  now served:        {entry.sha256} ({entry.size} bytes)\n"
                "The file changed upstream; nothing was cached. Check the source before editing the lock file."
            )
        entries[entry.url] = entry
        write_bytes_atomic(path, render(entries).encode("utf-8"))
