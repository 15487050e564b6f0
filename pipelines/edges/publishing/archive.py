"""Reproducible tarballs in, safe extraction out.

Packing: entries sorted, uid/gid 0, no user names, fixed modes, every mtime =
SOURCE_DATE_EPOCH, gzip header without name or time: the same files always
give the same bytes. Unpacking refuses absolute paths, '..', links and device
files, whatever the archive says.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from pipelines.core.errors import IntegrityError


def pack(root: Path, dest: Path, epoch: int, only: tuple[str, ...] | None = None, level: int = 9) -> None:
    """Write ``root``'s files (relative paths; ``only`` these top-level names, if given) to the .tar.gz
    ``dest`` deterministically. ``level`` trades size for time (weights barely compress)."""
    files = sorted(p for p in root.rglob("*") if (p.is_file() or p.is_dir())
                   and (only is None or p.relative_to(root).parts[0] in only))
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in files:
                if path.is_symlink():
                    raise IntegrityError(f"{path} is a symbolic link; artifacts hold plain files only")
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                else:
                    info.size, info.mode = path.stat().st_size, 0o644
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
        gz.flush()
        raw.flush()
        os.fsync(raw.fileno())


def _check_member(m: tarfile.TarInfo) -> None:
    name = PurePosixPath(m.name)
    if name.is_absolute() or ".." in name.parts or not m.name.strip():
        raise IntegrityError(f"archive entry {m.name!r} would land outside the target folder")
    if not (m.isfile() or m.isdir()):
        kind = "link" if (m.issym() or m.islnk()) else "device or special file"
        raise IntegrityError(f"archive entry {m.name!r} is a {kind}; artifacts hold plain files only")


def unpack(archive: Path, dest: Path) -> list[str]:
    """Extract into the (new, empty) folder ``dest``; returns the file paths extracted. Bytes that are
    not a whole .tar.gz are an IntegrityError like any other bad archive, never a traceback."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m)
            tar.extractall(dest, members=members, filter="data")  # the stdlib's own guard as well
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise IntegrityError(f"{archive.name} is not a readable .tar.gz ({type(e).__name__}: {e})") from None
    return sorted(m.name for m in members if m.isfile())
