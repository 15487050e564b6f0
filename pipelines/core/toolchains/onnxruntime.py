"""ONNX Runtime: FP32 graph-optimised and static QDQ INT8 models for any Linux CPU (docker/onnxruntime/)."""

from pipelines.core.toolchain import Toolchain


TOOLCHAIN = Toolchain(
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
                    'max_keypoint_error_px': {'type': 'number', 'exclusiveMinimum': 0},
                    'max_normalized_error': {'type': 'number', 'exclusiveMinimum': 0}}},
)
