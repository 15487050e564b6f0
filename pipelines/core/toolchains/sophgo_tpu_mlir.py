"""Sophgo TPU-MLIR for BM1684: model_transform, run_calibration, model_deploy, then every bmodel run in
TPU-MLIR's cmodel simulator against the FP32 export (docker/sophgo_tpu_mlir/).

Open (BSD-2) and built by posepipe itself, so it runs here and on any Linux machine with a CPython 3.10.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain, keypoint_figures


class SophgoTpuMlir(Toolchain):
    def needs_calibration(self, target: Mapping[str, Any]) -> bool:
        return True  # INT8 calibrates on the set; every target is checked on its held-out images

    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        return keypoint_figures("simulator", report.get("simulator_vs_fp32_export"))


TOOLCHAIN = SophgoTpuMlir(
    name="sophgo_tpu_mlir",
    kind="open",
    vendor="Sophgo",
    summary="TPU-MLIR for BM1684 (.bmodel), compiled and simulated here",
    runner_label="ubuntu-latest",
    verification=("model_deploy's own cmodel comparison passed, and the bmodel run in the cmodel simulator on held-out "
                  "images gives keypoints within the recipe's limits of the FP32 export's"),
    target_fields={
        "description": "Sophgo TPU-MLIR: model_transform, run_calibration, model_deploy --chip bm1684, checked in the cmodel simulator.",
        "required": ["chip", "quantize", "batch"],
        # a bmodel earns `verified` by two checks; the simulator's is one only if a limit holds it
        "anyOf": [{"required": ["max_keypoint_error_px"]}, {"required": ["max_normalized_error"]}],
        "properties": {
            "chip": {"const": "bm1684"},
            "quantize": {"enum": ["F32", "INT8"]},
            "batch": {"type": "integer", "minimum": 1, "maximum": 64},
            "max_keypoint_error_px": {"description": "Gate: mean keypoint error of the simulated bmodel vs the FP32 export.",
                                      "type": "number", "exclusiveMinimum": 0},
            "max_normalized_error": {"description": "Gate: the same error over the input diagonal.",
                                     "type": "number", "exclusiveMinimum": 0},
            "calibration_method": {"description": "run_calibration --cali_method (INT8): kl (the tool's default) clips "
                                                  "rare large activations, such as heatmap peaks; max keeps them.",
                                   "enum": ["kl", "max", "mse", "percentile9999"]},
            "deploy_tolerance": {"description": "model_deploy's own --tolerance (cosine, euclidean similarity of the "
                                                "bmodel's outputs to the MLIR graph's); default the tool's 0.90, 0.80.",
                                 "type": "array", "minItems": 2, "maxItems": 2,
                                 "items": {"type": "number", "minimum": 0, "maximum": 1}},
        },
    },
)
