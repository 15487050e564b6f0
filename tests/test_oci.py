"""Publishing to and downloading from a real OCI registry on 127.0.0.1 (Debian's docker-registry)."""

from __future__ import annotations

import pytest

from pipelines.commands import download as downloading
from pipelines.commands import publish as publishing

from pipelines.edges import signing
from pipelines.core.errors import IntegrityError
from pipelines.core.layout import Layout

from .test_artifacts import make_artifact


@pytest.fixture
def registry(oci_registry):
    return oci_registry.url


@pytest.mark.slow
def test_publish_and_download_through_an_oci_registry(registry, tmp_path):
    private, public = signing.make_keys(tmp_path / "keys")
    lay = Layout(tmp_path / "repo", tmp_path / "store")
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", registry, "v1", str(private))
    publishing.publish(lay, "face_deeppose", "ort_fp32", registry, "v1", str(private))  # same digest: fine
    out = downloading.download(lay, "face_deeppose", "ort_fp32", registry, tmp_path / "board", None, str(public), False, progress=False)
    assert (out / "face_deeppose_ort_fp32" / "model.onnx").read_bytes() == b"model bytes\n"

    _, other = signing.make_keys(tmp_path / "other")
    with pytest.raises(IntegrityError, match="no signature verifies"):
        downloading.download(Layout(lay.root, tmp_path / "store2"), "face_deeppose", "ort_fp32", registry,
                            tmp_path / "board2", "v1", str(other), False, progress=False)
    assert not (tmp_path / "board2").exists()

    lay2 = Layout(tmp_path / "repo2", tmp_path / "store")
    make_artifact(lay2, payload=b"other bytes\n")
    with pytest.raises(IntegrityError, match="immutable"):
        publishing.publish(lay2, "face_deeppose", "ort_fp32", registry, "v1", str(private))
