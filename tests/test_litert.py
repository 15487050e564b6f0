"""LiteRT full-integer INT8 and Arm Ethos-U targets built for real (a random-weight DeepPose, synthetic calibration
scenes served over loopback): the .tflite checked in LiteRT's interpreter, compiled by vela for an Ethos-U55 and an
Ethos-U65, run by its runner, rebuilt byte for byte; and a model that cannot be fully quantised refused plainly."""

from __future__ import annotations

import json

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.commands.evaluate import evaluate
from pipelines.core.errors import StepFailed
from pipelines.core.layout import Layout
from pipelines.core.plan import REFERENCE

from .test_evaluate import labelled_set, photos  # noqa: F401
from .test_pipeline import (assert_label_follows_the_figures, checkout_with, mmpose_image, random_weight_recipe,  # noqa: F401
                            run_in, scenes, server)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.images("litert", "ethos_u", "calibration")]
NAME = "face_deeppose"
TARGETS = ("litert_int8", "ethos_u55", "ethos_u65")


@pytest.fixture(scope="module")
def litert_checkout(tmp_path_factory) -> Layout:
    return checkout_with(tmp_path_factory.mktemp("litert-checkout"), ("mmpose", "calibration", "litert", "ethos_u"))


def test_a_full_integer_tflite_is_checked_compiled_for_ethos_u_and_reproducible(mmpose_image, scenes, server, photos,  # noqa: F811
                                                                                litert_checkout, tmp_path):
    text, _ = random_weight_recipe(NAME, mmpose_image, scenes, server, tmp_path)
    (litert_checkout.recipes / f"{NAME}.yaml").write_text(text)
    for target in TARGETS:
        build(litert_checkout, BuildRequest(NAME, target, progress=False, jobs=2))
    art = litert_checkout.artifacts / NAME
    manifest = json.loads((art / "litert_int8" / "manifest.json").read_text())
    assert_label_follows_the_figures(manifest)
    assert manifest["label"] == "verified", manifest["checks"]
    out = art / "litert_int8" / f"{NAME}_litert_int8"
    assert {p.name for p in out.iterdir()} == {"model.tflite", "decode.json", "report.json"}
    report = json.loads((out / "report.json").read_text())
    assert report["rewrites"] == {"applied": {"pad_relu_maxpool": ["/model/backbone/maxpool/MaxPool"]}, "max_abs_diff_vs_export": 0.0}
    assert report["converter"]["backend"] == "flatbuffer_direct" and report["converter"]["onnxsim"] is False
    assert report["input"]["dtype"] == "int8" and report["input"]["layout"] == "NHWC"
    assert report["outputs"] == [{**report["outputs"][0], "name": "coords", "layout": "as exported"}]
    assert report["accuracy_int8_vs_fp32"]["images"] >= 16
    decode = json.loads((out / "decode.json").read_text())
    assert decode["tflite"]["input"] == report["input"] and decode["keypoints"]  # what a board needs, beside the export's facts
    assert out.joinpath("model.tflite").read_bytes()[4:8] == b"TFL3"

    for target, accelerator in (("ethos_u55", "Ethos_U55_128"), ("ethos_u65", "Ethos_U65_256")):
        manifest = json.loads((art / target / "manifest.json").read_text())
        assert manifest["label"] == "compiled"  # nothing here runs an Ethos-U model
        assert [s["id"] for s in manifest["steps"]][-2:] == [f"{NAME}/litert_int8", f"{NAME}/{target}"]
        folder = next((art / target).glob(f"{NAME}_ethos_*"))
        vela = json.loads((folder / "report.json").read_text())
        assert vela["vela"]["accelerator"] == accelerator and vela["vela"]["attempts"][-1]["result"] == "compiled"
        assert vela["estimate"]["cycles_total"] > 0 and vela["estimate"]["inference_ms"] > 0
        assert 0 < vela["operators"]["npu_share"] <= 1 and vela["operators"]["cpu"] == len(vela["operators"]["on_cpu"])
        assert (folder / "model_vela.tflite").stat().st_size > 0 and (folder / "summary.csv").is_file()

    # the .tflite runs here: its toolchain's runner, on a labelled set, beside the FP32 export
    data = labelled_set(photos, tmp_path / "set.zip", None, decode["keypoints"])
    scores = evaluate(litert_checkout, BuildRequest(NAME, progress=False, jobs=2), ["litert_int8"], data)
    assert set(scores) == {REFERENCE, "litert_int8"} and scores["litert_int8"]["inputs"] == 32

    for target in TARGETS:  # every step run again and compared: onnx2tf and vela are deterministic
        build(litert_checkout, BuildRequest(NAME, target, progress=False, jobs=2, check=True))
        manifest = json.loads((art / target / "manifest.json").read_text())
        assert manifest["reproducibility"]["differing_files"] == {s["id"]: [] for s in manifest["steps"]}


def test_a_model_that_cannot_be_fully_quantised_fails_naming_the_op(mmpose_image, scenes, server, tmp_path):  # noqa: F811
    """DeepPose without its rewrite keeps a padded MaxPool, which onnx2tf lowers to PADV2: no full-integer model."""
    (tmp_path / "repo").mkdir()
    layout = checkout_with(tmp_path / "repo", ("mmpose", "calibration", "litert"))
    text, _ = random_weight_recipe(NAME, mmpose_image, scenes, server, tmp_path)
    (layout.recipes / f"{NAME}.yaml").write_text(text.replace("    rewrites: [pad_relu_maxpool]", "    rewrites: []", 1))
    with pytest.raises(StepFailed, match=r"could not make a full-integer model: .*op_type=PADV2"):
        build(layout, BuildRequest(NAME, "litert_int8", progress=False, jobs=2))
    assert not (layout.artifacts / NAME / "litert_int8").exists()  # nothing half-made is placed
