"""Rockchip RKNN: .rknn for the NPUs of RK3588, RK3576, RK3566/RK3568, RK3562, RV1126B and RV1103/RV1106, FP16 or
INT8, through rknn-toolkit2 and checked here in its x86 simulator (docker/rknn/)."""

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain, keypoint_figures

LIMIT = {"type": "number", "exclusiveMinimum": 0}
# Platforms rknn-toolkit2 2.5.0 builds for (rk2118 is left out: its compiler aborts the process on a convolution).
PLATFORMS = ("rk3588", "rk3576", "rk3566", "rk3568", "rk3562", "rv1126b", "rv1103", "rv1103b", "rv1106", "rv1106b")
INT8_ONLY = ("rv1103", "rv1103b", "rv1106", "rv1106b")  # their NPUs have no FP16 (the toolkit refuses the build)


class Rknn(Toolchain):
    def needs_calibration(self, target: Mapping[str, Any]) -> bool:
        return True  # INT8 calibrates on the set; every target is checked on its held-out images

    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        measured = report.get("simulator_vs_fp32_export") or {}
        return {**({"simulator max abs diff": measured["max_abs_diff"]} if measured else {}),
                **keypoint_figures("simulator", measured), **({"ops on CPU": len(report["ops"]["cpu_ops"])} if "ops" in report else {})}


TOOLCHAIN = Rknn(
    name="rknn",
    kind="open",
    vendor="Rockchip",
    summary="rknn-toolkit2 .rknn (FP16, INT8) for Rockchip NPUs, checked in its simulator here",
    runner_label="ubuntu-latest",
    verification=("the model rknn-toolkit2 built, run in its x86 simulator on the held-out images right before it was "
                  "exported (the simulator cannot load a .rknn file), against the FP32 export in ONNX Runtime: decoded "
                  "keypoints within the target's limits (and outputs within max_abs_diff, if set)"),
    runner_rebuilds=True,
    target_fields={
        "description": "A .rknn (model.rknn; raw 0-255 NCHW/NHWC pixels in, the recipe's mean/std applied inside) "
                       "from the ONNX export, built by rknn-toolkit2 for one Rockchip platform.",
        "required": ["platform", "quantize"],
        "anyOf": [{"required": ["max_keypoint_error_px"]}, {"required": ["max_normalized_error"]}],  # a check needs a limit
        "if": {"properties": {"platform": {"enum": list(INT8_ONLY)}}},  # their NPUs have no FP16
        "then": {"properties": {"quantize": {"const": "INT8"}}},
        "properties": {
            "platform": {"description": "The Rockchip SoC whose NPU the .rknn is for.", "enum": list(PLATFORMS)},
            "quantize": {"description": "FP16 (not on the RV110x NPUs) or INT8 (w8a8, calibrated on the recipe's "
                                        "calibration images).", "enum": ["FP16", "INT8"]},
            "algorithm": {"description": "The toolkit's INT8 calibration algorithm (default normal; its GDQ needs torch, "
                                         "which the image does not carry).", "enum": ["normal", "mmse", "kl_divergence"]},
            "rewrites": {"description": "Exact graph rewrites applied to the export before conversion (recorded and "
                                        "checked in the report): cascade_maxpool turns stride-1 MaxPools larger than 5x5 "
                                        "(RTMPose's SPPF 9x9 and 13x13) into chains of 5x5 ones, which the toolkit "
                                        "otherwise turns into a global max on small maps.",
                         "type": "array", "uniqueItems": True, "items": {"enum": ["cascade_maxpool"]}},
            "max_abs_diff": {"description": "Gate: max abs difference of the simulator's outputs from the export's.", **LIMIT},
            "max_keypoint_error_px": {"description": "Gate: mean keypoint error vs the FP32 export.", **LIMIT},
            "max_normalized_error": {"description": "Gate: the same error over the input diagonal.", **LIMIT},
        },
    },
)
