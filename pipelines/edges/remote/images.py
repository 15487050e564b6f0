"""Toolchain images shared through the configured OCI registry, tagged by the digest of their inputs.

``posepipe/<name>:<digest16>`` here is ``HOST/NAMESPACE/images/<name>:<digest>``
there. A machine that lacks an image pulls it (Docker checks every layer
against its digest) instead of building it; every image a build uses and the
registry lacks is pushed, whether it was built now or long before. Only the
configured registry is ever asked; a miss, a refusal or a registry that is
gone means building locally, with a warning for the last two. Each image's
fate is said once: pulled, pushed, present, or built (and why not pulled).
"""

from __future__ import annotations

import logging

from docker.errors import APIError

from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.remote.registry import Registry, RegistryDown

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
            if any(m in text for m in MISSING):
                log.info(f"image {local_tag}: not in {self.registry.url}, so it is built here")
            else:
                self.registry.gone(f"pulling {name}: {e.explanation or e}")
            return None
        log.info(f"image {local_tag}: pulled from {self.registry.url}")
        return image_id

    def share(self, local_tag: str, name: str, digest: str) -> None:
        """Make sure the registry holds an image this machine has (built now, earlier, or by
        `images` without a cache): one existence check, and a push where it is missing."""
        if not self.registry.usable:
            return
        ref = f"{self.repository(name)}:{digest}"
        try:
            present = self.registry.has_image(ref)
        except RegistryDown as e:
            self.registry.gone(f"looking for image {name}: {e}")
            return
        if present:
            log.info(f"image {local_tag}: present here and in {self.registry.url}")
            return
        if self.registry.read_only:
            log.info(f"image {local_tag}: not in {self.registry.url}; the cache is read-only, so it is not pushed")
            return
        log.info(f"image {local_tag}: pushing to {self.registry.url}")
        try:
            self.driver.push(local_tag, self.repository(name), digest)
        except APIError as e:
            log.warning(f"remote cache did not take image {local_tag} ({e.explanation or e}); it stays local")
            return
        log.info(f"image {local_tag}: pushed to {self.registry.url}")
