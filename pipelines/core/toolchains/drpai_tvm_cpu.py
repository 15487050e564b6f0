"""Renesas DRP-AI TVM, CPU-only mode: the seed's face_deeppose_cpu (deploy.so/.json/.params for the RZ/V's
Cortex-A53), compiled here with an open TVM and checked by running the aarch64 deploy.so under emulation
(docker/drpai_tvm_cpu/).

CPU-only mode is plain TVM Relay for an aarch64 Linux target: the vendor's script needs neither the
DRP-AI Translator nor the MERA DRP plugin, so unlike DRP-AI mode (``drpai_tvm``) it needs nothing from
the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipelines.core.toolchain import Toolchain


class DrpAiTvmCpu(Toolchain):
    def needs_calibration(self, target: Mapping[str, Any]) -> bool:
        return True  # no quantisation, but both checks run on the calibration step's held-out images

    def figures(self, report: Mapping[str, Any]) -> dict[str, float]:
        out = {}
        if twin := report.get("x86_twin_vs_export"):
            out["x86 twin max abs diff"] = twin["max_abs_diff"]
        if emulated := report.get("emulated_vs_export"):
            out["aarch64 (qemu) max abs diff"] = emulated["max_abs_diff"]
        return out


TOOLCHAIN = DrpAiTvmCpu(
    name="drpai_tvm_cpu",
    kind="open",
    vendor="Renesas",
    summary="DRP-AI TVM CPU-only mode for RZ/V (aarch64 deploy.so), compiled here and run under qemu-aarch64",
    runner_label="ubuntu-latest",
    verification=("the shipped aarch64 deploy.so, run under qemu-aarch64 (Cortex-A53) by a graph-executor loader with "
                  "an aarch64 TVM runtime, matches the TorchScript export within the export's tolerance (and so does an "
                  "x86-64 build of the same Relay module on every held-out image)"),
    target_fields={
        "description": "DRP-AI TVM CPU-only mode (the seed's TorchScript variant of compile_cpu_only_onnx_model.py).",
        "required": ["frontend", "product"],
        "properties": {
            "frontend": {"description": "The seed's frontend: from_pytorch on the export's TorchScript.",
                         "const": "torchscript"},
            "product": {"description": "The RZ/V board (all run the model on their Cortex-A53 cores).",
                        "enum": ["V2L", "V2M", "V2MA"]},
            "emulated_images": {"description": "Held-out images the aarch64 deploy.so is run on under emulation "
                                               "(minutes each for a ResNet-50; default 1).",
                                "type": "integer", "minimum": 1, "maximum": 16},
        },
    },
)
