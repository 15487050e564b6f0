"""Settings a user keeps outside the recipes: for now, the remote build cache.

Each comes from the command line, else the environment, else the config file
(``$POSEPIPE_CONFIG``, default ``~/.config/posepipe/config.yaml``), so CI can
set it per job and a team can set it once per machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.core.errors import UsageError

TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class CacheSetting:
    """``--cache oci://HOST[:PORT]/NAMESPACE``; read-only never pushes (pull requests)."""

    url: str
    read_only: bool = False


def parse_oci_url(url: str) -> tuple[str, str]:
    """(host[:port], namespace) of ``oci://HOST[:PORT]/NAMESPACE``."""
    if not url.startswith("oci://"):
        raise UsageError(f"{url!r} is not like oci://HOST[:PORT]/NAMESPACE")
    host, _, namespace = url.removeprefix("oci://").strip("/").partition("/")
    if not host or not namespace:
        raise UsageError(f"{url!r} is not like oci://HOST[:PORT]/NAMESPACE")
    return host, namespace


def config_dir() -> Path:
    """Where a user keeps posepipe's settings: $XDG_CONFIG_HOME/posepipe (default ~/.config/posepipe)."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "posepipe"


def config_file() -> Path:
    if env := os.environ.get("POSEPIPE_CONFIG"):
        return Path(env)
    return config_dir() / "config.yaml"


def _config() -> dict:
    path = config_file()
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UsageError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping such as `cache: oci://HOST/NAMESPACE`")
    return data


def cache_setting(url: str | None = None, read_only: bool = False) -> CacheSetting | None:
    """The remote cache to use: ``--cache``, else $POSEPIPE_CACHE, else ``cache:`` in the config file.

    Read-only if ``--cache-read-only``, $POSEPIPE_CACHE_READ_ONLY or ``cache_read_only: true`` says so.
    """
    config = _config()
    url = url or os.environ.get("POSEPIPE_CACHE") or config.get("cache")
    if not url:
        return None
    if not isinstance(url, str):
        raise UsageError(f"{config_file()}: cache must be a string like oci://HOST[:PORT]/NAMESPACE")
    parse_oci_url(url)
    read_only = (read_only or os.environ.get("POSEPIPE_CACHE_READ_ONLY", "").lower() in TRUE
                 or config.get("cache_read_only") is True)
    return CacheSetting(url, read_only)
