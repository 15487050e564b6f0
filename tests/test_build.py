"""`build` end to end on a checkout whose export and ONNX Runtime stages are test stand-ins.

The checkpoint and calibration archive are served over loopback and fetched by
hash; the steps run in real containers. Nothing here is a verified model build:
the stand-in only records what it was asked to do.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.core.digests import sha256_file
from pipelines.core.errors import IntegrityError, NotImplementedYet, ToolchainNotProvisioned
from pipelines.commands.publish import publish
from pipelines.core.layout import REPO_ROOT, Layout
from pipelines.core.plan import HELD_OUT, plan
from pipelines.core.recipe import load_recipe

from .conftest import TEST_TOOLCHAINS, without_preview
from .httpserver import LoopbackServer, Route

CHECKPOINT = b"not a real checkpoint: bytes served to exercise fetch-by-hash\n" * 100
def _archive() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(300):
            z.writestr(f"val2017/{i:012d}.jpg", b"stand-in image %d" % i)
    return buf.getvalue()


ARCHIVE = _archive()


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def checkout(tmp_path, server) -> Layout:
    root = tmp_path / "repo"
    (root / "recipes").mkdir(parents=True)
    shutil.copytree(REPO_ROOT / "docker" / "base", root / "docker" / "base")
    for name in ("mmpose", "onnxruntime"):
        shutil.copytree(TEST_TOOLCHAINS / "standin", root / "docker" / name)
    shutil.copytree(REPO_ROOT / "docker" / "calibration", root / "docker" / "calibration")
    ckpt_url = server.add("/deeppose_test_checkpoint.pth", Route(CHECKPOINT))
    cal_url = server.add("/val2017.zip", Route(ARCHIVE))
    text = without_preview((REPO_ROOT / "recipes" / "face_deeppose.yaml").read_text())
    text = text.replace(
        "https://download.openmmlab.com/mmpose/face/deeppose/deeppose_res50_wflw_256x256-92d0ba7f_20210303.pth",
        ckpt_url,
    ).replace("sha256: 92d0ba7f", f"sha256: {hashlib.sha256(CHECKPOINT).hexdigest()}")
    text = text.replace("http://images.cocodataset.org/zips/val2017.zip", cal_url)
    (root / "recipes" / "face_deeppose.yaml").write_text(text)
    return Layout(root, tmp_path / "store")


def edit(layout: Layout, old: str, new: str) -> None:
    p = layout.recipes / "face_deeppose.yaml"
    p.write_text(p.read_text().replace(old, new, 1))


def last_summary(capsys) -> str:
    return [line for line in capsys.readouterr().out.splitlines() if "step(s) ran" in line][-1]


@pytest.mark.docker
@pytest.mark.slow
def test_build_places_ready_targets_and_reports_the_rest(checkout, capsys):
    with pytest.raises(NotImplementedYet) as e:
        build(checkout, BuildRequest("face_deeppose", progress=False))
    assert "drpai (drpai_tvm not implemented)" in str(e.value) and "built: ort_fp32, ort_int8" in str(e.value)
    art = checkout.artifacts / "face_deeppose"
    record = json.loads((art / "ort_int8" / "face_deeppose_ort_int8" / "standin.json").read_text())
    assert record["standin"] == "contract-test"
    assert record["params"]["settings"]["calibration_method"] == "minmax"
    assert record["params"]["input"] == {"name": "input0", "shape": [1, 3, 256, 256]}
    assert {"calibration/list.json", "model/model.onnx", "model/model.pt"} <= set(record["inputs"])
    assert len([i for i in record["inputs"] if i.startswith("calibration/calibration/")]) == 200
    assert len([i for i in record["inputs"] if i.startswith("calibration/held_out/")]) == 16
    assert not (art / "drpai").exists()
    assert "4 step(s) ran, 0 from the cache" in last_summary(capsys)  # export, calibration, two targets

    # nothing changed: no container starts
    build(checkout, BuildRequest("face_deeppose", target="ort_fp32", progress=False))
    assert "0 step(s) ran, 2 from the cache" in last_summary(capsys)

    # a field only ort_int8 reads reruns only ort_int8
    edit(checkout, "calibration_method: minmax", "calibration_method: entropy")
    build(checkout, BuildRequest("face_deeppose", target="ort_int8", progress=False))
    assert "1 step(s) ran, 2 from the cache" in last_summary(capsys)

    # a field the export reads reruns the export and what follows it
    edit(checkout, "opset: 11", "opset: 13")
    build(checkout, BuildRequest("face_deeppose", target="ort_fp32", progress=False))
    assert "2 step(s) ran, 0 from the cache" in last_summary(capsys)


def test_plan_shares_exports_by_batch_and_adds_combined_targets():
    r = load_recipe(REPO_ROOT / "recipes" / "hrnet_sophon.yaml")
    steps = {s.id: s for s in plan(r, (r.target("bm1684_int8_b1b4"), r.target("ort_fp32")), "c" * 64, "d" * 64)}
    assert set(steps) == {
        "hrnet_sophon/export@b1", "hrnet_sophon/export@b4", "hrnet_sophon/bm1684_int8_b1",
        "hrnet_sophon/bm1684_int8_b4", "hrnet_sophon/bm1684_int8_b1b4", "hrnet_sophon/ort_fp32", "hrnet_sophon/calibration",
    }
    assert steps["hrnet_sophon/export@b4"].params["input"]["shape"] == [4, 3, 256, 192]
    assert steps["hrnet_sophon/bm1684_int8_b1b4"].deps == (
        ("bm1684_int8_b1", "hrnet_sophon/bm1684_int8_b1"), ("bm1684_int8_b4", "hrnet_sophon/bm1684_int8_b4"),
    )
    assert ("calibration", "hrnet_sophon/calibration") in steps["hrnet_sophon/bm1684_int8_b4"].deps
    assert steps["hrnet_sophon/calibration"].blobs == (("archive", "d" * 64),)
    assert steps["hrnet_sophon/calibration"].params == {"select": r.calibration.select, "count": r.calibration.count,
                                                        "held_out": HELD_OUT}  # the recipe's set, the planner's held-out count
    assert steps["hrnet_sophon/ort_fp32"].deps == (("model", "hrnet_sophon/export@b1"),)


def test_export_writes_both_formats():
    r = load_recipe(REPO_ROOT / "recipes" / "face_deeppose.yaml")
    steps = plan(r, r.targets, "c" * 64, "d" * 64)
    export = next(s for s in steps if s.id.endswith("export@b1"))
    assert export.params["formats"] == ["onnx", "torchscript"]
    assert export.blobs == (("checkpoint", "c" * 64),)


@pytest.mark.docker
@pytest.mark.slow
def test_two_clean_builds_give_identical_tarballs_and_manifests(checkout, tmp_path):
    other = Layout(tmp_path / "repo2", tmp_path / "store2")
    shutil.copytree(checkout.root, other.root)
    for lay in (checkout, other):
        build(lay, BuildRequest("face_deeppose", target="ort_fp32", progress=False))
    one, two = (lay.artifacts / "face_deeppose" for lay in (checkout, other))
    assert (one / "ort_fp32.tar.gz").read_bytes() == (two / "ort_fp32.tar.gz").read_bytes()
    assert (one / "ort_fp32" / "manifest.json").read_bytes() == (two / "ort_fp32" / "manifest.json").read_bytes()
    m = json.loads((one / "ort_fp32" / "manifest.json").read_text())
    assert m["label"] == "contract-test"  # made by the stand-in: labelled, and never publishable
    assert {f["path"] for f in m["files"]} == {"face_deeppose_ort_fp32/standin.json"}
    assert [s["id"] for s in m["steps"]] == ["face_deeppose/export@b1", "face_deeppose/ort_fp32"]
    assert m["reproducibility"] == {"checked": False}
    with pytest.raises(IntegrityError, match="never published"):
        publish(checkout, "face_deeppose", "ort_fp32", tmp_path / "dest", None, None)
    build(checkout, BuildRequest("face_deeppose", target="ort_fp32", progress=False, check=True))
    checked = json.loads((one / "ort_fp32" / "manifest.json").read_text())["reproducibility"]
    assert checked == {"checked": True, "differing_files": {"face_deeppose/export@b1": [], "face_deeppose/ort_fp32": []}}


def test_a_toolchain_whose_python_is_missing_is_reported_with_what_to_supply(checkout, monkeypatch, tmp_path):
    from pipelines.edges.containers import interpreters

    shutil.copytree(REPO_ROOT / "docker" / "sophgo_tpu_mlir", checkout.docker / "sophgo_tpu_mlir")
    monkeypatch.setattr(interpreters, "_candidates", lambda minor: [])  # no pyenv, PATH or configured CPython 3.10
    interpreters.locate.cache_clear()  # what this process found before
    try:
        with pytest.raises(ToolchainNotProvisioned) as e:
            build(checkout, BuildRequest("face_deeppose", target="bm1684_mlir_int8_b1", progress=False))
    finally:
        interpreters.locate.cache_clear()
    assert e.value.exit_code == 5
    assert "bm1684_mlir_int8_b1 (sophgo_tpu_mlir needs a CPython)" in str(e.value)
    assert "needs CPython 3.10" in str(e.value) and "pyenv install 3.10" in str(e.value)
    assert not (checkout.artifacts / "face_deeppose" / "bm1684_mlir_int8_b1").exists()


def test_a_supplied_interpreters_digest_is_reused_until_a_file_of_it_changes(tmp_path, monkeypatch):
    """Hashing a CPython prefix is most of a no-op build's time: its digest is kept with a stat
    fingerprint and recomputed only when a file moves."""
    from pipelines.edges.containers import interpreters

    monkeypatch.setenv("POSEPIPE_STORE", str(tmp_path / "store"))
    prefix = tmp_path / "python"
    (prefix / "lib" / "site-packages").mkdir(parents=True)
    (prefix / "lib" / "os.py").write_text("first\n")
    (prefix / "lib" / "site-packages" / "big.py").write_text("not part of it\n")
    first = interpreters._digest.__wrapped__(prefix)
    hashed = []
    monkeypatch.setattr(interpreters, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    assert interpreters._digest.__wrapped__(prefix) == first and hashed == []  # from the record, nothing hashed
    (prefix / "lib" / "site-packages" / "big.py").write_text("still not part of it\n")
    assert interpreters._digest.__wrapped__(prefix) == first and hashed == []
    (prefix / "lib" / "os.py").write_text("second\n")
    assert interpreters._digest.__wrapped__(prefix) != first and hashed  # the change was seen and hashed
