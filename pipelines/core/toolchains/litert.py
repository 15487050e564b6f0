"""LiteRT: full-integer INT8 .tflite (int8 in and out) for Arm Cortex-A/M CPUs, Coral-style accelerators and
microNPU compilers, through onnx2tf, checked here in the LiteRT interpreter (docker/litert/)."""

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain, keypoint_figures

LIMIT = {"type": "number", "exclusiveMinimum": 0}


class LiteRt(Toolchain):
    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        return keypoint_figures("int8", report.get("accuracy_int8_vs_fp32"))


TOOLCHAIN = LiteRt(
    name="litert",
    kind="open",
    vendor="Google",
    summary="LiteRT full-integer INT8 .tflite through onnx2tf, run by the LiteRT interpreter here",
    runner_label="ubuntu-latest",
    verification=("the .tflite run by LiteRT's interpreter (builtin int8 kernels) on the held-out images against the "
                  "FP32 export in ONNX Runtime: keypoints within the target's limits; every tensor int8 (or int32)"),
    int8_field="quantize",
    target_fields={
        "description": "Full-integer INT8 .tflite (model.tflite; int8 NHWC input and outputs) from the ONNX export.",
        "required": ["quantize"],
        "anyOf": [{"required": ["max_keypoint_error_px"]}, {"required": ["max_normalized_error"]}],  # a check needs a limit
        "properties": {
            "quantize": {"description": "Full-integer INT8 (the only kind LiteRT targets here are).", "const": "int8"},
            "converter": {"description": "onnx2tf's backend: its own flatbuffer_direct (default, no TensorFlow) or "
                                         "TensorFlow Lite's converter, for graphs the first cannot lower.",
                          "enum": ["flatbuffer_direct", "tf_converter"]},
            "onnxsim": {"description": "Simplify the graph with onnxsim before converting (default true); false where "
                                       "it would undo a rewrite (it folds a zero Pad back into a padded pool).",
                        "type": "boolean"},
            "rewrites": {"description": "Exact graph rewrites applied to the export before conversion (recorded and "
                                        "checked in the report): pad_relu_maxpool turns a padded MaxPool after a Relu "
                                        "into a zero Pad and an unpadded MaxPool (full-integer LiteRT has no padded pool).",
                         "type": "array", "uniqueItems": True, "items": {"enum": ["pad_relu_maxpool"]}},
            "max_keypoint_error_px": {"description": "Gate: mean keypoint error vs the FP32 export.", **LIMIT},
            "max_normalized_error": {"description": "Gate: the same error over the input diagonal.", **LIMIT},
        },
    },
)
