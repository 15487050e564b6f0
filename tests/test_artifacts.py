"""Artifacts for board teams: reproducible tarballs, manifests, signatures, publishing to a
static layout served over real HTTP, and the verified download that refuses anything off."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipelines.commands import download as downloading
from pipelines.commands import publish as publishing
from pipelines.core import labels, manifest
from pipelines.core.provenance import statement
from pipelines.edges.publishing import archive
from pipelines.edges.publishing import artifacts
from pipelines.edges.publishing import signing
from pipelines.core.errors import IntegrityError, NetworkError, UsageError
from pipelines.core.layout import Layout

EPOCH = 315532800


PNG_HEADER = b"\x89PNG\r\n\x1a\n"
EVALUATION = {"set": {"name": "scenes.zip", "annotations": "f" * 64, "images": "f" * 64}, "metrics": [{"type": "NME"}],
              "dataset": "wflw", "figures": {"NME": 0.0125}, "fp32_export": {"NME": 0.0}, "delta": {"NME": 0.0125},
              "images": 24, "instances": 30, "inputs": 30, "seconds_per_input": 0.02, "fp32_export_seconds_per_input": 0.05,
              "artifact_step": "d" * 64, "steps": {"run": "1" * 64, "score": "2" * 64}}


def make_artifact(lay: Layout, recipe="face_deeppose", target="ort_fp32", check="passed", contract_test=False,
                  payload=b"model bytes\n", label=None, shown=False):
    """A built target as `invoke build` leaves it: files, manifest.json, <target>.tar.gz. Its label is
    the one its check (``passed``, ``failed`` or ``none``) earns, unless ``label`` forces another. ``shown``:
    with a preview picture beside its outputs and an evaluation in its manifest."""
    d = lay.artifacts / recipe / target
    (d / "face_deeppose_ort_fp32").mkdir(parents=True)
    (d / "face_deeppose_ort_fp32" / "model.onnx").write_bytes(payload)
    extra = {}
    if shown:
        (d / manifest.PREVIEW_FILES[0]).write_bytes(PNG_HEADER + b"a preview picture")
        (d / manifest.PREVIEW_FILES[1]).write_text('{"keypoints": []}')
        files = {f["path"]: {"size": f["size"], "sha256": f["sha256"]} for f in artifacts.files_of(d) if f["path"] in manifest.PREVIEW_FILES}
        extra = {"preview": {"photo": {"url": "https://example.invalid/p.jpg", "sha256": "9" * 64}, "box": [1, 2, 3, 4],
                             "step": "8" * 64, "files": files}, "evaluation": [EVALUATION]}
    (d / "face_deeppose_ort_fp32" / "report.json").write_text('{"accuracy_int8_vs_fp32": {"mean_error_px": 0.4, "p95_error_px": 0.7, "pck_2px": 1.0}}')
    checks = [] if check == "none" else [{"step": f"{recipe}/{target}", "name": "fp32 outputs vs the export",
                                          "passed": check == "passed", "figures": {"max_abs_diff": 1e-6, "tolerance": 1e-4}}]
    label = label or labels.earned(contract_test, f"{recipe}/{target}", labels.checks_in(f"{recipe}/{target}", {"checks": checks}))
    (d / manifest.NAME).write_bytes(manifest.render({
        "schema_version": 1, "label": label, "checks": checks,
        "recipe": {"name": recipe, "digest": "a" * 64},
        "target": {"id": target, "toolchain": "onnxruntime", "output": "face_deeppose_ort_fp32", "params": {"quantize": "none"}},
        "inputs": {"checkpoint": {"url": "https://example.invalid/x.pth", "sha256": "b" * 64}},
        "base": {"image": "posepipe/base:0123456789abcdef", "rootfs_sha256": "d" * 64},
        "toolchains": [{"name": "onnxruntime", "version": "onnxruntime 1.31.1", "image": "sha256:" + "c" * 64}],
        "steps": [{"id": f"{recipe}/{target}", "toolchain": "onnxruntime", "key": "d" * 64, "params": {}}],
        "files": artifacts.files_of(d),
        "verification": {f"{recipe}/{target}/report.json": {"accuracy_int8_vs_fp32": {"mean_error_px": 0.4, "p95_error_px": 0.7, "pck_2px": 1.0}}},
        "reproducibility": {"checked": False},
        "posepipe": {"version": "0.1.0", "commit": "e" * 40},
        "source_date_epoch": EPOCH,
        **extra,
    }))
    archive.pack(d, d.parent / f"{target}.tar.gz", EPOCH)
    return d


@pytest.fixture
def lay(tmp_path) -> Layout:
    return Layout(tmp_path / "repo", tmp_path / "store")


@pytest.fixture
def keys(tmp_path):
    return signing.make_keys(tmp_path / "keys")


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "published"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_tarballs_are_reproducible(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, mode in ((a, 0o022), (b, 0o077)):
        old = os.umask(mode)
        try:
            (d / "x").mkdir(parents=True)
            (d / "x" / "f.bin").write_bytes(b"1" * 1000)
            (d / "m.json").write_text("{}")
        finally:
            os.umask(old)
        os.utime(d / "m.json", (1, 1 if d == a else 999999))
    archive.pack(a, tmp_path / "a.tgz", EPOCH)
    archive.pack(b, tmp_path / "b.tgz", EPOCH)
    assert (tmp_path / "a.tgz").read_bytes() == (tmp_path / "b.tgz").read_bytes()
    with tarfile.open(tmp_path / "a.tgz") as t:
        assert [(m.name, m.uid, m.mtime) for m in t.getmembers()] == [("m.json", 0, EPOCH), ("x", 0, EPOCH), ("x/f.bin", 0, EPOCH)]
    assert (tmp_path / "a.tgz").read_bytes()[4:8] == b"\0\0\0\0"  # gzip header mtime 0


def evil_tarball(path: Path, kind: str) -> None:
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo({"abs": "/tmp/evil", "dotdot": "../evil", "link": "l", "device": "dev"}[kind])
        if kind == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            t.addfile(info)
        elif kind == "device":
            info.type = tarfile.CHRTYPE
            t.addfile(info)
        else:
            data = b"evil"
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("kind", ["abs", "dotdot", "link", "device"])
def test_unsafe_tarballs_are_refused_and_write_nothing(tmp_path, kind):
    evil_tarball(tmp_path / "e.tgz", kind)
    with pytest.raises(IntegrityError):
        archive.unpack(tmp_path / "e.tgz", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil").exists()


def test_signatures_verify_offline_and_detect_tampering(keys, tmp_path):
    private, public = keys
    m = {"inputs": {"checkpoint": {"url": "u", "sha256": "b" * 64}}, "toolchains": [], "recipe": {"name": "r"},
         "target": {"id": "t"}, "source_date_epoch": 1, "posepipe": {"version": "0", "commit": "c"}}
    env = signing.sign(statement({"t.tar.gz": "f" * 64}, m), signing.load_private(str(private)))
    stmt = signing.verify(env, signing.load_public(str(public)))
    assert stmt["predicateType"] == "https://slsa.dev/provenance/v1" and stmt["subject"][0]["digest"]["sha256"] == "f" * 64
    other_private, other_public = signing.make_keys(tmp_path / "other")
    with pytest.raises(IntegrityError, match="no signature verifies"):
        signing.verify(env, signing.load_public(str(other_public)))
    tampered = dict(env, payload=env["payload"][:-8] + "AAAAAAA=")
    with pytest.raises(IntegrityError):
        signing.verify(tampered, signing.load_public(str(public)))


def test_manifest_schema_refuses_bad_manifests(lay):
    d = make_artifact(lay)
    m = artifacts.read(d)
    m["files"][0]["path"] = "../etc/passwd"
    with pytest.raises(IntegrityError, match="schema"):
        manifest.validate(m)


def test_publish_and_download_over_http(lay, keys, served, tmp_path):
    private, public = keys
    make_artifact(lay)
    root, url = served
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", str(private))
    index = json.loads((root / "index.json").read_text())
    entry = index["recipes"]["face_deeppose"]["ort_fp32"]["v1"]
    assert entry["signed"] and entry["verification"]["int8 mean error px"] == 0.4
    out = downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, str(public), False, progress=False)
    assert (out / "face_deeppose_ort_fp32" / "model.onnx").read_bytes() == b"model bytes\n"
    artifacts.check_files(out, artifacts.read(out))


def test_the_preview_is_published_beside_the_tarball_and_covered_by_the_signature(lay, keys, served, tmp_path):
    private, public = keys
    make_artifact(lay, shown=True)
    root, url = served
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", str(private))
    entry = json.loads((root / "index.json").read_text())["recipes"]["face_deeppose"]["ort_fp32"]["v1"]
    assert entry["preview"] == "face_deeppose/ort_fp32/v1/preview.png"
    picture = (root / entry["preview"]).read_bytes()
    assert picture == (lay.artifacts / "face_deeppose" / "ort_fp32" / "preview.png").read_bytes()
    assert entry["evaluation"] == [{"set": "scenes.zip", "figures": {"NME": 0.0125}, "delta": {"NME": 0.0125}}]
    envelope = json.loads((root / "face_deeppose" / "ort_fp32" / "v1" / "provenance.dsse.json").read_text())
    subjects = {s["name"]: s["digest"]["sha256"] for s in signing.verify(envelope, signing.load_public(str(public)))["subject"]}
    assert subjects["preview.png"] == hashlib.sha256(picture).hexdigest()
    out = downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, str(public), False, progress=False)
    assert (out / "preview.png").read_bytes() == picture  # inside the tarball too, checked against the manifest
    assert artifacts.read(out)["evaluation"][0]["figures"] == {"NME": 0.0125}


def test_an_evaluation_is_kept_only_while_it_scores_the_outputs_in_the_folder(lay):
    d = make_artifact(lay, shown=True)
    assert artifacts.evaluations_of(d, "d" * 64) == [EVALUATION]  # the step whose outputs it scored
    assert artifacts.evaluations_of(d, "0" * 64) == []  # a rebuild with other outputs drops it
    assert artifacts.evaluations_of(lay.artifacts / "face_deeppose" / "nothing", "d" * 64) == []


def test_versions_are_immutable(lay, served, tmp_path):
    root, _ = served
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", None)
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", None)  # same bytes: fine
    for p in (lay.artifacts / "face_deeppose").iterdir():
        if p.is_dir():
            import shutil
            shutil.rmtree(p)
    (lay.artifacts / "face_deeppose" / "ort_fp32.tar.gz").unlink()
    make_artifact(lay, payload=b"other bytes\n")
    with pytest.raises(IntegrityError, match="immutable"):
        publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", None)


def test_publish_refuses_contract_tests_and_tampered_files(lay, served):
    root, _ = served
    make_artifact(lay, contract_test=True)
    with pytest.raises(IntegrityError, match="never published"):
        publishing.publish(lay, "face_deeppose", "ort_fp32", root, None, None)
    lay2 = Layout(lay.root.parent / "repo2", lay.store)
    d = make_artifact(lay2)
    (d / "face_deeppose_ort_fp32" / "model.onnx").write_bytes(b"tampered\n")
    with pytest.raises(IntegrityError, match="model.onnx has sha256"):
        publishing.publish(lay2, "face_deeppose", "ort_fp32", root, None, None)
    assert not (root / "index.json").exists()


def published(lay, keys, served):
    private, _ = keys
    root, url = served
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", str(private))
    return root, url, root / "face_deeppose" / "ort_fp32" / "v1"


def test_download_refuses_wrong_key(lay, keys, served, tmp_path):
    root, url, _ = published(lay, keys, served)
    _, other = signing.make_keys(tmp_path / "other")
    with pytest.raises(IntegrityError, match="no signature verifies"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, str(other), False, progress=False)
    assert not (tmp_path / "board").exists()


def test_download_refuses_tampered_tarball(lay, keys, served, tmp_path):
    root, url, vdir = published(lay, keys, served)
    tgz = vdir / "ort_fp32.tar.gz"
    data = bytearray(tgz.read_bytes())
    data[-30] ^= 0xFF
    tgz.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="expected sha256"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, str(keys[1]), False, progress=False)
    assert not (tmp_path / "board").exists()


def test_download_refuses_tampered_manifest_even_with_matching_index(lay, keys, served, tmp_path):
    root, url, vdir = published(lay, keys, served)
    # rebuild the tarball with a changed manifest and point the index at it: the signature still refuses
    work = tmp_path / "x"
    archive.unpack(vdir / "ort_fp32.tar.gz", work)
    m = json.loads((work / "manifest.json").read_text())
    m["label"] = "verified"
    m["target"]["params"] = {"quantize": "int8"}
    (work / "manifest.json").write_text(json.dumps(m))
    archive.pack(work, vdir / "ort_fp32.tar.gz", EPOCH)
    index = json.loads((root / "index.json").read_text())
    e = index["recipes"]["face_deeppose"]["ort_fp32"]["v1"]
    e["sha256"] = hashlib.sha256((vdir / "ort_fp32.tar.gz").read_bytes()).hexdigest()
    e["size"] = (vdir / "ort_fp32.tar.gz").stat().st_size
    (root / "index.json").write_text(json.dumps(index))
    with pytest.raises(IntegrityError, match="signature covers"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, str(keys[1]), False, progress=False)
    assert not (tmp_path / "board").exists()


def test_download_refuses_path_traversal_tarball(lay, served, tmp_path):
    root, url = served
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", None)
    tgz = root / "face_deeppose" / "ort_fp32" / "v1" / "ort_fp32.tar.gz"
    evil_tarball(tgz, "dotdot")
    index = json.loads((root / "index.json").read_text())
    e = index["recipes"]["face_deeppose"]["ort_fp32"]["v1"]
    e["sha256"], e["size"] = hashlib.sha256(tgz.read_bytes()).hexdigest(), tgz.stat().st_size
    (root / "index.json").write_text(json.dumps(index))
    with pytest.raises(IntegrityError, match="outside the target folder"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, None, True, progress=False)
    assert not (tmp_path / "board").exists() and not list(tmp_path.glob(".board.*"))


def test_download_refuses_truncated_file(lay, served, tmp_path):
    root, url = served
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", None)
    tgz = root / "face_deeppose" / "ort_fp32" / "v1" / "ort_fp32.tar.gz"
    tgz.write_bytes(tgz.read_bytes()[:-20])  # the index still names the full size and digest
    with pytest.raises((IntegrityError, NetworkError)):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, None, True, progress=False)
    assert not (tmp_path / "board").exists()


def test_unsigned_needs_explicit_consent(lay, served, tmp_path):
    root, url = served
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", None)
    with pytest.raises(IntegrityError, match="not signed"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, None, False, progress=False)
    with pytest.raises(UsageError, match="no version"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", "v9", None, True, progress=False)


def test_compiled_is_published_only_with_consent_and_contract_test_never(lay, tmp_path):
    make_artifact(lay, check="none")
    with pytest.raises(IntegrityError, match="allow-unverified"):
        publishing.publish(lay, "face_deeppose", "ort_fp32", tmp_path / "dest", "v1", None)
    assert not (tmp_path / "dest" / "face_deeppose").exists()
    publishing.publish(lay, "face_deeppose", "ort_fp32", tmp_path / "dest", "v1", None, allow_unverified=True)
    index = json.loads((tmp_path / "dest" / "index.json").read_text())
    assert index["recipes"]["face_deeppose"]["ort_fp32"]["v1"]["label"] == "compiled"
    other = Layout(tmp_path / "repo2", tmp_path / "store")
    make_artifact(other, contract_test=True)
    with pytest.raises(IntegrityError, match="never published"):
        publishing.publish(other, "face_deeppose", "ort_fp32", tmp_path / "dest", "v2", None, allow_unverified=True)


@pytest.mark.parametrize("check, claimed", [("failed", "verified"), ("none", "verified"), ("passed", "compiled")])
def test_publish_recomputes_the_label_from_the_recorded_checks(lay, tmp_path, check, claimed):
    """A manifest whose label is not what its checks earn (edited, or written by another tool) is refused."""
    make_artifact(lay, check=check, label=claimed)
    with pytest.raises(IntegrityError, match=f"says '{claimed}', but the checks it records earn"):
        publishing.publish(lay, "face_deeppose", "ort_fp32", tmp_path / "dest", "v1", None, allow_unverified=True)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("damage, where", [
    (lambda e: e.update(tarball="../../../etc/passwd"), "tarball"),
    (lambda e: e.update(tarball="http://evil.invalid/x.tar.gz"), "tarball"),
    (lambda e: e.update(size="12"), "size"),
    (lambda e: e.update(sha256="not a digest"), "sha256"),
    (lambda e: e.pop("signed"), "(v1)"),
])
def test_download_refuses_a_malformed_or_hostile_index(lay, keys, served, tmp_path, damage, where):
    root, url, _ = published(lay, keys, served)
    index = json.loads((root / "index.json").read_text())
    damage(index["recipes"]["face_deeppose"]["ort_fp32"]["v1"])
    (root / "index.json").write_text(json.dumps(index))
    at = "recipes/face_deeppose/ort_fp32/v1" + ("" if where == "(v1)" else f"/{where}")
    with pytest.raises(IntegrityError, match=f"index.json is malformed at {at}:"):
        downloading.download(lay, "face_deeppose", "ort_fp32", url, tmp_path / "board", None, str(keys[1]), False, progress=False)
    assert not (tmp_path / "board").exists()


def test_download_of_a_malformed_index_is_one_message_and_exit_4(tmp_path):
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "index.json").write_text('{"schema_version": 1, "recipes": []}')
    res = subprocess.run([sys.executable, "-m", "invoke", "download", "--recipe", "r", "--target", "t", "--from",
                          str(tmp_path / "pub"), "--to", str(tmp_path / "board")], capture_output=True, text=True, timeout=120)
    assert res.returncode == IntegrityError.exit_code
    assert "index.json is malformed at recipes: [] is not of type 'object'" in res.stderr and "Traceback" not in res.stderr
