"""ONNX Runtime: FP32 graph-optimised and static QDQ INT8 models for any Linux CPU (docker/onnxruntime/)."""

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain, keypoint_figures


class OnnxRuntime(Toolchain):
    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        return keypoint_figures("int8", report.get("accuracy_int8_vs_fp32"))


TOOLCHAIN = OnnxRuntime(
    name="onnxruntime",
    kind="open",
    vendor="Microsoft",
    summary="ONNX Runtime FP32 and static INT8 (QDQ)",
    runner_label="ubuntu-latest",
    verification="FP32: outputs against the export within its tolerance; INT8: keypoints against FP32 on held-out images (the recipe's gate)",
    int8_field="quantize",
    target_fields={'description': 'Open CPU target: graph-optimised ONNX Runtime model, FP32 or static QDQ INT8.',
     'required': ['quantize'],
     'properties': {'quantize': {'enum': ['none', 'int8']},
                    'calibration_method': {'enum': ['minmax', 'entropy', 'percentile']},
                    'per_channel': {'type': 'boolean'},
                    'activation_type': {'enum': ['uint8', 'int8']},
                    'exclude_nodes': {'description': 'Nodes kept in fp32.',
                                      'type': 'array',
                                      'maxItems': 256,
                                      'uniqueItems': True,
                                      'items': {'type': 'string', 'minLength': 1, 'maxLength': 256}},
                    'quantize_ops': {'description': 'ONNX op types made INT8; every other op stays fp32 (default: all that ONNX Runtime quantizes).',
                                     'type': 'array',
                                     'minItems': 1,
                                     'maxItems': 64,
                                     'uniqueItems': True,
                                     'items': {'type': 'string', 'pattern': '^[A-Z][A-Za-z0-9]*$'}},
                    'fp32_depthwise': {'description': 'Keep depthwise convolutions (Conv with group > 1) in fp32.',
                                       'type': 'boolean'},
                    'int8_min_map': {'description': 'Keep convolutions whose output map is smaller than [H, W] in fp32.',
                                     'type': 'array',
                                     'minItems': 2,
                                     'maxItems': 2,
                                     'items': {'type': 'integer', 'minimum': 1}},
                    'max_keypoint_error_px': {'type': 'number', 'exclusiveMinimum': 0},
                    'max_normalized_error': {'type': 'number', 'exclusiveMinimum': 0}}},
)
