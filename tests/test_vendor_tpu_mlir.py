"""Contract tests of Sophgo's TPU-MLIR route against stand-in tools (never a verified build)."""

from __future__ import annotations

import json

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.core.errors import NotImplementedYet
from pipelines.core.layout import Layout

from .conftest import TEST_TOOLCHAINS, standin_vendor_image, vendor_checkout, zip_of

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ARCHIVE = zip_of({f"val2017/{i:012d}.jpg": b"\xff\xd8 stand-in" for i in range(4)})


@pytest.fixture
def built(tmp_path, monkeypatch) -> Layout:
    image = standin_vendor_image(TEST_TOOLCHAINS / "tpu_mlir_standin")
    with vendor_checkout(tmp_path, monkeypatch, "sophgo_tpu_mlir", image, ["hrnet_sophon"], ARCHIVE, 3) as lay:
        with pytest.raises(NotImplementedYet):  # the bmnnsdk2 and ONNX Runtime stages are not in this checkout
            build(lay, BuildRequest("hrnet_sophon", progress=False))
        yield lay


def calls(lay: Layout, target: str) -> list[dict]:
    path = lay.artifacts / "hrnet_sophon" / target / "contract-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


TRANSFORM = ["--model_name", "{net}", "--model_def", "/in/model/model.onnx", "--input_shapes", "[[1,3,256,192]]",
             "--mean", "123.675,116.28,103.53", "--scale", "0.017124754,0.017507003,0.017429194", "--pixel_format", "rgb",
             "--mlir", "{net}.mlir"]


def test_f32_transform_then_deploy(built):
    net = "hrnet_mlir_f32_1b"
    transform, deploy = calls(built, "bm1684_mlir_f32_b1")
    assert transform["call"] == "model_transform.py" and transform["cwd"] == "/tmp/tpu_mlir"
    assert transform["argv"] == [a.format(net=net) for a in TRANSFORM]
    assert deploy["argv"] == ["--mlir", f"{net}.mlir", "--quantize", "F32", "--chip", "bm1684", "--model", f"/out/{net}/{net}.bmodel"]
    assert (built.artifacts / "hrnet_sophon" / "bm1684_mlir_f32_b1" / net / f"{net}.bmodel").is_file()


def test_int8_calibrates_and_validates_against_the_float_model(built):
    net = "hrnet_mlir_int8_1b"
    transform, calibrate, deploy = calls(built, "bm1684_mlir_int8_b1")
    assert transform["argv"][: len(TRANSFORM)] == [a.format(net=net) for a in TRANSFORM]
    assert transform["argv"][len(TRANSFORM):] == ["--test_input", "/in/calibration/calibration/000000.jpg",
                                                  "--test_result", f"{net}_top_outputs.npz"]
    assert calibrate["argv"] == [f"{net}.mlir", "--dataset", "/in/calibration/calibration", "--input_num", "3", "-o", f"{net}_cali_table"]
    assert calibrate["dataset_files"] == ["000000.jpg", "000001.jpg", "000002.jpg"]  # the calibration set, not the held-out image
    assert deploy["argv"] == ["--mlir", f"{net}.mlir", "--quantize", "INT8", "--chip", "bm1684",
                              "--calibration_table", f"{net}_cali_table", "--test_input", f"{net}_in_f32.npz",
                              "--test_reference", f"{net}_top_outputs.npz", "--model", f"/out/{net}/{net}.bmodel"]
    manifest = json.loads((built.artifacts / "hrnet_sophon" / "bm1684_mlir_int8_b1" / "manifest.json").read_text())
    assert manifest["label"] == "contract-test"
    assert "sophgo_tpu_mlir" in {t["name"] for t in manifest["toolchains"]}
