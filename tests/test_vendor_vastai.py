"""Contract tests of the Vastai stage against a stand-in `vamc` (never a verified build)."""

from __future__ import annotations

import json

import pytest
import yaml

from pipelines.commands.build import BuildRequest, build
from pipelines.core.layout import Layout

from .conftest import TEST_TOOLCHAINS, standin_vendor_image, vendor_checkout, zip_of

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ARCHIVE = zip_of({n: b"\xff\xd8 stand-in jpeg " + n.encode() for n in (
    "val2017/000000000139.jpg", "val2017/000000000285.jpg", "val2017/000000000632.jpg", "annotations/x.json")})


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    image = standin_vendor_image(TEST_TOOLCHAINS / "vastai_standin")
    with vendor_checkout(tmp_path, monkeypatch, "vastai_vamc", image, ["hrnet_pose_ae"], ARCHIVE, 3) as lay:
        yield lay


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
