"""Publishing to and downloading from a real OCI registry on 127.0.0.1 (Debian's docker-registry)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from pipelines.commands import download as downloading
from pipelines.commands import publish as publishing

from pipelines.edges import signing
from pipelines.core.errors import IntegrityError
from pipelines.core.layout import Layout

from .test_artifacts import make_artifact

REGISTRY = shutil.which("docker-registry")


@pytest.fixture
def registry(tmp_path):
    assert REGISTRY, "Debian's docker-registry is installed by .ci/run"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([REGISTRY, "serve", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # ready when it says so
        if "listening on" in line:
            break
    else:
        raise AssertionError("the registry exited before listening")
    yield f"oci://127.0.0.1:{port}/posepipe"
    proc.terminate()
    proc.wait(timeout=30)


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
