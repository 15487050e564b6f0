"""Ed25519 signatures over artifacts: a DSSE envelope carrying an in-toto Statement with
SLSA v1 provenance. Signing and verification are offline; verification needs only the
public key.

Library: ``cryptography`` (PyCA): maintained, already a wheel on every platform, and
Ed25519 is two calls. securesystemslib would add a layer we do not need for one key type;
sigstore needs network and cannot verify bare public keys.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipelines.edges.fs import write_bytes_atomic
from pipelines.core.digests import canonical_json
from pipelines.core.provenance import PAYLOAD_TYPE, pae
from pipelines.core.errors import IntegrityError, UsageError



def make_keys(out_dir: Path, name: str = "posepipe") -> tuple[Path, Path]:
    """A new key pair: ``name.key`` (private, mode 0600) and ``name.pub``."""
    key = Ed25519PrivateKey.generate()
    private = out_dir / f"{name}.key"
    public = out_dir / f"{name}.pub"
    if private.exists() or public.exists():
        raise UsageError(f"{private} or {public} exists already; refusing to overwrite a key")
    out_dir.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    write_bytes_atomic(public, key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def _read_pem(value: str) -> bytes:
    """A PEM given inline (CI secrets) or as a file path."""
    return value.encode() if value.lstrip().startswith("-----BEGIN") else Path(value).read_bytes()


def load_private(value: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_read_pem(value), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError("the signing key is not an Ed25519 key")
    return key


def load_public(value: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(_read_pem(value))
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError("the public key is not an Ed25519 key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign(stmt: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    payload = canonical_json(stmt)
    sig = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id(key.public_key()), "sig": base64.b64encode(sig).decode()}],
    }


def verify(envelope: dict[str, Any], public: Ed25519PublicKey) -> dict[str, Any]:
    """The statement inside ``envelope`` if one signature verifies with ``public``; else IntegrityError."""
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        if envelope["payloadType"] != PAYLOAD_TYPE:
            raise IntegrityError(f"unexpected DSSE payload type {envelope['payloadType']!r}")
        for s in envelope["signatures"]:
            try:
                public.verify(base64.b64decode(s["sig"]), pae(PAYLOAD_TYPE, payload))
                return json.loads(payload)
            except InvalidSignature:
                continue
    except (KeyError, ValueError, TypeError) as e:
        raise IntegrityError(f"the signature envelope is malformed: {e}") from None
    raise IntegrityError(f"no signature verifies with the given public key (key id {key_id(public)[:16]})")
