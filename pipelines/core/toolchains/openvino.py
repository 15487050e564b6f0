"""OpenVINO: IR for Intel CPUs, iGPUs and NPUs at FP32, FP16 or NNCF INT8, each checked here by the
CPU plugin against the FP32 export (docker/openvino/)."""

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain, keypoint_figures

LIMIT = {"type": "number", "exclusiveMinimum": 0}

class OpenVino(Toolchain):
    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        diff = report.get("ir_vs_export_max_abs_diff")
        return {**({"IR max abs diff": diff} if diff is not None else {}),
                **keypoint_figures("int8", report.get("accuracy_int8_vs_fp32"))}


TOOLCHAIN = OpenVino(
    name="openvino",
    kind="open",
    vendor="Intel",
    summary="OpenVINO IR (FP32, FP16, NNCF INT8), run by the CPU plugin here",
    runner_label="ubuntu-latest",
    verification=("the IR run by OpenVINO's CPU plugin (f32 inference precision) against the FP32 export: FP32 within the "
                  "export's tolerance, FP16 within the target's max_abs_diff, INT8 keypoints on held-out images within "
                  "the target's limits"),
    int8_field="precision",
    target_fields={
        "description": "OpenVINO IR (model.xml + model.bin) from the ONNX export; INT8 by NNCF post-training quantisation.",
        "required": ["precision"],
        "allOf": [
            {"if": {"properties": {"precision": {"const": "INT8"}}},  # a check needs a limit to hold it
             "then": {"anyOf": [{"required": ["max_keypoint_error_px"]}, {"required": ["max_normalized_error"]}]}},
            {"if": {"properties": {"precision": {"const": "FP16"}}}, "then": {"required": ["max_abs_diff"]}},
        ],
        "properties": {
            "precision": {"enum": ["FP32", "FP16", "INT8"]},
            "preset": {"description": "NNCF's quantisation preset (INT8): performance (symmetric) or mixed "
                                      "(asymmetric activations).", "enum": ["performance", "mixed"]},
            "subset_size": {"description": "Calibration images NNCF uses (INT8; default: all of the recipe's).",
                            "type": "integer", "minimum": 1, "maximum": 10000},
            "ignored_scope": {"description": "Nodes NNCF keeps in floating point (INT8), by name or op type.",
                              "type": "object", "additionalProperties": False,
                              "properties": {k: {"type": "array", "maxItems": 256, "uniqueItems": True,
                                                 "items": {"type": "string", "minLength": 1, "maxLength": 256}}
                                             for k in ("names", "types")}},
            "max_abs_diff": {"description": "Gate (FP16): max abs difference of the IR's outputs from the export's.", **LIMIT},
            "max_keypoint_error_px": {"description": "Gate (INT8): mean keypoint error vs the FP32 export.", **LIMIT},
            "max_normalized_error": {"description": "Gate (INT8): the same error over the input diagonal.", **LIMIT},
        },
    },
)
