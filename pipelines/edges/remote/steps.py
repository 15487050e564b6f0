"""Step entries shared through an OCI registry: look a key up before running, push after.

An entry is one OCI artifact, the tag ``<key>`` of ``NAMESPACE/steps``: a
single layer, the entry folder (outputs/, manifest.json, log.txt, params.json) as a
reproducible tarball, annotated with the step and its key. Its blob is
downloaded by the verified fetcher (resume, retry, sha256 against the layer's
digest) and every file is checked against the entry's own manifest before the
entry is adopted into the local store. Anything missing, partial or tampered
is a miss with a warning and the step runs here; nothing unverified is used.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from pipelines.core.digests import SHA256_HEX
from pipelines.core.errors import IntegrityError, NetworkError
from pipelines.core.recipe import RemoteFile
from pipelines.edges.publishing import archive
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.store.fetcher import FetchOptions, Fetcher
from pipelines.edges.remote.registry import Registry, RegistryDown
from pipelines.edges.store.steps import Entry, StepCache

log = logging.getLogger("posepipe")
ARTIFACT_TYPE = "application/vnd.posepipe.step.v1"
MEDIA_TYPE = "application/vnd.posepipe.step.v1.tar+gzip"
ENTRY_FILES = ("outputs", "manifest.json", "log.txt", "params.json")
# A few quick tries per blob: a cache that cannot deliver is a miss, not a reason to wait.
FETCH = FetchOptions(attempts=3, backoff_base=0.5, backoff_cap=4.0, connect_attempts=1, min_rate=64 << 10, rate_window=20.0)


class RemoteSteps:
    def __init__(self, registry: Registry, store: BlobStore, epoch: int):
        self.registry = registry
        self.store = store
        self.epoch = epoch  # mtimes in the entry tarball, so equal entries give equal blobs

    def ref(self, key: str) -> str:
        return f"{self.registry.repository('steps')}:{key}"

    # ---------------------------------------------------------------- pull

    def pull(self, key: str, label: str, cache: StepCache) -> Entry | None:
        """The remote entry for ``key``, verified and adopted into ``cache``; None on a miss."""
        if not self.registry.usable:
            return None
        try:
            manifest = self.registry.manifest(self.ref(key))
        except RegistryDown as e:
            self.registry.gone(e)
            return None
        if manifest is None:
            return None
        layer = _entry_layer(manifest, key)
        if layer is None:
            log.warning(f"remote cache entry for {label} is not a posepipe step entry for its key; running the step here")
            return None
        sha, size = layer["digest"].removeprefix("sha256:"), int(layer["size"])
        url = self.registry.blob_url(self.registry.repository("steps"), layer["digest"])
        fetcher = Fetcher(self.store, self.store.areas.pins("remote"), FETCH, session=self.registry.blob_session())
        try:
            blob = fetcher.fetch(RemoteFile(url, sha, size, kind="artifact"), f"cache {label}")
        except IntegrityError as e:
            log.warning(f"remote cache entry for {label} is damaged, not used ({_first_line(e)}); running the step here")
            return None
        except NetworkError as e:
            self.registry.gone(_first_line(e))
            return None
        try:
            with cache.staging(key) as staged:
                (staged / "outputs").rmdir()  # the entry brings its own, or is refused for lacking one
                archive.unpack(blob.path, staged)
                return cache.adopt(key, staged)
        except IntegrityError as e:
            log.warning(f"remote cache entry for {label} is not a sound entry, not used ({_first_line(e)}); "
                        "running the step here")
            return None
        finally:
            self.store.discard(sha)

    # ---------------------------------------------------------------- push

    def push(self, entry: Entry, label: str) -> None:
        """Share ``entry``; a read-only cache, an unreachable registry or a refused push only warn."""
        if self.registry.read_only or not self.registry.usable:
            return
        ref = self.ref(entry.key)
        try:
            if self.registry.manifest(ref) is not None:
                return  # another machine pushed it first: keys name interchangeable results
        except RegistryDown as e:
            self.registry.gone(e)
            return
        step = json.loads((entry.path / "manifest.json").read_text()).get("step", "")
        annotations = {"posepipe.key": entry.key, "posepipe.step": step, "posepipe.files_digest": entry.digest}
        with tempfile.TemporaryDirectory(prefix="push-", dir=self.store.root) as tmp:
            tarball = Path(tmp) / "entry.tar.gz"
            archive.pack(entry.path, tarball, self.epoch, only=ENTRY_FILES, level=1)
            try:
                self.registry.client.push(target=ref, files=[f"{tarball}:{MEDIA_TYPE}"], manifest_annotations=annotations,
                                          disable_path_validation=True, quiet=True)
            except Exception as e:  # oras-py raises ValueError and requests' errors alike
                self._push_failed(label, e)

    def _push_failed(self, label: str, error: Exception) -> None:
        """A registry that still answers refused the push (a warning); one that does not is gone."""
        if not self.registry.reachable():
            self.registry.gone(_first_line(error))
            return
        log.warning(f"remote cache refused {label}'s entry ({_first_line(error)}); it stays local")


def _entry_layer(manifest: dict, key: str) -> dict | None:
    """The single entry layer of a manifest that says it is the entry for ``key``."""
    layers = manifest.get("layers") or []
    annotations = manifest.get("annotations") or {}
    if annotations.get("posepipe.key") != key or len(layers) != 1:
        return None
    layer = layers[0]
    digest, size = str(layer.get("digest", "")), layer.get("size")
    if layer.get("mediaType") != MEDIA_TYPE or not digest.startswith("sha256:") or not isinstance(size, int):
        return None
    return layer if SHA256_HEX.match(digest.removeprefix("sha256:")) else None


def _first_line(e: object) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
