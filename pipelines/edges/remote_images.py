"""Toolchain images shared through the configured OCI registry, tagged by the digest of their inputs.

``posepipe/<name>:<digest16>`` here is ``HOST/NAMESPACE/images/<name>:<digest>``
there. A machine that lacks an image pulls it (Docker checks every layer
against its digest) instead of building it, and pushes what it built. Only
the configured registry is ever asked; a miss, a refusal or a registry that
is gone means building locally, with a warning for the last two.
"""

from __future__ import annotations

import logging

from docker.errors import APIError

from pipelines.edges.docker_driver import DockerDriver
from pipelines.edges.registry import Registry

log = logging.getLogger("posepipe")
MISSING = ("manifest unknown", "not found", "does not exist")


class RemoteImages:
    def __init__(self, registry: Registry, driver: DockerDriver):
        self.registry = registry
        self.driver = driver

    def repository(self, name: str) -> str:
        return self.registry.repository("images", name)

    def pull(self, local_tag: str, name: str, digest: str) -> str | None:
        """The image ID of ``local_tag`` pulled from the registry; None if it has none (or is gone)."""
        if not self.registry.usable:
            return None
        try:
            image_id = self.driver.pull_as(self.repository(name), digest, local_tag)
        except APIError as e:
            text = str(e.explanation or e).lower()
            if not any(m in text for m in MISSING):
                self.registry.gone(f"pulling {name}: {e.explanation or e}")
            return None
        log.info(f"pulled image {local_tag} from {self.registry.url}")
        return image_id

    def push(self, local_tag: str, name: str, digest: str) -> None:
        if self.registry.read_only or not self.registry.usable:
            return
        log.info(f"pushing image {local_tag} to {self.registry.url}")
        try:
            self.driver.push(local_tag, self.repository(name), digest)
        except APIError as e:
            log.warning(f"remote cache did not take image {local_tag} ({e.explanation or e}); it stays local")
