"""OCI registries (through ORAS' Python SDK) as a publish destination and a download source."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import oras.defaults
import requests

from pipelines.core import manifest as manifest_model
from pipelines.core import published
from pipelines.core.errors import IntegrityError, NetworkError
from pipelines.core.provenance import ENVELOPE
from pipelines.edges.remote.registry import FailFastClient, is_loopback, parse_oci_url


class OciRegistry:
    """An OCI registry as a publish destination and download source, through ORAS (oras-py).

    ``oci://HOST[:PORT]/NAMESPACE``: each artifact version is the tag ``<target>-<version>`` of
    the repository ``NAMESPACE/<recipe>``, an OCI artifact whose layers are the tarball, the
    manifest, the signature envelope and the preview picture (when there is one) and whose
    annotations carry what index.json holds.
    Plain HTTP is used for loopback registries only.
    """

    ARTIFACT_TYPE = "application/vnd.posepipe.artifact.v1"
    MEDIA = {".tar.gz": "application/vnd.posepipe.tarball.v1.tar+gzip", manifest_model.NAME: "application/vnd.posepipe.manifest.v1+json",
             ENVELOPE: "application/vnd.dsse.envelope.v1+json", ".png": "image/png"}

    def __init__(self, url: str):
        self.host, self.namespace = parse_oci_url(url)
        self.client = FailFastClient(self.host, is_loopback(self.host))

    def ref(self, recipe: str, target: str, version: str | None = None) -> str:
        repo = f"{self.host}/{self.namespace}/{recipe}"
        return f"{repo}:{target}-{version}" if version else repo

    def _get(self, url: str, what: str, accept: str) -> requests.Response | None:
        """One GET through ORAS' authenticated session: None for 404 (not published), a
        NetworkError naming the status for any other failure (oras-py's own calls raise the same
        bare ValueError for both, so a broken registry would read as "not published yet")."""
        try:
            resp = self.client.do_request(url, "GET", headers={"Accept": accept})
        except requests.RequestException as e:
            raise NetworkError(f"the registry {self.host} cannot be reached for {what}: {e}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise NetworkError(f"the registry {self.host} failed on {what}: HTTP {resp.status_code} {resp.reason}"
                               f"{': ' + resp.text[:200] if resp.text else ''}")
        return resp

    def _annotations(self, ref: str) -> dict[str, str] | None:
        """The annotations of a published version, or None if there is no such version."""
        container = self.client.get_container(ref)
        resp = self._get(f"{self.client.prefix}://{container.manifest_url()}", ref,
                         ", ".join(oras.defaults.default_manifest_accepted_media_types))
        if resp is None:
            return None
        try:
            annotations = resp.json().get("annotations", {})
        except (ValueError, AttributeError):
            raise IntegrityError(f"{ref}: the registry's manifest is not a JSON object; refusing it") from None
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise IntegrityError(f"{ref}: the manifest's annotations are not strings; refusing them")
        return annotations

    def _tags(self, recipe: str, target: str) -> list[str]:
        repo = self.ref(recipe, target)
        url, tags = f"{self.client.prefix}://{self.client.get_container(repo).tags_url()}", []
        while url:
            resp = self._get(url, f"the tags of {repo}", "application/json")
            if resp is None:  # no such repository: nothing of this recipe is published
                return tags
            try:
                tags += [t for t in resp.json().get("tags") or [] if isinstance(t, str)]
            except (ValueError, AttributeError):
                raise IntegrityError(f"{repo}: the registry's tag list is not JSON; refusing it") from None
            link = resp.links.get("next", {}).get("url")
            url = urljoin(url, link) if link else None
        return tags

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
        """Every published version of recipe/target with what index.json would say of it, checked."""
        out = {}
        for tag in self._tags(recipe, target):
            if tag.startswith(f"{target}-"):
                ref = f"{self.ref(recipe, target)}:{tag}"
                ann = self._annotations(ref) or {}
                try:
                    out[tag.removeprefix(f"{target}-")] = {
                        k.removeprefix("posepipe."): json.loads(v) for k, v in ann.items() if k.startswith("posepipe.")
                    }
                except ValueError:
                    raise IntegrityError(f"{ref}: a posepipe annotation is not JSON; refusing it") from None
        published.check_versions(recipe, target, out, f"the registry's record of {self.ref(recipe, target)}")
        return out

    def pull(self, recipe: str, target: str, version: str, folder: Path) -> None:
        try:
            paths = self.client.pull(target=self.ref(recipe, target, version), outdir=str(folder))
        except Exception as e:
            raise NetworkError(f"pulling {self.ref(recipe, target, version)} failed: {e}") from None
        for p in map(Path, paths):  # layers are named by their title; keep only the base name
            if p.parent != folder:
                os.replace(p, folder / p.name)
