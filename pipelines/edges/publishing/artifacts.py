"""Artifact folders on disk: ``artifacts/<recipe>/<target>/`` with its manifest, and its tarball.

A target is placed whole (staged beside, fsynced, renamed) and its tarball packed beside it.
A record of both (the manifest's digest and a stat fingerprint of every file) lets a rebuild
that would write the same manifest skip copying and re-packing when nothing was touched.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.core import manifest as manifest_model
from pipelines.core.digests import canonical_json, sha256_bytes
from pipelines.core.errors import IntegrityError
from pipelines.edges.publishing import archive
from pipelines.edges.fs import publish_file, replace_dir, staging_dir, write_bytes_atomic
from pipelines.edges.trees import fingerprints, tree_manifest


def files_of(target_dir: Path) -> list[dict[str, Any]]:
    """Every file under the target folder except the manifest itself."""
    return [{"path": p, **facts} for p, facts in tree_manifest(target_dir).items() if p != manifest_model.NAME]


def read(target_dir: Path) -> dict[str, Any]:
    path = target_dir / manifest_model.NAME
    if not path.is_file():
        raise IntegrityError(f"{target_dir} has no {manifest_model.NAME}")
    return manifest_model.parse(path.read_bytes(), str(path))


def check_files(target_dir: Path, manifest: dict[str, Any]) -> None:
    manifest_model.compare_files(str(target_dir), manifest, files_of(target_dir))


def tarball_of(target_dir: Path) -> Path:
    return target_dir.parent / f"{target_dir.name}.tar.gz"


def _record_path(target_dir: Path) -> Path:
    return target_dir.parent / f".{target_dir.name}.placed.json"


def _state(target_dir: Path) -> dict[str, Any]:
    tarball = tarball_of(target_dir)
    st = tarball.stat()
    return {"folder": fingerprints(target_dir), "tarball": [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]}


def up_to_date(target_dir: Path, manifest_bytes: bytes) -> bool:
    """True when the folder and tarball are exactly what a placement of ``manifest_bytes`` left."""
    try:
        record = json.loads(_record_path(target_dir).read_text())
        return record["manifest_sha256"] == sha256_bytes(manifest_bytes) and record["state"] == _state(target_dir)
    except (OSError, ValueError, KeyError):
        return False


def evaluations_of(target_dir: Path, artifact_step: str) -> list[dict[str, Any]]:
    """The evaluations the placed manifest records of these very outputs (the step ``artifact_step`` made);
    none when there is no sound manifest, or its evaluations scored other outputs."""
    try:
        placed = read(target_dir)
    except IntegrityError:
        return []
    return [e for e in placed.get("evaluation", []) if e["artifact_step"] == artifact_step]


def place(outputs: Path, target_dir: Path, manifest_bytes: bytes, epoch: int, beside: Mapping[str, Path] | None = None) -> bool:
    """Make ``target_dir`` a copy of ``outputs`` and the files ``beside`` (name -> source) plus the manifest,
    and pack its tarball; False if already so."""
    if up_to_date(target_dir, manifest_bytes):
        return False
    record = _record_path(target_dir)
    with contextlib.suppress(FileNotFoundError):
        record.unlink()  # from here on the folder may change: no stale record may vouch for it
    tarball = tarball_of(target_dir)
    with staging_dir(target_dir) as staged:
        folder = staged / "folder"
        shutil.copytree(outputs, folder)
        for name, source in (beside or {}).items():
            shutil.copyfile(source, folder / name)
        (folder / manifest_model.NAME).write_bytes(manifest_bytes)
        archive.pack(folder, staged / tarball.name, epoch)
        replace_dir(folder, target_dir)
        publish_file(staged / tarball.name, tarball)
    write_bytes_atomic(record, canonical_json({"manifest_sha256": sha256_bytes(manifest_bytes), "state": _state(target_dir)}))
    return True
