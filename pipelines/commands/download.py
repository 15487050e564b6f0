"""`invoke download`: one published artifact, its signature and every sha256 verified (no Docker).

It fetches by the digest in the index, verifies the signature and every file's sha256,
extracts safely, and moves the result into place only when all of it checked out, so a
failed download leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import requests

from pipelines.cli import console
from pipelines.cli.progress import for_terminal
from pipelines.core import manifest as manifest_model
from pipelines.core import published
from pipelines.core.digests import sha256_file
from pipelines.core.errors import IntegrityError, NetworkError, UsageError
from pipelines.core.layout import Layout
from pipelines.core.provenance import ENVELOPE
from pipelines.core.recipe import RemoteFile
from pipelines.edges.publishing import archive
from pipelines.edges.publishing import artifacts
from pipelines.edges.publishing import signing
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.store.fetcher import Fetcher, FetchOptions
from pipelines.edges.fs import replace_dir, staging_dir
from pipelines.edges.publishing.oci import OciRegistry
from pipelines.edges.store import Store


SMALL_FILE_CAP = 16 << 20  # index.json and signature envelopes: far above any real one


def _read_source(source: str, rel: str, timeout: float = 60.0) -> bytes:
    """A small file of the published layout (index, envelope): never more than SMALL_FILE_CAP
    bytes, never longer than ``timeout`` seconds, whatever the server does."""
    if source.startswith(("http://", "https://")):
        url = urljoin(source.rstrip("/") + "/", rel)
        deadline = time.monotonic() + timeout
        try:
            with requests.get(url, timeout=(10, timeout), stream=True) as resp:
                if resp.status_code != 200:
                    raise NetworkError(f"{url}: HTTP {resp.status_code}")
                body = bytearray()
                for chunk in resp.iter_content(1 << 16):
                    body += chunk
                    if len(body) > SMALL_FILE_CAP:
                        raise IntegrityError(f"{url}: more than {SMALL_FILE_CAP >> 20} MiB; this is not a posepipe {rel}")
                    if time.monotonic() > deadline:
                        raise NetworkError(f"{url}: not received within {timeout:g} s ({len(body)} bytes so far)")
                return bytes(body)
        except requests.RequestException as e:
            raise NetworkError(f"{url}: {e}") from None
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
    public_key: str | None, allow_unsigned: bool, progress: bool = True, options: FetchOptions = FetchOptions(),
) -> Path:
    registry = OciRegistry(source) if source.startswith("oci://") else None
    if registry:
        versions = registry.versions(recipe, target)
    else:
        index = published.parse_index(_read_source(source, "index.json"), f"{source.rstrip('/')}/index.json")
        versions = index["recipes"].get(recipe, {}).get(target)
    if not versions:
        raise UsageError(f"{source} publishes no {recipe}/{target}")
    if version is None:
        version = max(versions, key=lambda v: (versions[v]["published"], v))
    if version not in versions:
        raise UsageError(f"{recipe}/{target} has no version {version!r} (published: {', '.join(sorted(versions))})")
    entry = versions[version]
    if to.exists() and any(to.iterdir()):
        raise UsageError(f"{to} exists and is not empty; downloads go into a new folder")

    fetcher = Fetcher(BlobStore(layout.store), Store(layout.store).pins("download"), options, for_terminal(progress))
    label = f"{recipe}/{target} {version}"
    tar_name = Path(entry["tarball"]).name
    with tempfile.TemporaryDirectory() as pulled:
        if registry:
            registry.pull(recipe, target, version, Path(pulled))
            tar_url, envelope_bytes = str(Path(pulled) / tar_name), _optional(Path(pulled) / ENVELOPE)
        else:
            tar_url = _file_url(source, entry["tarball"])
            envelope_bytes = _read_source(source, str(Path(entry["tarball"]).parent / ENVELOPE)) if entry["signed"] else None
        blob = fetcher.fetch(RemoteFile(tar_url, entry["sha256"], entry["size"], kind="artifact"), label)  # verified by digest

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

    with staging_dir(to) as staged:
        extracted = staged / "x"
        archive.unpack(blob.path, extracted)
        manifest = artifacts.read(extracted)
        artifacts.check_files(extracted, manifest)
        if entry["signed"] and subjects.get(manifest_model.NAME) != sha256_file(extracted / manifest_model.NAME)[0]:
            raise IntegrityError("the manifest inside the tarball is not the one that was signed")
        replace_dir(extracted, to)
    console.line(f"ok  {label}: {len(manifest['files'])} file(s) verified -> {to}")
    return to


def _optional(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None
