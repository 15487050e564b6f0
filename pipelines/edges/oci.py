"""OCI registries (through ORAS' Python SDK) as a publish destination and a download source."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipelines.core import manifest as manifest_model
from pipelines.core.errors import IntegrityError, NetworkError
from pipelines.core.provenance import ENVELOPE
from pipelines.edges.registry import is_loopback, parse_oci_url


class OciRegistry:
    """An OCI registry as a publish destination and download source, through ORAS (oras-py).

    ``oci://HOST[:PORT]/NAMESPACE``: each artifact version is the tag ``<target>-<version>`` of
    the repository ``NAMESPACE/<recipe>``, an OCI artifact whose layers are the tarball, the
    manifest and the signature envelope and whose annotations carry what index.json holds.
    Plain HTTP is used for loopback registries only.
    """

    ARTIFACT_TYPE = "application/vnd.posepipe.artifact.v1"
    MEDIA = {".tar.gz": "application/vnd.posepipe.tarball.v1.tar+gzip", manifest_model.NAME: "application/vnd.posepipe.manifest.v1+json",
             ENVELOPE: "application/vnd.dsse.envelope.v1+json"}

    def __init__(self, url: str):
        import oras.client

        self.host, self.namespace = parse_oci_url(url)
        self.client = oras.client.OrasClient(hostname=self.host, insecure=is_loopback(self.host))

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
