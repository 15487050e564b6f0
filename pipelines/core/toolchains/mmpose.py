"""MMPose export: checkpoint -> TorchScript and ONNX with a parity gate (docker/mmpose/)."""

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain


class MMPoseExport(Toolchain):
    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        diffs = report.get("max_abs_diff")  # export.json: per runtime, per input
        return {"export max abs diff": max(v for per in diffs.values() for v in per.values())} if diffs else {}


TOOLCHAIN = MMPoseExport(
    name="mmpose",
    kind="open",
    vendor="OpenMMLab",
    summary="MMPose 1.x export to TorchScript and ONNX",
    runner_label="ubuntu-latest",
    verification="parity gate: TorchScript and ONNX Runtime outputs against PyTorch within the recipe's tolerance",
)
