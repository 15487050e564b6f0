"""The content-addressed blob store: ``blobs/sha256/<hex>`` and nothing half-written.

Only complete, verified files ever get a name under ``blobs/sha256``.
Downloads in progress live under ``partial/`` (resumable, never read as
blobs). A hit is re-verified; a stat fingerprint recorded at the last full
hash lets an unchanged file skip re-hashing unless a full check is asked for.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.edges.fs import file_lock, write_bytes_atomic
from pipelines.edges.store import Store
from pipelines.core.digests import sha256_bytes, sha256_file

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file marks the posepipe store as a cache (https://bford.info/cachedir/).\n"
)


@dataclass(frozen=True)
class BlobStore:
    root: Path

    @property
    def areas(self) -> Store:
        """The store's layout (this blob store is its blobs/, partial/ and their locks)."""
        return Store(self.root)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            write_bytes_atomic(tag, CACHEDIR_TAG.encode())

    # -- locations

    def blob_path(self, sha256: str) -> Path:
        return self.areas.blobs / sha256

    def partial_path(self, key: str) -> Path:
        """Where a download for ``key`` accumulates; same filesystem as the blobs."""
        return self.areas.partial / f"{key}.part"

    def lock_path(self, key: str) -> Path:
        """Held while ``key`` is fetched (so also while its partial download grows)."""
        return self.areas.fetch_lock(key)

    def use_lock_path(self, sha256: str) -> Path:
        return self.areas.blob_use_lock(sha256)

    def in_use(self, sha256: str):
        """A shared hold on a blob while a step mounts it; `gc` leaves held blobs alone."""
        return file_lock(self.use_lock_path(sha256), shared=True)

    def partials(self) -> list[Path]:
        d = self.areas.partial
        return sorted(d.glob("*.part")) if d.is_dir() else []

    def _fingerprint_path(self, sha256: str) -> Path:
        return self.areas.verified / sha256

    def add(self, source: Path) -> str:
        """A local file (a photo to predict on) copied in under its sha256; its digest."""
        data = source.read_bytes()  # hashed and stored from one read: a file changing meanwhile cannot mislabel it
        sha256 = sha256_bytes(data)
        if self.verified(sha256, len(data)) is None:
            write_bytes_atomic(self.blob_path(sha256), data)
        return sha256

    # -- verification

    def verified(self, sha256: str, size: int | None, full: bool = False) -> Path | None:
        """The blob's path if it is present and intact; a corrupt blob is removed and is a miss."""
        path = self.blob_path(sha256)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if size is not None and st.st_size != size:
            self.discard(sha256)
            return None
        if not full and self._fingerprint_matches(sha256, st):
            with contextlib.suppress(OSError):
                os.utime(self._fingerprint_path(sha256))  # last use, for gc
            return path
        got, _ = sha256_file(path)
        if got != sha256:
            self.discard(sha256)
            return None
        self.remember_fingerprint(sha256)
        return path

    def _fingerprint_matches(self, sha256: str, st: os.stat_result) -> bool:
        try:
            recorded = json.loads(self._fingerprint_path(sha256).read_text())
        except (FileNotFoundError, ValueError):
            return False
        return recorded == _fingerprint(st)

    def remember_fingerprint(self, sha256: str) -> None:
        st = self.blob_path(sha256).stat()
        write_bytes_atomic(self._fingerprint_path(sha256), json.dumps(_fingerprint(st)).encode())

    def last_used(self, sha256: str) -> float:
        """When a build last used the blob (its fingerprint is refreshed on every hit)."""
        for p in (self._fingerprint_path(sha256), self.blob_path(sha256)):
            with contextlib.suppress(FileNotFoundError):
                return p.stat().st_mtime
        return 0.0

    def shas(self) -> list[str]:
        d = self.areas.blobs
        return sorted(p.name for p in d.iterdir()) if d.is_dir() else []

    def discard(self, sha256: str) -> None:
        for p in (self.blob_path(sha256), self._fingerprint_path(sha256)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _fingerprint(st: os.stat_result) -> dict[str, int]:
    return {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


def url_key(url: str) -> str:
    """A stable name for things known only by URL (partial downloads, lock keys)."""
    return "url-" + sha256_bytes(url.encode("utf-8"))[:32]
