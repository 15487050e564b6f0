"""An OCI registry as a shared build cache: fail fast, and a registry that goes away costs warnings only.

One ORAS client per registry, with timeouts and without oras-py's own retries
(five tries over about two minutes per request): a cache that cannot answer at
once is worth less than building locally. The first time the registry cannot
be reached, posepipe says so once and stops asking for the rest of the build.
Credentials come from Docker's config file (`docker login HOST`), which both
ORAS and the Docker engine read, so there is no second place to keep a token.
"""

from __future__ import annotations

import logging
import threading
from http.cookiejar import DefaultCookiePolicy

import oras.auth
import oras.provider
import requests

from pipelines.edges.settings import CacheSetting, parse_oci_url

log = logging.getLogger("posepipe")
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


def is_loopback(host: str) -> bool:
    """Plain HTTP is used for loopback registries only."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or name.startswith("127.")


IMAGE_MANIFESTS = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
))


class _TimeoutSession(requests.Session):
    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", (CONNECT_TIMEOUT, READ_TIMEOUT))
        return super().request(*args, **kwargs)


class FailFastClient(oras.provider.Registry):
    """oras-py's client with one try per request and timeouts on every request."""

    def __init__(self, hostname: str, insecure: bool):
        super().__init__(hostname=hostname, insecure=insecure)
        self.session = _TimeoutSession()
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.auth = oras.auth.get_auth_backend("token", self.session, insecure, tls_verify=True)

    def do_request(self, *args, **kwargs) -> requests.Response:
        return oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)  # skip @retry


class RegistryDown(Exception):
    """The registry did not answer, or answered with a server error."""


class Registry:
    """One configured registry, shared by the step cache and the image cache of a build."""

    def __init__(self, setting: CacheSetting):
        self.setting = setting
        self.host, self.namespace = parse_oci_url(setting.url)
        self.insecure = is_loopback(self.host)
        self.client = FailFastClient(self.host, self.insecure)
        self._down: str | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.setting.url

    @property
    def read_only(self) -> bool:
        return self.setting.read_only

    @property
    def usable(self) -> bool:
        return self._down is None

    def repository(self, *parts: str) -> str:
        return "/".join((self.host, self.namespace, *parts))

    def gone(self, error: object) -> None:
        """The registry failed: warn once, then build locally without asking it again."""
        with self._lock:
            if self._down is None:
                self._down = str(error)
                log.warning(f"remote cache {self.url} is unreachable ({error}); building locally from here on")

    def reachable(self) -> bool:
        """Whether the registry answers at all (any HTTP status, 401 included, is an answer)."""
        try:
            self.client.session.get(f"{self.client.prefix}://{self.host}/v2/")
            return True
        except requests.RequestException:
            return False

    def _manifest_request(self, ref: str, method: str, accept: str) -> requests.Response | None:
        """The registry's answer for the manifest at ``ref``; None when it has none."""
        container = self.client.get_container(ref)
        self.client.auth.load_configs(container)
        url = f"{self.client.prefix}://{container.manifest_url()}"
        try:
            resp = self.client.do_request(url, method, headers={"Accept": accept})
        except (requests.RequestException, ValueError) as e:
            raise RegistryDown(f"{type(e).__name__}: {e}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code >= 500 or resp.status_code in (401, 403):
            raise RegistryDown(f"HTTP {resp.status_code} for {ref}")
        return resp if resp.status_code == 200 else None

    def manifest(self, ref: str) -> dict | None:
        """The OCI manifest at ``ref``; None when the registry says it has none."""
        resp = self._manifest_request(ref, "GET", "application/vnd.oci.image.manifest.v1+json")
        try:
            return resp.json() if resp is not None else None
        except ValueError:
            return None

    def has_image(self, ref: str) -> bool:
        """Whether an image is at ``ref`` (one HEAD; Docker pushes Docker or OCI manifests)."""
        return self._manifest_request(ref, "HEAD", IMAGE_MANIFESTS) is not None

    def blob_url(self, repository: str, digest: str) -> str:
        name = repository.removeprefix(f"{self.host}/")
        return f"{self.client.prefix}://{self.host}/v2/{name}/blobs/{digest}"

    def blob_session(self) -> requests.Session:
        """A session that carries the token ORAS obtained for the last manifest read (no token: anonymous)."""
        session = requests.Session()
        if isinstance(self.client.auth, oras.auth.TokenAuth) and self.client.auth.token:
            session.headers.update(self.client.auth.get_auth_header())
        return session
