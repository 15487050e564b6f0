"""Pure hashing helpers: canonical JSON and sha256 of bytes, files and values.

Every cache key, recipe digest and manifest goes through ``canonical_json`` so
that the same value always gives the same bytes, whatever the dict order.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, BinaryIO

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
SHA256_PREFIX = re.compile(r"^[0-9a-f]{8}$")
# OpenMMLab's publish_model.py names files `<stem>-<first 8 hex of sha256>_<YYYYMMDD>.pth`.
OPENMMLAB_NAME = re.compile(r"-(?P<prefix>[0-9a-f]{8})_(?P<date>\d{8})\.pth$")

CHUNK = 1 << 20


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8: stable bytes for hashing."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(value: Any) -> str:
    return sha256_bytes(canonical_json(value))


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hash a binary stream to its end; returns (hex digest, byte count)."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while n := stream.readinto(buf):
        h.update(view[:n])
        size += n
    return h.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    with open(path, "rb", buffering=0) as f:
        return sha256_stream(f)


def openmmlab_prefix(file_name: str) -> str | None:
    """The 8-hex sha256 prefix an OpenMMLab checkpoint carries in its name, if any."""
    m = OPENMMLAB_NAME.search(file_name)
    return m["prefix"] if m else None
