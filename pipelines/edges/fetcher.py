"""One verified, resumable way for external files to enter the store.

Bytes are streamed to a partial file while sha256 is computed in the same
pass. Interrupted downloads resume with HTTP Range; transient failures
(connection errors, timeouts, 5xx, 429) are retried with exponential backoff
honouring Retry-After; mirrors are tried in order. Only bytes that match
their pin are renamed into ``blobs/sha256/<hex>``; a mismatch deletes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

from pipelines.edges import lockfile
from pipelines.edges.fs import get_or_make, publish_file
from pipelines.edges.blobstore import BlobStore, url_key
from pipelines.core.digests import CHUNK
from pipelines.core.errors import IntegrityError, NetworkError, OfflineMissing, UnlockedInput
from pipelines.core.recipe import RemoteFile

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class FetchOptions:
    locked: bool = False  # refuse inputs whose full hash is not known
    offline: bool = False  # only the store
    verify: bool = False  # re-hash store hits even when their stat fingerprint is unchanged
    attempts: int = 6  # per source
    backoff_base: float = 1.0  # seconds; attempt i waits base * 2**i (capped)
    backoff_cap: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0


@dataclass(frozen=True)
class FetchResult:
    url: str
    sha256: str
    size: int
    path: Path
    downloaded: bool


class Progress(Protocol):
    def start(self, label: str, total: int | None, done: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def finish(self) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int | None, done: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def finish(self) -> None:
        pass


class _HashingWriter:
    """Write chunks to ``fd`` while a second thread hashes them and flushes them to disk.

    hashlib releases the GIL, so hashing overlaps with receiving; periodic
    fdatasync in the same thread keeps the final fsync short. Together they
    bring a verified, durable download to curl's speed (bench/fetch_bench.py).
    """

    SYNC_EVERY = 256 << 20

    def __init__(self, fd: int, hasher: hashlib._Hash):
        self.fd = fd
        self.hasher = hasher
        self.written = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=64)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._hash, daemon=True)
        self._thread.start()

    def _hash(self) -> None:
        unsynced = 0
        try:
            while (chunk := self._queue.get()) is not None:
                self.hasher.update(chunk)
                unsynced += len(chunk)
                if unsynced >= self.SYNC_EVERY:
                    os.fdatasync(self.fd)
                    unsynced = 0
        except BaseException as e:  # reported by close()
            self._error = e
            while self._queue.get() is not None:  # drain so the writer never blocks
                pass

    def write(self, chunk: bytes) -> None:
        os.write(self.fd, chunk)
        self._queue.put(chunk)
        self.written += len(chunk)

    def close(self) -> str:
        """Wait for the hash, fsync the file; returns the hex digest."""
        self._queue.put(None)
        self._thread.join()
        os.fsync(self.fd)
        if self._error is not None:
            raise self._error
        return self.hasher.hexdigest()


class _Transient(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class _Permanent(Exception):
    pass


class Fetcher:
    def __init__(
        self,
        store: BlobStore,
        lock_path: Path,
        options: FetchOptions = FetchOptions(),
        progress: Progress | None = None,
        session: requests.Session | None = None,
    ):
        self.store = store
        self.lock_path = lock_path
        self.options = options
        self.progress = progress or _NoProgress()
        self.session = session or requests.Session()

    # -------------------------------------------------------------- public

    def fetch(self, rf: RemoteFile, label: str = "") -> FetchResult:
        label = label or rf.file_name
        hit = self._hit(rf)
        if hit:
            return hit
        if self.options.offline:
            raise OfflineMissing(
                f"{label}: not in the store and --offline was given\n"
                f"  expected blob: {self._expected_location(rf)}\n  it comes from: {rf.url}"
            )
        key = rf.sha256 if rf.fully_pinned else url_key(rf.url)
        return get_or_make(self.store.lock_path(key), label, lambda: self._hit(rf), lambda: self._download(rf, key, label))

    # -------------------------------------------------------------- pins

    def _full_pin(self, rf: RemoteFile) -> tuple[str | None, int | None]:
        """The full sha256 (and size) the bytes must have, from the recipe or the lock file."""
        if rf.fully_pinned:
            return rf.sha256, rf.size
        entry = lockfile.read(self.lock_path).get(rf.url)
        if entry is None:
            if self.options.locked:
                raise UnlockedInput(
                    f"{rf.url}\n  is pinned only as {rf.sha256!r} and has no full sha256 in "
                    f"{self.lock_path}; run `invoke fetch` without --locked once and commit the lock file"
                )
            return None, rf.size
        if rf.sha256 != "unpinned" and not entry.sha256.startswith(rf.sha256):
            raise IntegrityError(
                f"{rf.url}\n  recipe pins prefix {rf.sha256}, lock file records {entry.sha256}; fix one of them"
            )
        return entry.sha256, entry.size

    def _hit(self, rf: RemoteFile) -> FetchResult | None:
        full, size = self._full_pin(rf)
        if full is None:
            return None
        path = self.store.verified(full, size, full=self.options.verify)
        if path is None:
            return None
        return FetchResult(rf.url, full, path.stat().st_size, path, downloaded=False)

    def _expected_location(self, rf: RemoteFile) -> str:
        full, _ = self._full_pin(rf)
        if full:
            return str(self.store.blob_path(full))
        return f"{self.store.root / 'blobs' / 'sha256'}/<sha256 starting {rf.sha256}> (not yet in {self.lock_path.name})"

    # -------------------------------------------------------------- download

    def _download(self, rf: RemoteFile, key: str, label: str) -> FetchResult:
        full, size = self._full_pin(rf)
        partial = self.store.partial_path(key)
        partial.parent.mkdir(parents=True, exist_ok=True)
        failures: list[str] = []
        try:
            for source in (rf.url, *rf.mirrors):
                try:
                    got, got_size = self._from_source(source, partial, size, label)
                    break
                except _Permanent as e:
                    failures.append(f"{source}: {e}")
            else:
                raise NetworkError(f"{label}: could not be fetched from any source:\n  " + "\n  ".join(failures))
            self._check(rf, full, size, got, got_size)
        except IntegrityError:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()  # wrong bytes are never resumed from
            raise
        final = self.store.blob_path(got)
        final.parent.mkdir(parents=True, exist_ok=True)
        publish_file(partial, final)
        self.store.remember_fingerprint(got)
        if not rf.fully_pinned:
            lockfile.record(
                self.lock_path, lockfile.LockEntry(got, got_size, rf.url), self.store.root / "locks" / "lockfile.lock"
            )
        return FetchResult(rf.url, got, got_size, final, downloaded=True)

    @staticmethod
    def _check(rf: RemoteFile, full: str | None, size: int | None, got: str, got_size: int) -> None:
        wanted = full or (rf.sha256 if rf.sha256 != "unpinned" else None)
        if wanted and not got.startswith(wanted):
            raise IntegrityError(
                f"{rf.url}\n  expected sha256: {wanted}\n  got sha256:      {got}\n"
                "The downloaded file was deleted; nothing was cached."
            )
        if size is not None and got_size != size:
            raise IntegrityError(
                f"{rf.url}\n  expected size: {size} bytes\n  got size:      {got_size} bytes\n"
                "The downloaded file was deleted; nothing was cached."
            )

    def _from_source(self, source: str, partial: Path, size: int | None, label: str) -> tuple[str, int]:
        local = _local_path(source)
        if local is not None:
            return self._copy_local(local, partial, label)
        last = ""
        for attempt in range(self.options.attempts):
            try:
                return self._attempt(source, partial, size, label)
            except _Transient as e:
                last = str(e)
                if attempt + 1 < self.options.attempts:
                    delay = min(self.options.backoff_cap, self.options.backoff_base * 2**attempt)
                    if e.retry_after is not None:
                        delay = min(self.options.backoff_cap, max(delay, e.retry_after))
                    time.sleep(delay)
        raise _Permanent(f"gave up after {self.options.attempts} attempts; last error: {last}")

    def _copy_local(self, src: Path, partial: Path, label: str) -> tuple[str, int]:
        if not src.is_file():
            raise _Permanent(f"no such file {src}")
        self.progress.start(label, src.stat().st_size, 0)
        try:
            with open(src, "rb", buffering=0) as fin:
                return self._write_stream(partial, iter(lambda: fin.read(CHUNK), b""), hashlib.sha256(), False)
        finally:
            self.progress.finish()

    def _write_stream(self, partial: Path, chunks: Iterator[bytes], hasher, append: bool) -> tuple[str, int]:
        """Append or write ``chunks`` to ``partial``, hashing them; returns (digest, bytes written now)."""
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
        writer = _HashingWriter(fd, hasher)
        try:
            for chunk in chunks:
                writer.write(chunk)
                self.progress.advance(len(chunk))
        finally:
            try:
                digest = writer.close()  # also on failure: what was received stays resumable
            finally:
                os.close(fd)
        return digest, writer.written

    def _attempt(self, url: str, partial: Path, size: int | None, label: str) -> tuple[str, int]:
        """One HTTP request, resuming from what ``partial`` already holds."""
        offset = partial.stat().st_size if partial.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = (self.options.connect_timeout, self.options.read_timeout)
        try:
            resp = self.session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise _Transient(f"{type(e).__name__}: {e}") from None
        except requests.RequestException as e:
            raise _Permanent(f"{type(e).__name__}: {e}") from None
        with resp:
            if resp.status_code == 416 and offset:
                partial.unlink()  # our partial is longer than the file: start over
                raise _Transient("server refused the resume range; restarting", 0)
            if resp.status_code in TRANSIENT_STATUS:
                raise _Transient(f"HTTP {resp.status_code}", _retry_after(resp))
            if resp.status_code >= 400:
                raise _Permanent(f"HTTP {resp.status_code} {resp.reason}")
            if offset and not _resumes_at(resp, offset):
                offset = 0  # the server ignored Range (200) or answered another range: restart
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if size is not None and total is not None and total != size:
                raise IntegrityError(
                    f"{url}\n  expected size: {size} bytes\n  server announces: {total} bytes\nNothing was cached."
                )
            h = hashlib.sha256()
            if offset:
                with open(partial, "rb") as f:
                    while chunk := f.read(CHUNK):
                        h.update(chunk)
            self.progress.start(label, total, offset)
            try:
                # read1: whatever has arrived, so a stalled connection loses nothing already received
                digest, received = self._write_stream(partial, iter(lambda: resp.raw.read1(CHUNK), b""), h, offset > 0)
            except (requests.RequestException, Urllib3Error, OSError) as e:
                raise _Transient(f"connection lost after {partial.stat().st_size} bytes: {type(e).__name__}") from None
            finally:
                self.progress.finish()
            written = offset + received
            if total is not None and written != total:
                raise _Transient(f"short body: {written} of {total} bytes")
            return digest, written


def _resumes_at(resp: requests.Response, offset: int) -> bool:
    if resp.status_code != 206:
        return False
    content_range = resp.headers.get("Content-Range", "")
    try:
        start = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return False
    return start == offset


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _local_path(source: str) -> Path | None:
    """A file:// URL or a plain path; None for network URLs."""
    parts = urlsplit(source)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme in ("", None) or len(parts.scheme) == 1:  # plain path (or a drive letter)
        return Path(source)
    return None
