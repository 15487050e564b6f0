"""Rockchip RKNN targets built for real by rknn-toolkit2 (random-weight models, synthetic calibration scenes served
over loopback): RTMPose-m at FP16 for the RK3588 with its SPPF pools rewritten, DeepPose at INT8, each checked in
the toolkit's simulator against the FP32 export; the INT8 one run by its runner (which rebuilds it and proves it is
the checked model) and built again with --check, where only the .rknn's bytes may differ."""

from __future__ import annotations

import json
import re

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.commands.evaluate import evaluate
from pipelines.commands.predict import predict
from pipelines.core.layout import Layout
from pipelines.core.plan import REFERENCE

from .test_evaluate import labelled_set, photos  # noqa: F401
from .test_pipeline import (assert_label_follows_the_figures, checkout_with, mmpose_image, random_weight_recipe,  # noqa: F401
                            run_in, scenes, server)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.images("rknn", "calibration")]


@pytest.fixture(scope="module")
def rknn_checkout(tmp_path_factory) -> Layout:
    return checkout_with(tmp_path_factory.mktemp("rknn-checkout"), ("mmpose", "calibration", "rknn"))


def built_report(layout: Layout, recipe: str, target: str) -> tuple[dict, dict]:
    art = layout.artifacts / recipe / target
    manifest = json.loads((art / "manifest.json").read_text())
    out = art / f"{recipe}_{target}"
    assert {p.name for p in out.iterdir()} == {"model.rknn", "decode.json", "report.json"}
    return manifest, json.loads((out / "report.json").read_text())


def test_rtmpose_fp16_matches_the_export_in_the_simulator_after_the_pool_rewrite(mmpose_image, scenes, server,  # noqa: F811
                                                                                  rknn_checkout, tmp_path):
    text, _ = random_weight_recipe("rtmpose_m_body", mmpose_image, scenes, server, tmp_path)
    # the recipe's own FP16 limit (1 px mean keypoint error), not the opened INT8 gates of random weights
    text = re.sub(r"(quantize: FP16\n(?:    .*\n)*?    max_keypoint_error_px: )\S+", r"\g<1>1.0", text)
    (rknn_checkout.recipes / "rtmpose_m_body.yaml").write_text(text)
    build(rknn_checkout, BuildRequest("rtmpose_m_body", "rk3588_fp16", progress=False, jobs=2))
    manifest, report = built_report(rknn_checkout, "rtmpose_m_body", "rk3588_fp16")
    assert_label_follows_the_figures(manifest)
    assert manifest["label"] == "verified", manifest["checks"]
    applied = report["rewrites"]["applied"]["cascade_maxpool"]
    assert len(applied) == 2 and {"9x9 -> 2 x 5x5", "13x13 -> 3 x 5x5"} == {a.split("(")[1].rstrip(")") for a in applied}
    assert report["rewrites"]["max_abs_diff_vs_export"] == 0.0  # exact in ONNX Runtime
    measured = report["simulator_vs_fp32_export"]
    assert measured["images"] >= 16 and measured["mean_error_px"] <= 1.0 and measured["min_cosine"] > 0.999
    assert report["platform"] == "rk3588" and report["quantize"] == "FP16" and report["algorithm"] is None
    assert report["ops"]["npu_ops"] > 0 and isinstance(report["ops"]["cpu_ops"], list)
    assert "before export_rknn" in report["check_ran_on"]


def test_an_int8_rknn_is_checked_run_by_its_runner_and_its_rebuild_differs_only_in_the_rknn_bytes(
        mmpose_image, scenes, server, photos, rknn_checkout, tmp_path, capsys):  # noqa: F811
    text, _ = random_weight_recipe("face_deeppose", mmpose_image, scenes, server, tmp_path)
    (rknn_checkout.recipes / "face_deeppose.yaml").write_text(text)
    build(rknn_checkout, BuildRequest("face_deeppose", "rk3566_int8", progress=False, jobs=2))
    manifest, report = built_report(rknn_checkout, "face_deeppose", "rk3566_int8")
    assert_label_follows_the_figures(manifest)
    assert manifest["label"] == "verified", manifest["checks"]
    assert report["quantize"] == "INT8" and report["algorithm"] == "normal" and report["rewrites"]["applied"] == {}
    assert len(report["simulator_outputs_sha256"]) == report["simulator_vs_fp32_export"]["images"] >= 16
    assert "not reproducible" in report["reproducibility"]

    # the runner rebuilds the model (the simulator cannot load a .rknn), proves it gives the recorded outputs, runs it
    found = predict(rknn_checkout, BuildRequest("face_deeppose", "rk3566_int8", progress=False), photos / "photos" / "00.jpg",
                    tmp_path / "rknn.png")
    assert len(found["keypoints"]) == 98 and (tmp_path / "rknn.png").stat().st_size > 0
    decode = json.loads((rknn_checkout.artifacts / "face_deeppose" / "rk3566_int8" / "face_deeppose_rk3566_int8" / "decode.json").read_text())
    data = labelled_set(photos, tmp_path / "set.zip", None, decode["keypoints"])
    scores = evaluate(rknn_checkout, BuildRequest("face_deeppose", progress=False, jobs=2), ["rk3566_int8"], data)
    assert set(scores) == {REFERENCE, "rk3566_int8"} and scores["rk3566_int8"]["inputs"] == 32

    # built again: only the .rknn's bytes may move; report.json (with the simulator outputs' digests) may not
    capsys.readouterr()
    build(rknn_checkout, BuildRequest("face_deeppose", "rk3566_int8", progress=False, jobs=2, check=True))
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("check face_deeppose/rk3566_int8: "))
    # either the bytes happened to agree, or only the .rknn moved and the console says the report states why
    assert line.endswith(": reproducible") or "NOT reproducible: face_deeppose_rk3566_int8/model.rknn differ, as its report states" in line
    again = json.loads((rknn_checkout.artifacts / "face_deeppose" / "rk3566_int8" / "manifest.json").read_text())
    differing = again["reproducibility"]["differing_files"]
    assert set(differing.pop("face_deeppose/rk3566_int8")) <= {"face_deeppose_rk3566_int8/model.rknn"}
    assert all(files == [] for files in differing.values())
