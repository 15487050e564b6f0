"""The filesystem primitives every store, cache and artifact folder uses: one of each.

- ``write_bytes_atomic``: a file appears complete or not at all (temp name in the same
  folder, fsync, rename, fsync the folder).
- ``staging_dir`` + ``replace_dir``: the same for a whole folder.
- ``holding``: an flock that says who it is waiting for; ``get_or_make`` is the
  check-lock-check around it that the store, images and provisioning share.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("posepipe")
T = TypeVar("T")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never half. Readable by all,
    as a plainly written file is (mkstemp's 0600 would hide a published index, or a photo from a step's user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def publish_file(tmp: Path, final: Path) -> None:
    """Move a finished, fsynced temp file to its final name in the same folder."""
    os.replace(tmp, final)
    fsync_dir(final.parent)


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """A fresh folder beside ``final`` (same filesystem, so the rename is atomic); removed unless replaced in."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staged = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex}"
    staged.mkdir()
    try:
        yield staged
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def replace_dir(staged: Path, final: Path) -> None:
    """Make the finished folder ``staged`` be ``final``: its files and the rename are durable.

    An existing ``final`` is moved aside first and deleted after, so a reader finds the
    old folder, the new one or (for an instant) none, never a mix.
    """
    _fsync_tree(staged)
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old.{uuid.uuid4().hex}"
        os.replace(final, old)
    os.replace(staged, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _lock_file(path: Path) -> Iterator[int]:
    """An open descriptor on the lock file ``path`` (created if needed); closing it drops any flock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        yield fd
    finally:
        os.close(fd)


@contextlib.contextmanager
def file_lock(path: Path, shared: bool = False) -> Iterator[None]:
    """Hold an flock on ``path``; released on exit or process death."""
    with _lock_file(path) as fd:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def holding(path: Path, what: str) -> Iterator[None]:
    """An exclusive flock that, when another process has it, says so and whom we wait for."""
    with _lock_file(path) as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            log.info("waiting for another build of %s (pid %s)", what, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield


def get_or_make(lock: Path, what: str, find: Callable[[], T | None], make: Callable[[], T]) -> T:
    """``find()``, else under ``lock``: ``find()`` again (another process may have made it), else ``make()``."""
    found = find()
    if found is not None:
        return found
    with holding(lock, what):
        found = find()
        return found if found is not None else make()


@contextlib.contextmanager
def try_file_lock(path: Path) -> Iterator[bool]:
    """Take an exclusive flock if nobody holds ``path``; yields whether it was taken."""
    with _lock_file(path) as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
