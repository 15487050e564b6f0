"""`invoke publish`: built artifacts into a directory / static HTTP layout or an OCI registry.

Layout under DEST::

    index.json                                   recipes, targets, versions, digests
    index.html                                   the catalog page for people
    <recipe>/<target>/<version>/<target>.tar.gz  the reproducible tarball
    <recipe>/<target>/<version>/manifest.json    its manifest (also inside the tarball)
    <recipe>/<target>/<version>/provenance.dsse.json   DSSE envelope, when signed
    <recipe>/<target>/<version>/preview.png      the artifact's keypoints on the recipe's photo, when it has one

Versions are immutable: the same version with other bytes is refused. Only what earned its
label is published: contract-test artifacts never, compiled (unverified) ones only with
``--allow-unverified``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pipelines.cli import console
from pipelines.core import catalog_page, labels, published
from pipelines.core import manifest as manifest_model
from pipelines.core.digests import canonical_json, sha256_bytes, sha256_file
from pipelines.core.errors import IntegrityError, UsageError
from pipelines.core.layout import Layout
from pipelines.core.provenance import ENVELOPE, statement
from pipelines.edges.publishing import archive
from pipelines.edges.publishing import artifacts
from pipelines.edges.publishing import signing
from pipelines.edges.fs import file_lock, replace_dir, staging_dir, write_bytes_atomic
from pipelines.edges.publishing.oci import OciRegistry

PREVIEW = manifest_model.PREVIEW_FILES[0]  # the picture the catalog shows, published beside the tarball (also inside it)


def publish(layout: Layout, recipe: str, target: str | None, dest: Path | str, version: str | None, key: str | None,
            allow_unverified: bool = False) -> list[str]:
    base = layout.artifacts / recipe
    targets = [target] if target else sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []
    if not targets:
        raise UsageError(f"nothing built for {recipe!r} under {base}; run `invoke build --recipe {recipe}` first")
    key = key or os.environ.get("POSEPIPE_SIGNING_KEY") or None
    done = []
    for t in targets:
        done.append(_publish_one(base / t, base / f"{t}.tar.gz", recipe, t, dest, version, key, allow_unverified))
    return done


def _publish_one(target_dir: Path, tarball: Path, recipe: str, target: str, dest: Path | str, version: str | None,
                 key: str | None, allow_unverified: bool) -> str:
    manifest = artifacts.read(target_dir)
    artifacts.check_files(target_dir, manifest)
    if (label := labels.of_manifest(manifest)) != manifest["label"]:
        raise IntegrityError(
            f"{recipe}/{target}'s manifest says {manifest['label']!r}, but the checks it records earn {label!r}: "
            "the manifest was edited or made by another tool; build it again"
        )
    if label == labels.CONTRACT_TEST:
        raise IntegrityError(f"{recipe}/{target} was made by a contract-test stand-in toolchain; it is never published")
    if label == labels.COMPILED and not allow_unverified:
        raise IntegrityError(
            f"{recipe}/{target} is labelled 'compiled': it was really built but no check of its output passed; "
            "publish it only knowingly, with --allow-unverified (the catalog page shows the label)"
        )
    if not tarball.is_file():
        raise IntegrityError(f"{tarball} is missing; run the build again")
    _check_tarball(tarball, manifest)
    tar_sha, tar_size = sha256_file(tarball)
    manifest_bytes = (target_dir / manifest_model.NAME).read_bytes()
    version = version or f"sha-{tar_sha[:12]}"
    preview = target_dir / PREVIEW if PREVIEW in {f["path"] for f in manifest["files"]} else None  # checked above
    envelope = None
    if key:
        subjects = {tarball.name: tar_sha, manifest_model.NAME: sha256_bytes(manifest_bytes)}
        if preview:
            subjects[PREVIEW] = sha256_file(preview)[0]
        envelope = signing.sign(statement(subjects, manifest), signing.load_private(key))
    entry = {
        "sha256": tar_sha,
        "size": tar_size,
        "manifest_sha256": sha256_bytes(manifest_bytes),
        "signed": envelope is not None,
        "key_id": envelope["signatures"][0]["keyid"] if envelope else None,
        "published": int(time.time()),
        "output": manifest["target"]["output"],
        "toolchain": manifest["target"]["toolchain"],
        "label": label,
        "verification": catalog_page.figures(manifest),
        "evaluation": catalog_page.evaluations(manifest),
    }
    signed = "signed" if envelope else "unsigned (no signing key configured)"
    if str(dest).startswith("oci://"):
        registry = OciRegistry(str(dest))
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(tarball, Path(tmp) / tarball.name)
            (Path(tmp) / manifest_model.NAME).write_bytes(manifest_bytes)
            if envelope:
                (Path(tmp) / ENVELOPE).write_bytes(canonical_json(envelope) + b"\n")
            if preview:
                shutil.copyfile(preview, Path(tmp) / PREVIEW)
            shown = {"preview": PREVIEW} if preview else {}
            ref = registry.push(Path(tmp), recipe, target, version, {**entry, **shown, "tarball": tarball.name})
        console.line(f"ok  {recipe}/{target} {version} -> {ref} ({signed})")
        return version
    dest = Path(dest)
    final = dest / recipe / target / version
    with file_lock(dest / ".posepipe-publish.lock"):
        if final.exists():
            existing = sha256_file(final / tarball.name)[0] if (final / tarball.name).exists() else None
            if existing != tar_sha:
                raise IntegrityError(
                    f"{recipe}/{target} version {version} is already published with sha256 {existing}; versions are "
                    f"immutable and this build is {tar_sha}: publish it under a new version"
                )
            console.line(f"ok  {recipe}/{target} {version}: already published, same digest")
            return version
        with staging_dir(final) as staged:
            shutil.copyfile(tarball, staged / tarball.name)
            (staged / manifest_model.NAME).write_bytes(manifest_bytes)
            if envelope:
                (staged / ENVELOPE).write_bytes(canonical_json(envelope) + b"\n")
            if preview:
                shutil.copyfile(preview, staged / PREVIEW)
            replace_dir(staged, final)
        shown = {"preview": f"{recipe}/{target}/{version}/{PREVIEW}"} if preview else {}
        _add_to_index(dest, recipe, target, version, {**entry, **shown, "tarball": f"{recipe}/{target}/{version}/{tarball.name}"})
    console.line(f"ok  {recipe}/{target} {version} -> {final} ({signed})")
    return version


def _check_tarball(tarball: Path, manifest: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
        archive.unpack(tarball, Path(tmp) / "x")
        artifacts.check_files(Path(tmp) / "x", manifest)


def _add_to_index(dest: Path, recipe: str, target: str, version: str, entry: dict[str, Any]) -> None:
    path = dest / "index.json"
    index = published.parse_index(path.read_bytes(), str(path)) if path.exists() else {"schema_version": 1, "recipes": {}}
    index["recipes"].setdefault(recipe, {}).setdefault(target, {})[version] = entry
    write_bytes_atomic(path, json.dumps(index, indent=1, sort_keys=True).encode() + b"\n")
    write_bytes_atomic(dest / "index.html", catalog_page.render(index).encode())
