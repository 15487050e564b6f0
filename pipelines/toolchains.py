"""The toolchains posepipe knows: which are open, which the user must provision.

A toolchain is an image under ``docker/<name>/`` plus the small script that
runs inside it (see DESIGN.md). This table is the data every command shares;
whether a toolchain is usable right now is ``status()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

from . import provisioning


@dataclass(frozen=True)
class Toolchain:
    name: str
    kind: Literal["open", "vendor"]
    vendor: str
    summary: str
    runner_label: str  # GitHub Actions runner the toolchain's cells need


TOOLCHAINS: dict[str, Toolchain] = {
    t.name: t
    for t in (
        Toolchain("mmpose", "open", "OpenMMLab", "MMPose 1.x export to TorchScript and ONNX", "ubuntu-latest"),
        Toolchain("calibration", "open", "posepipe", "Calibration image sets picked from fetched archives", "ubuntu-latest"),
        Toolchain("onnxruntime", "open", "Microsoft", "ONNX Runtime FP32 and static INT8 (QDQ)", "ubuntu-latest"),
        Toolchain("drpai_tvm", "vendor", "Renesas", "DRP-AI TVM for RZ/V (deploy.so/.params/.json)", "drpai-tvm"),
        Toolchain("sophgo_nntc", "vendor", "Sophgo", "BMNNSDK2 NNTC for BM1684 / SE5 (.bmodel)", "bmnnsdk2"),
        Toolchain("sophgo_tpu_mlir", "vendor", "Sophgo", "TPU-MLIR for BM1684 (.bmodel), the newer route", "tpu-mlir"),
        Toolchain("vastai_vamc", "vendor", "Vastai", "VAMC build to a vacc model suite", "vamc"),
        Toolchain("kneron", "vendor", "Kneron", "Kneron ktc toolchain for KL520 / KL720 (.nef)", "kneron"),
    )
}


class Status(str, Enum):
    READY = "ready"
    NOT_PROVISIONED = "not provisioned"
    NOT_IMPLEMENTED = "not implemented"


def status(name: str, repo_root: Path) -> Status:
    """Whether a toolchain can build now: its stage exists and, if proprietary, is supplied."""
    stage = repo_root / "docker" / name / "toolchain.yaml"
    if not stage.is_file():
        return Status.NOT_IMPLEMENTED
    if TOOLCHAINS[name].kind == "vendor" and provisioning.provisioned(name) is None:
        return Status.NOT_PROVISIONED
    return Status.READY
