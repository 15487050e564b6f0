"""Folder trees by content: every file's size and sha256, and a cheap stat fingerprint.

A fingerprint (inode, size, mtime, ctime per file) recorded right after a full hash lets an
unchanged tree skip re-hashing; any write to a file changes its ctime.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.core.digests import sha256_file


def tree_manifest(root: Path) -> dict[str, dict[str, int | str]]:
    """{relative path: {size, sha256}} of every file below ``root`` (symlinks refused)."""
    files: dict[str, dict[str, int | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.is_symlink():
                raise ValueError(f"{p.relative_to(root)} is a symbolic link; step outputs must be plain files")
            digest, size = sha256_file(p)
            files[p.relative_to(root).as_posix()] = {"size": size, "sha256": digest}
    return files


def fingerprints(root: Path) -> dict[str, list[int]]:
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            st = (Path(dirpath) / name).stat()
            out[(Path(dirpath) / name).relative_to(root).as_posix()] = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return out
