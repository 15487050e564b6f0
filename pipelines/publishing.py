"""Publishing artifacts to a directory / static HTTP layout, and the verified download.

Layout under DEST::

    index.json                                   recipes, targets, versions, digests
    index.html                                   the catalog page for people
    <recipe>/<target>/<version>/<target>.tar.gz  the reproducible tarball
    <recipe>/<target>/<version>/manifest.json    its manifest (also inside the tarball)
    <recipe>/<target>/<version>/provenance.dsse.json   DSSE envelope, when signed

Versions are immutable: the same version with other bytes is refused. Download needs only
this package (no Docker): it fetches by the digest in the index, verifies the signature and
every file's sha256, extracts safely, and moves the result into place only when all of it
checked out, so a failed download leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

from . import archive, catalog_page, report, signing
from . import manifest as manifest_mod
from .atomic import file_lock, write_bytes_atomic
from .blobstore import BlobStore
from .digests import canonical_json, sha256_bytes, sha256_file
from .errors import IntegrityError, NetworkError, UsageError
from .fetcher import Fetcher, FetchOptions
from .paths import Layout
from .progress import for_terminal
from .recipe import RemoteFile

ENVELOPE = "provenance.dsse.json"


# ----------------------------------------------------------------------------- publish


def publish(layout: Layout, recipe: str, target: str | None, dest: Path | str, version: str | None, key: str | None) -> list[str]:
    base = layout.artifacts / recipe
    targets = [target] if target else sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []
    if not targets:
        raise UsageError(f"nothing built for {recipe!r} under {base}; run `invoke build --recipe {recipe}` first")
    key = key or os.environ.get("POSEPIPE_SIGNING_KEY") or None
    done = []
    for t in targets:
        done.append(_publish_one(base / t, base / f"{t}.tar.gz", recipe, t, dest, version, key))
    return done


def _publish_one(target_dir: Path, tarball: Path, recipe: str, target: str, dest: Path | str, version: str | None, key: str | None) -> str:
    manifest = manifest_mod.read(target_dir)
    manifest_mod.check_files(target_dir, manifest)
    if manifest["label"] != "verified":
        raise IntegrityError(f"{recipe}/{target} was made by a contract-test stand-in toolchain; it is never published")
    if not tarball.is_file():
        raise IntegrityError(f"{tarball} is missing; run the build again")
    _check_tarball(tarball, manifest)
    tar_sha, tar_size = sha256_file(tarball)
    manifest_bytes = (target_dir / manifest_mod.NAME).read_bytes()
    version = version or f"sha-{tar_sha[:12]}"
    envelope = None
    if key:
        subjects = {tarball.name: tar_sha, manifest_mod.NAME: sha256_bytes(manifest_bytes)}
        envelope = signing.sign(signing.statement(subjects, manifest), signing.load_private(key))
    entry = {
        "sha256": tar_sha,
        "size": tar_size,
        "manifest_sha256": sha256_bytes(manifest_bytes),
        "signed": envelope is not None,
        "key_id": envelope["signatures"][0]["keyid"] if envelope else None,
        "published": int(time.time()),
        "output": manifest["target"]["output"],
        "toolchain": manifest["target"]["toolchain"],
        "verification": catalog_page.figures(manifest["verification"]),
    }
    signed = "signed" if envelope else "unsigned (no signing key configured)"
    if str(dest).startswith("oci://"):
        registry = OciRegistry(str(dest))
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(tarball, Path(tmp) / tarball.name)
            (Path(tmp) / manifest_mod.NAME).write_bytes(manifest_bytes)
            if envelope:
                (Path(tmp) / ENVELOPE).write_bytes(canonical_json(envelope) + b"\n")
            ref = registry.push(Path(tmp), recipe, target, version, {**entry, "tarball": tarball.name})
        report.out.print(f"ok  {recipe}/{target} {version} -> {ref} ({signed})", markup=False)
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
            report.out.print(f"ok  {recipe}/{target} {version}: already published, same digest", markup=False)
            return version
        staged = final.parent / f".{version}.{uuid.uuid4().hex}"
        staged.mkdir(parents=True)
        try:
            shutil.copyfile(tarball, staged / tarball.name)
            (staged / manifest_mod.NAME).write_bytes(manifest_bytes)
            if envelope:
                (staged / ENVELOPE).write_bytes(canonical_json(envelope) + b"\n")
            os.replace(staged, final)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        _add_to_index(dest, recipe, target, version, {**entry, "tarball": f"{recipe}/{target}/{version}/{tarball.name}"})
    report.out.print(f"ok  {recipe}/{target} {version} -> {final} ({signed})", markup=False)
    return version


def _check_tarball(tarball: Path, manifest: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(dir=tarball.parent) as tmp:
        archive.unpack(tarball, Path(tmp) / "x")
        manifest_mod.check_files(Path(tmp) / "x", manifest)


def _add_to_index(dest: Path, recipe: str, target: str, version: str, entry: dict[str, Any]) -> None:
    path = dest / "index.json"
    index = json.loads(path.read_text()) if path.exists() else {"schema_version": 1, "recipes": {}}
    index["recipes"].setdefault(recipe, {}).setdefault(target, {})[version] = entry
    write_bytes_atomic(path, json.dumps(index, indent=1, sort_keys=True).encode() + b"\n")
    write_bytes_atomic(dest / "index.html", catalog_page.render(index).encode())


# ----------------------------------------------------------------------------- download


def _read_source(source: str, rel: str) -> bytes:
    if source.startswith(("http://", "https://")):
        url = urljoin(source.rstrip("/") + "/", rel)
        try:
            resp = requests.get(url, timeout=(10, 60))
        except requests.RequestException as e:
            raise NetworkError(f"{url}: {e}") from None
        if resp.status_code != 200:
            raise NetworkError(f"{url}: HTTP {resp.status_code}")
        return resp.content
    path = Path(source) / rel
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    return path.read_bytes()


def _file_url(source: str, rel: str) -> str:
    if source.startswith(("http://", "https://")):
        return urljoin(source.rstrip("/") + "/", rel)
    return (Path(source) / rel).resolve().as_uri()


def download(
    layout: Layout, recipe: str, target: str, source: str, to: Path, version: str | None,
    public_key: str | None, allow_unsigned: bool, progress: bool = True,
) -> Path:
    registry = OciRegistry(source) if source.startswith("oci://") else None
    if registry:
        versions = registry.versions(recipe, target)
    else:
        index = json.loads(_read_source(source, "index.json"))
        versions = index.get("recipes", {}).get(recipe, {}).get(target)
    if not versions:
        raise UsageError(f"{source} publishes no {recipe}/{target}")
    if version is None:
        version = max(versions, key=lambda v: (versions[v]["published"], v))
    if version not in versions:
        raise UsageError(f"{recipe}/{target} has no version {version!r} (published: {', '.join(sorted(versions))})")
    entry = versions[version]
    if to.exists() and any(to.iterdir()):
        raise UsageError(f"{to} exists and is not empty; downloads go into a new folder")

    fetcher = Fetcher(BlobStore(layout.store), layout.store / "download.lock", FetchOptions(), for_terminal(progress))
    label = f"{recipe}/{target} {version}"
    tar_name = Path(entry["tarball"]).name
    with tempfile.TemporaryDirectory() as pulled:
        if registry:
            registry.pull(recipe, target, version, Path(pulled))
            tar_url, envelope_bytes = str(Path(pulled) / tar_name), _optional(Path(pulled) / ENVELOPE)
        else:
            tar_url = _file_url(source, entry["tarball"])
            envelope_bytes = _read_source(source, str(Path(entry["tarball"]).parent / ENVELOPE)) if entry["signed"] else None
        blob = fetcher.fetch(RemoteFile(tar_url, entry["sha256"], entry["size"]), label)  # verified by digest

    subjects: dict[str, str] = {}
    if entry["signed"]:
        key = public_key or os.environ.get("POSEPIPE_PUBLIC_KEY")
        if not key:
            raise UsageError("this artifact is signed: give the publisher's public key with --key (or POSEPIPE_PUBLIC_KEY)")
        if envelope_bytes is None:
            raise IntegrityError(f"{label} is listed as signed but has no {ENVELOPE}")
        stmt = signing.verify(json.loads(envelope_bytes), signing.load_public(key))
        subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
        if subjects.get(tar_name) != blob.sha256:
            raise IntegrityError(f"the signature covers {tar_name} with sha256 {subjects.get(tar_name)}, not {blob.sha256}")
    elif not allow_unsigned:
        raise IntegrityError(f"{label} is not signed; pass --allow-unsigned to accept that")

    to.parent.mkdir(parents=True, exist_ok=True)
    staged = to.parent / f".{to.name}.{uuid.uuid4().hex}"
    try:
        archive.unpack(blob.path, staged)
        manifest = manifest_mod.read(staged)
        manifest_mod.check_files(staged, manifest)
        if entry["signed"] and subjects.get(manifest_mod.NAME) != sha256_file(staged / manifest_mod.NAME)[0]:
            raise IntegrityError("the manifest inside the tarball is not the one that was signed")
        if to.exists():
            to.rmdir()
        os.replace(staged, to)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    report.out.print(f"ok  {label}: {len(manifest['files'])} file(s) verified -> {to}", markup=False)
    return to


def _optional(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


# ----------------------------------------------------------------------------- OCI registries


class OciRegistry:
    """An OCI registry as a publish destination and download source, through ORAS (oras-py).

    ``oci://HOST[:PORT]/NAMESPACE``: each artifact version is the tag ``<target>-<version>`` of
    the repository ``NAMESPACE/<recipe>``, an OCI artifact whose layers are the tarball, the
    manifest and the signature envelope and whose annotations carry what index.json holds.
    Plain HTTP is used for loopback registries only.
    """

    ARTIFACT_TYPE = "application/vnd.posepipe.artifact.v1"
    MEDIA = {".tar.gz": "application/vnd.posepipe.tarball.v1.tar+gzip", manifest_mod.NAME: "application/vnd.posepipe.manifest.v1+json",
             ENVELOPE: "application/vnd.dsse.envelope.v1+json"}

    def __init__(self, url: str):
        import oras.client

        rest = url.removeprefix("oci://").strip("/")
        self.host, _, self.namespace = rest.partition("/")
        if not self.host or not self.namespace:
            raise UsageError(f"{url!r} is not like oci://HOST[:PORT]/NAMESPACE")
        insecure = self.host.split(":")[0] in ("localhost", "127.0.0.1") or self.host.startswith("127.")
        self.client = oras.client.OrasClient(hostname=self.host, insecure=insecure)

    def ref(self, recipe: str, target: str, version: str | None = None) -> str:
        repo = f"{self.host}/{self.namespace}/{recipe}"
        return f"{repo}:{target}-{version}" if version else repo

    def _annotations(self, ref: str) -> dict[str, str] | None:
        try:
            return self.client.get_manifest(ref).get("annotations", {})
        except Exception:  # oras-py raises plain errors for a missing tag
            return None

    def push(self, folder: Path, recipe: str, target: str, version: str, entry: dict[str, Any]) -> str:
        ref = self.ref(recipe, target, version)
        existing = self._annotations(ref)
        if existing is not None:
            published = json.loads(existing.get("posepipe.sha256", "null"))
            if published != entry["sha256"]:
                raise IntegrityError(
                    f"{ref} is already published with sha256 {published}; versions are immutable "
                    f"and this build is {entry['sha256']}: publish it under a new version"
                )
            return ref
        files = [f"{p}:{next(m for s, m in self.MEDIA.items() if p.name.endswith(s))}" for p in sorted(folder.iterdir())]
        annotations = {f"posepipe.{k}": json.dumps(v) for k, v in entry.items()}  # annotation values are strings
        try:
            self.client.push(target=ref, files=files, manifest_annotations=annotations, disable_path_validation=True, quiet=True)
        except Exception as e:
            raise NetworkError(f"pushing {ref} failed: {e}") from None
        return ref

    def versions(self, recipe: str, target: str) -> dict[str, dict[str, Any]]:
        try:
            tags = self.client.get_tags(self.ref(recipe, target))
        except Exception as e:
            raise NetworkError(f"cannot list {self.ref(recipe, target)}: {e}") from None
        out = {}
        for tag in tags or []:
            if tag.startswith(f"{target}-"):
                ann = self._annotations(f"{self.ref(recipe, target)}:{tag}") or {}
                out[tag.removeprefix(f"{target}-")] = {
                    k.removeprefix("posepipe."): json.loads(v) for k, v in ann.items() if k.startswith("posepipe.")
                }
        return out

    def pull(self, recipe: str, target: str, version: str, folder: Path) -> None:
        try:
            paths = self.client.pull(target=self.ref(recipe, target, version), outdir=str(folder))
        except Exception as e:
            raise NetworkError(f"pulling {self.ref(recipe, target, version)} failed: {e}") from None
        for p in map(Path, paths):  # layers are named by their title; keep only the base name
            if p.parent != folder:
                os.replace(p, folder / p.name)
