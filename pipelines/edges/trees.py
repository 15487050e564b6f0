"""Folder trees by content: every file's size and sha256, and a cheap stat fingerprint.

A fingerprint (inode, size, mtime, ctime per file) recorded right after a full hash lets an
unchanged tree skip re-hashing; any write to a file changes its ctime.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from pipelines.core.digests import sha256_file


class NotPlainFile(ValueError):
    """Something in a tree that is not a regular file or folder (a link, device, FIFO, socket)."""

    def __init__(self, path: str, kind: str):
        super().__init__(f"{path} is a {kind}; only plain files and folders are kept")
        self.path, self.kind = path, kind


def _kind(mode: int) -> str:
    return ("symbolic link" if stat.S_ISLNK(mode) else "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
            else "device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")


def tree_manifest(root: Path) -> dict[str, dict[str, int | str]]:
    """{relative path: {size, sha256}} of every file below ``root``; anything but plain files and
    folders raises NotPlainFile (a FIFO would hang the hash, a link would point out of the tree)."""
    files: dict[str, dict[str, int | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            mode = (Path(dirpath) / name).lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise NotPlainFile((Path(dirpath) / name).relative_to(root).as_posix(), _kind(mode))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            digest, size = sha256_file(p)
            files[p.relative_to(root).as_posix()] = {"size": size, "sha256": digest}
    return files


def fingerprints(root: Path, keep: Callable[[str], bool] | None = None) -> dict[str, list[int]]:
    """{relative path: [inode, size, mtime, ctime]} of every file (links: their own), folders and
    files whose name ``keep`` refuses left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if keep is not None:
            dirnames[:] = [d for d in dirnames if keep(d)]
        for name in filenames if keep is None else filter(keep, filenames):
            st = (Path(dirpath) / name).lstat()
            out[(Path(dirpath) / name).relative_to(root).as_posix()] = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return out
