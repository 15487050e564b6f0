"""Kneron ktc toolchain for KL520 / KL720: ONNX optimise, analysis, compile to .nef (docker/kneron/)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pipelines.core.toolchain import Problem, Toolchain


class Kneron(Toolchain):
    def needs_calibration(self, target: Mapping[str, Any]) -> bool:
        return True  # ktc always quantises (fixed-point NPU)

    def problems(self, t: Mapping[str, Any], recipe: Mapping[str, Any]) -> Iterator[Problem]:
        if recipe["export"]["opset"] > 11:
            yield ("toolchain",), "Kneron's converter takes opset-11 ONNX; set export.opset to 11"


TOOLCHAIN = Kneron(
    name="kneron",
    kind="vendor",
    vendor="Kneron",
    summary="Kneron ktc toolchain for KL520 / KL720 (.nef)",
    runner_label="kneron",
    verification=("none: the E2E simulator's max abs difference to the float model on one calibration image is recorded "
                  "as a figure, but no limit holds it, so a real build is labelled 'compiled'"),
    target_fields={'description': 'Kneron ktc flow: ONNX optimize, ModelConfig, analysis (.bie), compile (.nef).',
     'required': ['platform', 'model_id', 'model_version'],
     'properties': {'platform': {'enum': ['520', '720']},
                    'model_id': {'type': 'integer', 'minimum': 1, 'maximum': 65535},
                    'model_version': {'type': 'string', 'pattern': '^[0-9a-f]{4}$'}}},
)
