"""Publishing to and downloading from a real OCI registry on 127.0.0.1 (Debian's docker-registry)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pipelines.commands import download as downloading
from pipelines.commands import publish as publishing

from pipelines.edges.publishing import signing
from pipelines.core.errors import IntegrityError, NetworkError, UsageError
from pipelines.edges.publishing.oci import OciRegistry
from pipelines.core.layout import Layout

from .httpserver import LoopbackServer, Route
from .test_artifacts import make_artifact


@pytest.fixture
def registry(oci_registry):
    return oci_registry.url


@pytest.mark.slow
def test_publish_and_download_through_an_oci_registry(registry, tmp_path):
    private, public = signing.make_keys(tmp_path / "keys")
    lay = Layout(tmp_path / "repo", tmp_path / "store")
    make_artifact(lay, shown=True)
    publishing.publish(lay, "face_deeppose", "ort_fp32", registry, "v1", str(private))
    publishing.publish(lay, "face_deeppose", "ort_fp32", registry, "v1", str(private))  # same digest: fine
    out = downloading.download(lay, "face_deeppose", "ort_fp32", registry, tmp_path / "board", None, str(public), False, progress=False)
    assert (out / "face_deeppose_ort_fp32" / "model.onnx").read_bytes() == b"model bytes\n"
    version = OciRegistry(registry).versions("face_deeppose", "ort_fp32")["v1"]
    assert version["preview"] == "preview.png" and version["evaluation"][0]["figures"] == {"NME": 0.0125}

    _, other = signing.make_keys(tmp_path / "other")
    with pytest.raises(IntegrityError, match="no signature verifies"):
        downloading.download(Layout(lay.root, tmp_path / "store2"), "face_deeppose", "ort_fp32", registry,
                            tmp_path / "board2", "v1", str(other), False, progress=False)
    assert not (tmp_path / "board2").exists()

    lay2 = Layout(tmp_path / "repo2", tmp_path / "store")
    make_artifact(lay2, payload=b"other bytes\n")
    with pytest.raises(IntegrityError, match="immutable"):
        publishing.publish(lay2, "face_deeppose", "ort_fp32", registry, "v1", str(private))


def test_a_failing_registry_is_told_from_one_that_has_nothing(tmp_path, oci_registry):
    """Nothing published: a usage error saying so. A registry that fails: a network error naming the
    HTTP status, before a publish too (so a failure never reads as "not published yet")."""
    lay = Layout(tmp_path / "repo", tmp_path / "store")
    with pytest.raises(UsageError, match="publishes no face_deeppose/ort_fp32"):
        downloading.download(lay, "face_deeppose", "ort_fp32", oci_registry.url, tmp_path / "board", None, None, True, progress=False)
    with LoopbackServer() as server:
        failing = Route(b"{}", statuses=[(503, None)] * 4)
        server.add("/v2/posepipe/face_deeppose/tags/list", failing)
        server.add("/v2/posepipe/face_deeppose/manifests/ort_fp32-v1", failing)
        url = f"oci://127.0.0.1:{server.server_address[1]}/posepipe"
        with pytest.raises(NetworkError, match=r"failed on the tags of .*face_deeppose: HTTP 503"):
            downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, None, True, progress=False)
        make_artifact(lay)
        with pytest.raises(NetworkError, match=r"failed on .*face_deeppose:ort_fp32-v1: HTTP 503"):
            publishing.publish(lay, "face_deeppose", "ort_fp32", url, "v1", None)
    oci_registry.stop()
    with pytest.raises(NetworkError, match="cannot be reached"):
        downloading.download(lay, "face_deeppose", "ort_fp32", oci_registry.url, tmp_path / "board", None, None, True, progress=False)
    assert not (tmp_path / "board").exists()


def test_a_registry_whose_annotations_lie_is_refused(tmp_path, oci_registry):
    lay = Layout(tmp_path / "repo", tmp_path / "store")
    make_artifact(lay)
    registry = OciRegistry(oci_registry.url)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ort_fp32.tar.gz").write_bytes(b"x")
        registry.push(Path(tmp), "face_deeppose", "ort_fp32", "v1",
                      {"sha256": "a" * 64, "size": "big", "signed": False, "published": 0, "output": "o",
                       "toolchain": "onnxruntime", "tarball": "ort_fp32.tar.gz"})
    with pytest.raises(IntegrityError, match="malformed at recipes/face_deeppose/ort_fp32/v1/size"):
        downloading.download(lay, "face_deeppose", "ort_fp32", oci_registry.url, tmp_path / "board", None, None, True, progress=False)
