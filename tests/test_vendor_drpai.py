"""Contract tests of the DRP-AI TVM stage against a stand-in vendor image.

The stand-in (tests/toolchains/drpai_standin) has Renesas' paths and environment but fake
tvm/torch/drpai_preprocess modules that record every call. These tests check the exact
invocation the real compiler would get; they are never a verified build, and what they
produce is labelled contract-test and refused by publish.
"""

from __future__ import annotations

import json

import pytest

from pipelines.commands.validate import list_targets
from pipelines.commands.build import BuildRequest, build
from pipelines.core.errors import IntegrityError, ToolchainNotProvisioned
from pipelines.core.layout import Layout
from pipelines.commands.publish import publish

from .conftest import TEST_TOOLCHAINS, standin_vendor_image, vendor_checkout, zip_of

pytestmark = [pytest.mark.docker, pytest.mark.slow]
PREPROCESS_FILES = {"aimac_desc.bin", "drp_desc.bin", "drp_param.bin", "drp_param_info.txt", "pp_drpcfg.mem", "pp_weight.dat", "pp_addrmap_intm.txt"}


@pytest.fixture(scope="module")
def standin_image() -> str:
    return standin_vendor_image(TEST_TOOLCHAINS / "drpai_standin")


@pytest.fixture
def checkout(tmp_path, standin_image, monkeypatch):
    archive = zip_of({f"val2017/{i:012d}.jpg": b"stand-in" for i in range(3)})
    with vendor_checkout(tmp_path, monkeypatch, "drpai_tvm", standin_image, ["face_deeppose", "hand_hrnetv2"], archive, 3) as lay:
        yield lay


def calls(lay: Layout, recipe: str, target: str) -> list[dict]:
    lines = (lay.artifacts / recipe / target / "contract-calls.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def one(records: list[dict], call: str) -> dict:
    found = [r for r in records if r["call"] == call]
    assert len(found) == 1, (call, records)
    return found[0]


def test_drpai_mode_invocation_matches_the_seed(checkout, tmp_path):
    build(checkout, BuildRequest("face_deeppose", target="drpai", progress=False))
    rec = calls(checkout, "face_deeppose", "drpai")
    assert one(rec, "torch.jit.load") ["exists"] is True
    assert one(rec, "relay.frontend.from_pytorch")["shape_list"] == [["input0", [1, 3, 256, 256]]]
    b = one(rec, "drp.build")
    assert b["arch"] == "arm" and b["disable_concat"] is False
    assert b["config"] == {"interpreter": False, "addr_map_start": 0x438E0000,
                           "toolchain_dir": "/tmp/drp-ai_translator", "sdk_root": "/opt/poky/3.1.21"}
    assert b["env"]["PRODUCT"] == "V2MA"  # the recipe's product, passed explicitly (the image says V2L)
    assert b["env"]["TRANSLATOR"] == "/tmp/drp-ai_translator"  # a private writable copy
    assert b["output_dir"] == "/out/face_deeppose_pt"
    p = one(rec, "PreRuntime")
    assert p["product"] == "V2MA" and p["out_dir"] == "/out/face_deeppose_pt/preprocess" and p["cwd"] == "/tmp"
    c = p["config"]
    assert (c["shape_in"], c["format_in"], c["order_in"], c["type_in"]) == ([1, 480, 640, 2], "YUYV_422", "HWC", "UINT8")
    assert (c["shape_out"], c["format_out"], c["order_out"], c["type_out"]) == ([1, 3, 256, 256], "RGB", "CHW", "FP32")
    assert c["ops"][0] == {"op": "Resize", "args": [256, 256, "BILINEAR"]}
    assert c["ops"][1]["op"] == "Normalize" and c["ops"][1]["args"][0] == [-123.675, -116.28, -103.53]
    assert c["ops"][1]["args"][1] == pytest.approx([1 / 58.395, 1 / 57.12, 1 / 57.375])
    out = checkout.artifacts / "face_deeppose" / "drpai" / "face_deeppose_pt"
    assert {p.name for p in out.iterdir()} == {"deploy.so", "deploy.json", "deploy.params", "preprocess"}
    assert {p.name for p in (out / "preprocess").iterdir()} == PREPROCESS_FILES
    manifest = json.loads((out.parent / "manifest.json").read_text())
    assert manifest["label"] == "contract-test"
    assert any(t["name"] == "drpai_tvm" and t["version"].startswith("rzv_drp-ai_tvm v1.1.1") for t in manifest["toolchains"])
    with pytest.raises(IntegrityError, match="never published"):
        publish(checkout, "face_deeppose", "drpai", tmp_path / "dest", None, None)


def test_hand_model_crops_the_camera_frame(checkout):
    build(checkout, BuildRequest("hand_hrnetv2", target="drpai", progress=False))
    ops = one(calls(checkout, "hand_hrnetv2", "drpai"), "PreRuntime")["config"]["ops"]
    assert ops[0] == {"op": "Crop", "args": [80, 0, 480, 480]}
    assert (checkout.artifacts / "hand_hrnetv2" / "drpai" / "hrnetv2_pt" / "deploy.so").is_file()


def test_not_provisioned_says_what_to_supply(checkout, monkeypatch, tmp_path):
    monkeypatch.setenv("POSEPIPE_VENDOR_CONFIG", str(tmp_path / "none.yaml"))
    rows = {cell.target: status.value for cell, status, _ in list_targets(checkout, ["face_deeppose"])}
    assert rows["drpai"] == "not provisioned"
    with pytest.raises(ToolchainNotProvisioned) as e:
        build(checkout, BuildRequest("face_deeppose", target="drpai", progress=False))
    text = str(e.value)
    assert "DRP-AI_Translator-v1.82-Linux-x86_64-Install" in text and str(tmp_path / "none.yaml") in text
    assert not (checkout.artifacts / "face_deeppose" / "drpai").exists()
