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

from pipelines.core.errors import IntegrityError
from pipelines.edges.fs import file_lock, replace_dir, write_bytes_atomic
from pipelines.edges.store import Store
from pipelines.core.digests import canonical_json, sha256_json
from pipelines.edges.trees import NotPlainFile, fingerprints as _fingerprints, tree_manifest


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


class StepCache:
    def __init__(self, root: Path):
        self.store = Store(root)
        self.root = self.store.steps
        self.tmp = self.store.step_tmp
        self.failed = self.store.failed  # failed steps kept by --keep-failed

    def entry_path(self, key: str) -> Path:
        return self.root / key

    def lock_path(self, key: str) -> Path:
        """Held while a step for ``key`` runs and commits (``gc`` skips held keys)."""
        return self.store.step_lock(key)

    def in_use(self, key: str):
        """Shared hold on an entry while a build reads it; gc skips entries held so."""
        return file_lock(self.store.step_use_lock(key), shared=True)

    def log_lock_path(self, log: Path) -> Path:
        return self.store.log_use_lock(sha256_json(str(log.resolve()))[:32])

    def log_in_use(self, log: Path):
        """Shared hold on a step's log while its container writes it and the step commits it; gc skips it."""
        return file_lock(self.log_lock_path(log), shared=True)

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
        shutil.copyfile(log, staged / "log.txt")
        manifest = {"key": key, "files": tree_manifest(staged / "outputs"), "created": int(time.time()), **facts}
        write_bytes_atomic(staged / "manifest.json", canonical_json(manifest))
        return self._seal(key, staged, manifest)

    def adopt(self, key: str, staged: Path) -> Entry:
        """Seal an entry made on another machine once every file matches its manifest (caller holds the lock)."""
        try:
            manifest = json.loads((staged / "manifest.json").read_text())
        except (FileNotFoundError, ValueError):
            raise IntegrityError("the entry has no readable manifest.json") from None
        if not isinstance(manifest, dict) or manifest.get("key") != key:
            raise IntegrityError("the entry's manifest is for another key")
        expected = manifest.get("files")
        if not isinstance(expected, dict) or not (staged / "outputs").is_dir() or (staged / "outputs").is_symlink():
            raise IntegrityError("the entry has no outputs folder or no file list")
        try:
            files = tree_manifest(staged / "outputs")
        except NotPlainFile as e:  # a link or device file among the outputs
            raise IntegrityError(str(e)) from None
        wrong = sorted(p for p in set(files) | set(expected) if files.get(p) != expected.get(p))
        if wrong:
            raise IntegrityError(f"{len(wrong)} file(s) differ from the entry's manifest: {', '.join(wrong[:5])}")
        return self._seal(key, staged, manifest)

    def _seal(self, key: str, staged: Path, manifest: dict) -> Entry:
        write_bytes_atomic(staged / "fingerprints.json", canonical_json(_fingerprints(staged / "outputs")))
        final = self.entry_path(key)
        replace_dir(staged, final)
        return Entry(key, final, sha256_json(manifest["files"]))

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
