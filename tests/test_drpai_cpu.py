"""The seed's face_deeppose_cpu built for real: a random-weight DeepPose ResNet-50 exported, compiled by TVM
for the RZ/V's Cortex-A53, the aarch64 deploy.so run under qemu-aarch64 and checked, then rebuilt byte for byte."""

from __future__ import annotations

import json
import struct

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.commands.predict import predict
from pipelines.core.layout import Layout

from .test_pipeline import (assert_label_follows_the_figures, checkout_with, mmpose_image, random_weight_recipe,  # noqa: F401
                            scenes, server)
from .test_predict import photo_from

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.images("drpai_tvm_cpu")]
EM_AARCH64 = 183  # ELF e_machine


@pytest.fixture(scope="module")
def drpai_checkout(tmp_path_factory) -> Layout:
    return checkout_with(tmp_path_factory.mktemp("drpai-cpu-checkout"), ("mmpose", "calibration", "drpai_tvm_cpu", "onnxruntime"))


def test_face_deeppose_cpu_is_compiled_run_under_emulation_and_reproducible(mmpose_image, scenes, server,  # noqa: F811
                                                                             drpai_checkout, tmp_path):
    text, _ = random_weight_recipe("face_deeppose", mmpose_image, scenes, server, tmp_path)
    (drpai_checkout.recipes / "face_deeppose.yaml").write_text(text)
    build(drpai_checkout, BuildRequest("face_deeppose", "drpai_cpu", progress=False))

    folder = drpai_checkout.artifacts / "face_deeppose" / "drpai_cpu"
    out = folder / "face_deeppose_cpu"  # where the sample app looks
    assert {p.name for p in out.iterdir()} == {"deploy.so", "deploy.json", "deploy.params", "decode.json", "report.json"}
    header = (out / "deploy.so").read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[4] == 2 and struct.unpack("<H", header[18:20])[0] == EM_AARCH64
    assert struct.unpack("<Q", (out / "deploy.params").read_bytes()[:8])[0] == 0xF7E58D4F05049CB7
    graph = json.loads((out / "deploy.json").read_text())
    assert {"nodes", "arg_nodes", "heads", "node_row_ptr", "attrs"} <= graph.keys()

    manifest = json.loads((folder / "manifest.json").read_text())
    assert_label_follows_the_figures(manifest)
    assert manifest["label"] == "verified", manifest["checks"]
    report = json.loads((out / "report.json").read_text())
    twin, emulated = report["checks"]
    assert "x86-64" in twin["name"] and twin["figures"]["images"] >= 16  # every held-out image
    assert "qemu-aarch64" in emulated["name"] and emulated["figures"]["images"] == 1
    assert "mera-tvm-runtime 1.3" in emulated["figures"]["runtime"]  # says which runtime ran the artifact
    for figures in (twin["figures"], emulated["figures"]):
        assert figures["max_abs_diff"] <= figures["tolerance"] == 1.0e-4  # the export's own tolerance
    contract = report["board_contract"]
    assert contract["elf"]["machine"] == "AArch64" and contract["elf"]["glibc_at_least"].startswith("GLIBC_2.")
    assert contract["target"] == "llvm -device=arm_cpu -mtriple=aarch64-linux-gnu -mattr=+neon"
    assert "-march=armv8-a -mtune=cortex-a53" in contract["cross_compiler"]
    assert contract["tuning"].startswith("none") and "pre-processing" in contract["preprocessing"]
    assert manifest["verification"]["face_deeppose/drpai_cpu/report.json"]["board_contract"] == contract

    build(drpai_checkout, BuildRequest("face_deeppose", "drpai_cpu", progress=False, check=True))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["reproducibility"]["checked"]
    assert manifest["reproducibility"]["differing_files"] == {s["id"]: [] for s in manifest["steps"]}

    # predict: the aarch64 deploy.so run under emulation by its toolchain's runner finds the keypoints ONNX Runtime
    # finds on the same photo and box
    photo, _ = photo_from(scenes, tmp_path / "photo.png")
    emulated = predict(drpai_checkout, BuildRequest("face_deeppose", "drpai_cpu", progress=False), photo, tmp_path / "cpu.png", "4,4,48,52")
    ort = predict(drpai_checkout, BuildRequest("face_deeppose", "ort_fp32", progress=False), photo, tmp_path / "ort.png", "4,4,48,52")
    assert len(emulated["keypoints"]) == 98
    assert max(abs(a[c] - b[c]) for a, b in zip(emulated["keypoints"], ort["keypoints"]) for c in "xy") <= 0.05
