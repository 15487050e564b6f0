"""What a signature covers: an in-toto Statement v1 with SLSA v1 provenance, in a DSSE envelope.

Pure: the statement is made from a manifest, the pre-authentication encoding from bytes.
Keys and signatures are ``pipelines.edges.publishing.signing``.
"""

from __future__ import annotations

from typing import Any

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:posepipe:build:v1"
ENVELOPE = "provenance.dsse.json"  # the envelope's file name beside a published tarball


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def statement(subjects: dict[str, str], manifest: dict[str, Any]) -> dict[str, Any]:
    """in-toto Statement v1 over the artifact files, with SLSA v1 provenance from the manifest."""
    deps = [{"uri": i["url"], "digest": {"sha256": i["sha256"]}} for i in manifest["inputs"].values() if i]
    deps += [{"name": f"image:{t['name']}", "digest": {"sha256": t["image"].removeprefix("sha256:")}} for t in manifest["toolchains"]]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects.items())],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"recipe": manifest["recipe"], "target": manifest["target"]["id"]},
                "internalParameters": {"source_date_epoch": manifest["source_date_epoch"]},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": f"urn:posepipe:{manifest['posepipe']['version']}"},
                "metadata": {"invocationId": manifest["posepipe"]["commit"]},
            },
        },
    }
