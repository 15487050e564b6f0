"""The INT8 accuracy gate on a model with real peaks, for ONNX Runtime and for Sophgo TPU-MLIR (the
bmodel run in its cmodel simulator): it passes a sound calibration and fails a deliberately broken
one (calibration scenes darkened to 10 %: wrong scales)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipelines.edges.containers.docker_driver import DockerDriver, Mount
from pipelines.edges.containers.images import ImageBuilder, load_toolchain
from pipelines.core.layout import REPO_ROOT

from .conftest import SHARED_STORE
from .test_pipeline import scenes, mmpose_image  # noqa: F401 (module fixtures)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.images("onnxruntime", "sophgo_tpu_mlir")]

COMMON = {
    "stage": "compile", "output": "tiny_int8", "task": "topdown_heatmap", "frontend": "onnx",
    "input": {"name": "input", "shape": [1, 3, 64, 64]},
    "outputs": [{"name": "heatmaps", "shape": [1, 3, 16, 16]}],
    "normalization": {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "channel_order": "RGB"},
}
SETTINGS = {
    "onnxruntime": {"quantize": "int8", "calibration_method": "minmax", "per_channel": True,
                    "activation_type": "uint8", "max_keypoint_error_px": 1.0},
    "sophgo_tpu_mlir": {"chip": "bm1684", "quantize": "INT8", "calibration_method": "max", "batch": 1,
                        "max_keypoint_error_px": 1.0},
}
# TPU-MLIR's own comparison may refuse the broken calibration first (model_deploy then writes no bmodel).
GATE_MESSAGE = {"onnxruntime": ("accuracy gate: mean keypoint error",),
                "sophgo_tpu_mlir": ("accuracy gate (cmodel simulator vs the fp32 export): mean keypoint error",
                                    "its own comparison failed")}
ERRORS = {"onnxruntime": "accuracy_int8_vs_fp32", "sophgo_tpu_mlir": "simulator_vs_fp32_export"}


def run_toolchain(name: str, params: dict, inputs: list[Mount], work: Path, script: str = "command") -> tuple[int, Path]:
    """One container of a real toolchain, the way the engine runs it (``script``: which of its commands)."""
    driver = DockerDriver.from_env()
    spec = load_toolchain(REPO_ROOT / "docker", name)
    image = ImageBuilder(driver, REPO_ROOT / "docker", SHARED_STORE).ensure(spec).id
    out = work / "out"
    out.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(out, 1000, 1000)
    (work / "params.json").write_text(json.dumps(params))
    res = driver.run(
        image=image, command=list(spec.argv(script)),
        mounts=[Mount(work / "params.json", "/in/params.json"), *inputs, Mount(out, "/out", False)],
        env={"SOURCE_DATE_EPOCH": "315532800"}, label=f"test/{name}", log_path=work / "log", on_line=lambda line: None, timeout=900,
    )
    return res.exit_code, out


def quantize(scenes: Path, archive: str, work: Path, toolchain: str = "onnxruntime") -> tuple[int, dict | None, str]:
    """The calibration step on ``archive``, then an INT8 compile; (exit code, report, log)."""
    code, calibration = run_toolchain("calibration", {"select": "scenes/*.png", "count": 24, "held_out": 16},
                                      [Mount(scenes / archive, "/in/archive")], work / "calibration")
    assert code == 0, (work / "calibration" / "log").read_text()
    params = {**COMMON, "settings": SETTINGS[toolchain]}
    code, out = run_toolchain(toolchain, params, [Mount(scenes / "model", "/in/model"), Mount(calibration, "/in/calibration")],
                              work / "quantize")
    report = out / "tiny_int8" / "report.json"
    return code, json.loads(report.read_text()) if report.exists() else None, (work / "quantize" / "log").read_text()


def test_trained_model_has_real_peaks(scenes):
    assert json.loads((scenes / "train.json").read_text())["fp32_mean_error_px"] < 3.0  # of a 64 px input


@pytest.mark.parametrize("toolchain", ["onnxruntime", "sophgo_tpu_mlir"])
def test_sound_calibration_passes_the_gate(scenes, tmp_path, toolchain):
    code, report, log = quantize(scenes, "calibration.zip", tmp_path, toolchain)
    assert code == 0, log[-3000:]
    acc = report[ERRORS[toolchain]]
    assert acc["images"] == 16 and acc["mean_error_px"] <= 1.0 and acc["pck_2px"] >= 0.9
    assert report["checks"] and all(c["passed"] for c in report["checks"])
    if toolchain == "onnxruntime":
        assert report["int8_opset"] == 13 and report["fp32_nodes"] == []
    else:  # a real BM1684 bmodel, checked by TPU-MLIR itself and by the simulator run
        assert report["model_deploy"]["verdict"] == "PASSED" and report["model_deploy"]["lowering"]["cosine"] > 0.99
        assert report["bmodel_bytes"] > 0 and report["tensors"]["outputs"][0]["name"]


@pytest.mark.parametrize("toolchain", ["onnxruntime", "sophgo_tpu_mlir"])
def test_broken_calibration_fails_the_gate(scenes, tmp_path, toolchain):
    code, report, log = quantize(scenes, "broken_calibration.zip", tmp_path, toolchain)
    assert code != 0 and any(m in log for m in GATE_MESSAGE[toolchain]), log[-3000:]
    assert [c["passed"] for c in report["checks"]][-1] is False
    if ERRORS[toolchain] in report:  # the keypoint comparison ran: its figures say why
        assert report[ERRORS[toolchain]]["mean_error_px"] > 1.0
