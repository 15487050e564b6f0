"""Contract tests of the Vastai stage against a stand-in `vamc` (never a verified build)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile

import pytest
import yaml

from pipelines.building import BuildRequest, build
from pipelines.paths import REPO_ROOT, Layout

from .conftest import TEST_TOOLCHAINS, standin_vendor_image
from .httpserver import LoopbackServer, Route

pytestmark = [pytest.mark.docker, pytest.mark.slow]
CHECKPOINT = b"stand-in checkpoint\n"


def archive() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in ("val2017/000000000139.jpg", "val2017/000000000285.jpg", "val2017/000000000632.jpg", "annotations/x.json"):
            z.writestr(n, b"\xff\xd8 stand-in jpeg " + n.encode())
    return buf.getvalue()


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    image = standin_vendor_image(TEST_TOOLCHAINS / "vastai_standin")
    root = tmp_path / "repo"
    (root / "recipes").mkdir(parents=True)
    for name, src in (("base", REPO_ROOT / "docker" / "base"), ("calibration", REPO_ROOT / "docker" / "calibration"), ("vastai_vamc", REPO_ROOT / "docker" / "vastai_vamc"),
                      ("mmpose", TEST_TOOLCHAINS / "standin")):
        shutil.copytree(src, root / "docker" / name)
    (tmp_path / "vendor.yaml").write_text(f"vastai_vamc:\n  image:\n    ref: {image}\n  contract_test: true\n")
    monkeypatch.setenv("POSEPIPE_VENDOR_CONFIG", str(tmp_path / "vendor.yaml"))
    cal = archive()
    with LoopbackServer() as server:
        text = (REPO_ROOT / "recipes" / "hrnet_pose_ae.yaml").read_text()
        text = text.replace("https://download.openmmlab.com/mmpose/bottom_up/hrnet_w32_coco_512x512-bcb8c247_20200816.pth",
                            server.add("/ckpt.pth", Route(CHECKPOINT)))
        text = text.replace("sha256: bcb8c247", f"sha256: {hashlib.sha256(CHECKPOINT).hexdigest()}")
        text = text.replace("http://images.cocodataset.org/zips/val2017.zip", server.add("/val2017.zip", Route(cal)))
        text = text.replace("sha256: unpinned", f"sha256: {hashlib.sha256(cal).hexdigest()}")
        text = text.replace("count: 200", "count: 3")  # the archive holds three images
        (root / "recipes" / "hrnet_pose_ae.yaml").write_text(text)
        yield Layout(root, tmp_path / "store")


def the_call(lay: Layout, target: str) -> dict:
    lines = (lay.artifacts / "hrnet_pose_ae" / target / "contract-calls.jsonl").read_text().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_int8_build_yaml_matches_the_seed(checkout):
    build(checkout, BuildRequest("hrnet_pose_ae", target="vastai_int8", progress=False))
    call = the_call(checkout, "vastai_int8")
    assert call["argv"] == ["build", "/tmp/workspace/build.yaml"] and call["cwd"] == "/tmp/workspace"
    assert call["calibration_files"] == ["000000.jpg", "000001.jpg", "000002.jpg"]  # val2017/*.jpg only
    config = yaml.safe_load(call["yaml"])
    assert config["name"] == "hrnet_pose"
    assert config["frontend"] == {"shape": {"input.1": [1, 3, 512, 512]}, "type": "onnx", "checkpoint": "/in/model/model.onnx"}
    assert config["backend"] == {"type": "tvm_vacc", "dtype": "int8", "compile": {"cluster_mode": 0},
                                 "quantize": {"calibrate_mode": "kl_divergence", "quantize_per_channel": True}}
    ops = config["dataset"]["process_ops"]
    assert [o["type"] for o in ops] == ["DecodeImage", "Resize", "Pad", "Normalize", "ToTensor"]
    assert ops[1] == {"type": "Resize", "size": [512, -1], "adaptive_side": "long"}
    assert ops[3]["div255"] is True
    assert ops[3]["mean"] == pytest.approx([0.485, 0.456, 0.406]) and ops[3]["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert config["dataset"]["sampler"] == {"suffix": "jpg", "get_data_num": 3}
    out = checkout.artifacts / "hrnet_pose_ae" / "vastai_int8" / "hrnet_pose-int8-kl_divergence-512-vacc"
    assert {p.name for p in out.iterdir()} == {"hrnet_pose.so", "hrnet_pose.json", "hrnet_pose.params", "build.yaml"}
    assert json.loads((out.parent / "manifest.json").read_text())["label"] == "contract-test"


def test_fp16_has_no_quantisation_or_dataset(checkout):
    build(checkout, BuildRequest("hrnet_pose_ae", target="vastai_fp16", progress=False))
    config = yaml.safe_load(the_call(checkout, "vastai_fp16")["yaml"])
    assert config["backend"]["dtype"] == "fp16" and "quantize" not in config["backend"] and "dataset" not in config
    assert (checkout.artifacts / "hrnet_pose_ae" / "vastai_fp16" / "hrnet_pose-fp16-none-512-vacc" / "hrnet_pose.params").is_file()
