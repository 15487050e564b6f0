"""Step results by cache key: ``steps/<key>/`` holding outputs/, manifest.json and log.txt.

An entry is assembled in a private temp folder and renamed into place under a
per-key lock, so it is complete or absent. A hit is checked against the
manifest (a stat fingerprint taken when the files were last hashed lets an
unchanged entry skip re-hashing); anything that does not match is removed and
counts as a miss. Entries being used take a shared lock that ``gc`` respects.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .atomic import file_lock, fsync_dir, write_bytes_atomic
from .digests import canonical_json, sha256_file, sha256_json


@dataclass(frozen=True)
class Entry:
    key: str
    path: Path
    digest: str  # sha256 of the manifest: what downstream steps key on

    @property
    def outputs(self) -> Path:
        return self.path / "outputs"

    @property
    def log(self) -> Path:
        return self.path / "log.txt"


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


def _fingerprints(root: Path) -> dict[str, list[int]]:
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            st = (Path(dirpath) / name).stat()
            out[(Path(dirpath) / name).relative_to(root).as_posix()] = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return out


class StepCache:
    def __init__(self, root: Path):
        self.root = root / "steps"
        self.locks = root / "locks"
        self.tmp = self.root / ".tmp"

    def entry_path(self, key: str) -> Path:
        return self.root / key

    def lock(self, key: str):
        return file_lock(self.locks / f"step-{key}.lock")

    def in_use(self, key: str):
        """Shared hold on an entry while a build reads it; gc skips entries held so."""
        return file_lock(self.locks / f"use-{key}.lock", shared=True)

    # ---------------------------------------------------------------- lookup

    def lookup(self, key: str) -> Entry | None:
        path = self.entry_path(key)
        manifest_file = path / "manifest.json"
        try:
            manifest_bytes = manifest_file.read_bytes()
            manifest = json.loads(manifest_bytes)
        except (FileNotFoundError, ValueError):
            if path.exists():
                self.remove(key)
            return None
        if manifest.get("key") != key or not self._intact(path, manifest):
            self.remove(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for gc by age
        return Entry(key, path, sha256_json(manifest["files"]))

    def _intact(self, path: Path, manifest: dict) -> bool:
        outputs = path / "outputs"
        if not outputs.is_dir():
            return False
        fp_file = path / "fingerprints.json"
        try:
            if json.loads(fp_file.read_text()) == _fingerprints(outputs):
                return True
        except (FileNotFoundError, ValueError):
            pass
        try:
            ok = tree_manifest(outputs) == manifest["files"]
        except (OSError, ValueError):
            return False
        if ok:
            with contextlib.suppress(OSError):
                write_bytes_atomic(fp_file, canonical_json(_fingerprints(outputs)))
        return ok

    # ---------------------------------------------------------------- write

    @contextlib.contextmanager
    def staging(self, key: str) -> Iterator[Path]:
        """A fresh private folder for one attempt; removed afterwards unless committed."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        d = self.tmp / f"{key}.{os.getpid()}.{uuid.uuid4().hex}"
        (d / "outputs").mkdir(parents=True)
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def commit(self, key: str, staged: Path, log: Path, facts: dict) -> Entry:
        """Seal a staged folder as the entry for ``key`` (caller holds the key's lock)."""
        files = tree_manifest(staged / "outputs")
        shutil.copyfile(log, staged / "log.txt")
        manifest = {"key": key, "files": files, "created": int(time.time()), **facts}
        write_bytes_atomic(staged / "fingerprints.json", canonical_json(_fingerprints(staged / "outputs")))
        write_bytes_atomic(staged / "manifest.json", canonical_json(manifest))  # written last: marks completeness
        final = self.entry_path(key)
        if final.exists():
            self.remove(key)
        os.replace(staged, final)
        fsync_dir(self.root)
        return Entry(key, final, sha256_json(files))

    def remove(self, key: str) -> None:
        """Move aside then delete, so a reader never sees half an entry."""
        path = self.entry_path(key)
        if not path.exists():
            return
        self.tmp.mkdir(parents=True, exist_ok=True)
        doomed = self.tmp / f"{key}.removed.{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def sweep_stale(self) -> None:
        """Remove staging folders of processes that died (kill -9) before committing."""
        if not self.tmp.is_dir():
            return
        for d in self.tmp.iterdir():
            parts = d.name.split(".")
            if len(parts) == 3 and parts[1].isdigit() and not Path(f"/proc/{parts[1]}").exists():
                shutil.rmtree(d, ignore_errors=True)

    def keys(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
