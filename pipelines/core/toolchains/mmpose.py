"""MMPose export: checkpoint -> TorchScript and ONNX with a parity gate (docker/mmpose/)."""

from pipelines.core.toolchain import Toolchain

TOOLCHAIN = Toolchain(
    name="mmpose",
    kind="open",
    vendor="OpenMMLab",
    summary="MMPose 1.x export to TorchScript and ONNX",
    runner_label="ubuntu-latest",
    verification="parity gate: TorchScript and ONNX Runtime outputs against PyTorch within the recipe's tolerance",
)
