"""OpenVINO targets built for real (random-weight checkpoints of the real models, synthetic calibration
scenes served over loopback), each IR checked by the CPU plugin, and rebuilt byte for byte."""

from __future__ import annotations

import json
import re

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.commands.predict import predict
from pipelines.core.layout import Layout

from .test_pipeline import (assert_label_follows_the_figures, checkout_with, mmpose_image, random_weight_recipe,  # noqa: F401
                            scenes, server)
from .test_predict import photo_from, png_size

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.images("openvino", "calibration")]


@pytest.fixture(scope="module")
def ov_checkout(tmp_path_factory) -> Layout:
    return checkout_with(tmp_path_factory.mktemp("ov-checkout"), ("mmpose", "calibration", "openvino"))


@pytest.mark.parametrize("name", ["face_deeppose", "litehrnet"])  # a regression head and a heatmap one
def test_openvino_irs_are_built_checked_and_reproducible(name, mmpose_image, scenes, server, ov_checkout, tmp_path):  # noqa: F811
    text, _ = random_weight_recipe(name, mmpose_image, scenes, server, tmp_path)
    text += f"  - id: ov_fp32\n    toolchain: openvino\n    output: {name}_ov_fp32\n    precision: FP32\n"  # no recipe ships one
    (ov_checkout.recipes / f"{name}.yaml").write_text(text)
    targets = ("ov_fp32", "ov_fp16", "ov_int8")
    for target in targets:
        build(ov_checkout, BuildRequest(name, target, progress=False, jobs=2))
    for target in targets:
        folder = ov_checkout.artifacts / name / target
        manifest = json.loads((folder / "manifest.json").read_text())
        assert_label_follows_the_figures(manifest)
        assert manifest["label"] == "verified", manifest["checks"]
        out = folder / f"{name}_{target}"
        assert {p.name for p in out.iterdir()} == {"model.xml", "model.bin", "decode.json", "report.json"}
        xml = (out / "model.xml").read_text()
        layers = xml.count("<layer ")  # auto-generated names (a process-wide counter, e.g. Constant_330437) are by position now
        assert all(int(n) < layers for n in re.findall(r'<layer id="\d+" name="[A-Za-z][A-Za-z0-9]*_(\d+)"', xml))
        report = json.loads((out / "report.json").read_text())
        assert report["precision"] == target.removeprefix("ov_").upper()
    fp32 = json.loads((ov_checkout.artifacts / name / "ov_fp32" / f"{name}_ov_fp32" / "report.json").read_text())
    fp16 = json.loads((ov_checkout.artifacts / name / "ov_fp16" / f"{name}_ov_fp16" / "report.json").read_text())
    assert fp32["checks"][0]["figures"]["tolerance"] == 1.0e-4  # held to the export's own tolerance
    assert fp32["ir_vs_export_max_abs_diff"] < fp16["ir_vs_export_max_abs_diff"] <= fp16["settings"]["max_abs_diff"]
    int8 = json.loads((ov_checkout.artifacts / name / "ov_int8" / f"{name}_ov_int8" / "report.json").read_text())
    assert int8["calibration"]["images"] == 8 and int8["accuracy_int8_vs_fp32"]["images"] >= 16
    assert (ov_checkout.artifacts / name / "ov_int8" / f"{name}_ov_int8" / "model.bin").stat().st_size < \
        (ov_checkout.artifacts / name / "ov_fp16" / f"{name}_ov_fp16" / "model.bin").stat().st_size  # INT8 weights

    photo, size = photo_from(scenes, tmp_path / "photo.png")  # the INT8 IR run by its toolchain's runner on a photo
    found = predict(ov_checkout, BuildRequest(name, "ov_int8", progress=False), photo, tmp_path / "ov.png")
    assert len(found["keypoints"]) == len(json.loads((out / "decode.json").read_text())["keypoints"])
    assert png_size(tmp_path / "ov.png") == size

    for target in targets:  # every step run again (cached or not) and compared
        build(ov_checkout, BuildRequest(name, target, progress=False, jobs=2, check=True))
        manifest = json.loads((ov_checkout.artifacts / name / target / "manifest.json").read_text())
        assert manifest["reproducibility"]["checked"]
        assert manifest["reproducibility"]["differing_files"] == {s["id"]: [] for s in manifest["steps"]}
