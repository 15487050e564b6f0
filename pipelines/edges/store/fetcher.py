"""One verified, resumable way for external files to enter the store.

Bytes are streamed to a partial file while sha256 is computed in the same
pass. Interrupted downloads resume with HTTP Range; transient failures
(connection errors, timeouts, 5xx, 429) are retried with exponential backoff
honouring Retry-After; mirrors are tried in order. Only bytes that match
their pin are renamed into ``blobs/sha256/<hex>``; a mismatch deletes them.

A broken or hostile server costs a clear message, never a full disk or a hung
build: no byte past the known size (or, when none is known, past a per-kind
cap) is written; an attempt slower than a minimum rate over a window is
abandoned; a name that does not resolve or a refused connection is retried
only briefly; an HTML page in place of a binary file is named as such; and a
download of known size is refused up front when the store's disk cannot hold it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError

from pipelines.edges.store import lockfile
from pipelines.edges.fs import get_or_make, publish_file
from pipelines.edges.store.blobs import BlobStore, url_key
from pipelines.core.digests import CHUNK
from pipelines.core.errors import IntegrityError, NetworkError, NoSpace, OfflineMissing, UnlockedInput
from pipelines.core.recipe import RemoteFile

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Largest download of unknown size per kind of input: above any real one, far below a full disk.
DEFAULT_CAPS = {"checkpoint": 4 << 30, "calibration": 64 << 30, "dataset": 64 << 30, "vendor": 256 << 30, "artifact": 64 << 30}
DISK_HEADROOM = 256 << 20  # left free after a download of known size


@dataclass(frozen=True)
class FetchOptions:
    locked: bool = False  # refuse inputs whose full hash is not known
    offline: bool = False  # only the store
    verify: bool = False  # re-hash store hits even when their stat fingerprint is unchanged
    attempts: int = 6  # per source
    backoff_base: float = 1.0  # seconds; attempt i waits base * 2**i (capped)
    backoff_cap: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # at most rate_window is used: silence is slowness too
    max_bytes: int | None = None  # cap on a download of unknown size (default: DEFAULT_CAPS by kind)
    min_rate: float = 1024.0  # bytes/s; an attempt slower than this over rate_window is abandoned
    rate_window: float = 30.0  # seconds (curl's --speed-limit / --speed-time)
    connect_attempts: int = 2  # per source, when the name does not resolve or the connection is refused


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


class _Unreachable(_Transient):
    """No connection was made (name did not resolve, connection refused): retrying rarely helps."""


class _TooMuch(Exception):
    """The server sent more bytes than may be written."""


class _RateGuard:
    """Abandons an attempt that moves fewer than ``min_rate`` bytes/s over ``window`` seconds."""

    def __init__(self, min_rate: float, window: float):
        self.min_rate, self.window = min_rate, window
        self.start, self.bytes = time.monotonic(), 0

    def add(self, n: int) -> None:
        self.bytes += n
        elapsed = time.monotonic() - self.start
        if elapsed >= self.window:
            if self.bytes / elapsed < self.min_rate:
                raise _Transient(
                    f"too slow: {self.bytes / elapsed:.1f} B/s over {elapsed:.1f} s "
                    f"(minimum {self.min_rate:.0f} B/s over {self.window:g} s)"
                )
            self.start, self.bytes = time.monotonic(), 0


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

    def _cap(self, rf: RemoteFile) -> int:
        return rf.max_size or self.options.max_bytes or DEFAULT_CAPS.get(rf.kind, DEFAULT_CAPS["checkpoint"])

    def _download(self, rf: RemoteFile, key: str, label: str) -> FetchResult:
        full, size = self._full_pin(rf)
        partial = self.store.partial_path(key)
        partial.parent.mkdir(parents=True, exist_ok=True)
        if size is not None:
            _ensure_space(partial, size, partial.stat().st_size if partial.exists() else 0, label)
        failures: list[str] = []
        try:
            for source in (rf.url, *rf.mirrors):
                try:
                    got, got_size = self._from_source(source, partial, size, rf, label)
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
                self.lock_path, lockfile.LockEntry(got, got_size, rf.url), self.store.areas.pins_lock()
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

    def _from_source(self, source: str, partial: Path, size: int | None, rf: RemoteFile, label: str) -> tuple[str, int]:
        local = _local_path(source)
        if local is not None:
            return self._copy_local(local, partial, size, rf, label)
        last = ""
        unreachable = 0
        for attempt in range(self.options.attempts):
            try:
                return self._attempt(source, partial, size, rf, label)
            except _Unreachable as e:
                unreachable += 1
                if unreachable >= self.options.connect_attempts:
                    raise _Permanent(f"cannot connect after {unreachable} tries: {e}") from None
                time.sleep(min(self.options.backoff_base, 0.5))
            except _Transient as e:
                last = str(e)
                if attempt + 1 < self.options.attempts:
                    delay = min(self.options.backoff_cap, self.options.backoff_base * 2**attempt)
                    if e.retry_after is not None:
                        delay = min(self.options.backoff_cap, max(delay, e.retry_after))
                    time.sleep(delay)
        raise _Permanent(f"gave up after {self.options.attempts} attempts; last error: {last}")

    def _copy_local(self, src: Path, partial: Path, size: int | None, rf: RemoteFile, label: str) -> tuple[str, int]:
        if not src.is_file():
            raise _Permanent(f"no such file {src}")
        total = src.stat().st_size
        _ensure_space(partial, total, 0, label)
        self.progress.start(label, total, 0)
        try:
            with open(src, "rb", buffering=0) as fin:
                return self._write_stream(partial, iter(lambda: fin.read(CHUNK), b""), hashlib.sha256(), False,
                                          size if size is not None else max(total, self._cap(rf)))
        except _TooMuch:
            raise IntegrityError(f"{src}\n  is larger than the expected {size} bytes; nothing was kept") from None
        finally:
            self.progress.finish()

    def _write_stream(self, partial: Path, chunks: Iterator[bytes], hasher, append: bool, room: int,
                      guard: _RateGuard | None = None) -> tuple[str, int]:
        """Append or write ``chunks`` to ``partial``, hashing them; returns (digest, bytes written now).

        Never writes more than ``room`` bytes: the chunk that would pass it raises _TooMuch unwritten.
        """
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
        writer = _HashingWriter(fd, hasher)
        try:
            for chunk in chunks:
                if writer.written + len(chunk) > room:
                    raise _TooMuch()
                writer.write(chunk)
                self.progress.advance(len(chunk))
                if guard is not None:
                    guard.add(len(chunk))
        finally:
            try:
                digest = writer.close()  # also on failure: what was received stays resumable
            finally:
                os.close(fd)
        return digest, writer.written

    def _attempt(self, url: str, partial: Path, size: int | None, rf: RemoteFile, label: str) -> tuple[str, int]:
        """One HTTP request, resuming from what ``partial`` already holds."""
        offset = partial.stat().st_size if partial.exists() else 0
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = (self.options.connect_timeout, min(self.options.read_timeout, self.options.rate_window))
        try:
            resp = self.session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True)
        except requests.ConnectionError as e:
            reason = getattr(e.args[0] if e.args else None, "reason", None)
            if isinstance(reason, NewConnectionError):
                raise _Unreachable(f"{type(reason).__name__}: {reason}") from None
            raise _Transient(f"{type(e).__name__}: {e}") from None
        except requests.Timeout as e:
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
            if _is_html(resp):
                raise _Permanent(f"the server sent an HTML page (a login, error or captive-portal page?) instead of the file {url}")
            if offset and not _resumes_at(resp, offset):
                offset = 0  # the server ignored Range (200) or answered another range: restart
            length = resp.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if size is not None and total is not None and total != size:
                raise IntegrityError(
                    f"{url}\n  expected size: {size} bytes\n  server announces: {total} bytes\nNothing was cached."
                )
            cap = self._cap(rf)
            if size is None and total is not None and total > cap:
                raise IntegrityError(
                    f"{url}\n  the server announces {total} bytes, above the {rf.kind} cap of {cap} bytes; nothing was "
                    "written. If the file really is that large, raise the cap (max_size on the recipe input, or --max-download)."
                )
            expected = size if size is not None else total
            if expected is not None:
                _ensure_space(partial, expected, offset, label)
            h = hashlib.sha256()
            if offset:
                with open(partial, "rb") as f:
                    while chunk := f.read(CHUNK):
                        h.update(chunk)
            self.progress.start(label, total, offset)
            room = (expected if expected is not None else cap) - offset
            try:
                # read1: whatever has arrived, so a stalled connection loses nothing already received
                digest, received = self._write_stream(partial, iter(lambda: resp.raw.read1(CHUNK), b""), h, offset > 0, room,
                                                      _RateGuard(self.options.min_rate, self.options.rate_window))
            except _TooMuch:
                what = (f"more than the expected {expected} bytes" if expected is not None else
                        f"more than the {rf.kind} cap of {cap} bytes, and no size is known for it")
                raise IntegrityError(
                    f"{url}\n  the server sent {what}; nothing past that was written and nothing was kept. "
                    + ("" if expected is not None else "If the file really is larger, raise the cap (max_size on the recipe input, or --max-download).")
                ) from None
            except (requests.RequestException, Urllib3Error, OSError) as e:
                raise _Transient(f"connection lost after {partial.stat().st_size} bytes: {type(e).__name__}") from None
            finally:
                self.progress.finish()
            written = offset + received
            if total is not None and written != total:
                raise _Transient(f"short body: {written} of {total} bytes")
            return digest, written


def _is_html(resp: requests.Response) -> bool:
    return resp.headers.get("Content-Type", "").split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml")


def _ensure_space(partial: Path, total: int, have: int, label: str) -> None:
    """Refuse a download of known size up front when the store's disk cannot hold the rest of it."""
    need = total - have
    free = shutil.disk_usage(partial.parent).free
    if need + DISK_HEADROOM > free:
        raise NoSpace(
            f"{label}: needs {need / 1e6:.1f} MB more in {partial.parent}, but only {free / 1e6:.1f} MB are free "
            f"(posepipe keeps {DISK_HEADROOM >> 20} MiB spare). Free space (`invoke gc --max-size ...`) or point "
            "POSEPIPE_STORE at a larger disk."
        )


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
