"""DRP-AI TVM compile step: the seeds' compile_pytorch_model.py runs, with the recipe's values.

Renesas' tutorial scripts hardcode addr_map_start and a 640x480 BGR pre-processing block
that users sed-edit. This script follows the same documented API (relay frontends,
tvm.relay.mera.drp.build, the DRP-AI Pre-processing Runtime) with the recipe's
addr_map_start, product, input shape and pre-processing, so nothing is edited by hand:

- DRP-AI mode: from_pytorch([("input0", shape)]) or from_onnx, then drp.build for "arm"
  with {"interpreter": False, "addr_map_start", "toolchain_dir", "sdk_root"}, then
  PreRuntime(config, <out>/preprocess, PRODUCT).

The Translator writes into its own folder (output/pp and friends), so each compile works on a
private writable copy of it. Inputs: /in/params.json, /in/model/model.pt|model.onnx.
Output: /out/<output>/{deploy.so, deploy.json, deploy.params[, preprocess/]}.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from posepipe_step import OUT, PARAMS, SETTINGS as S, fail, mean_std

SHAPE = PARAMS["input"]["shape"]


def environment() -> tuple[str, str]:
    """PRODUCT, TRANSLATOR and SDK passed explicitly (v2.x images keep them only in ~/.bashrc)."""
    sdk = os.environ.get("SDK")
    translator = os.environ.get("TRANSLATOR")
    if not sdk or not translator or not Path(translator).is_dir():
        fail(f"the provisioned image must set SDK and TRANSLATOR (got SDK={sdk!r}, TRANSLATOR={translator!r})")
    private = Path("/tmp/drp-ai_translator")
    shutil.copytree(translator, private, symlinks=True)  # the Translator writes into its own folder
    os.environ.update(PRODUCT=S["product"], TRANSLATOR=str(private), SDK=sdk)
    sys.path.insert(0, str(Path(os.environ.get("TVM_ROOT", "/drp-ai_tvm")) / "tutorials"))
    return str(private), sdk


def frontend():
    from tvm import relay

    if S["frontend"] == "torchscript":
        import torch

        model = torch.jit.load("/in/model/model.pt")
        model.eval()
        return relay.frontend.from_pytorch(model, [("input0", SHAPE)])  # the name the seeds' scripts use
    import onnx

    return relay.frontend.from_onnx(onnx.load_model("/in/model/model.onnx"), {PARAMS["input"]["name"]: SHAPE})


def preprocess_runtime() -> None:
    """The recipe's camera input -> the model's input, with the model's own normalisation."""
    from drpai_preprocess import drpai_param, op, preruntime

    block = S["preprocess_runtime"]
    norm = PARAMS["normalization"]
    config = preruntime.Config()
    config.shape_in = list(block["shape_in"])
    config.format_in = getattr(drpai_param.FORMAT, block["format_in"])
    config.order_in = drpai_param.ORDER.HWC
    config.type_in = drpai_param.TYPE.UINT8
    config.shape_out = list(SHAPE)
    config.format_out = getattr(drpai_param.FORMAT, norm["channel_order"])
    config.order_out = drpai_param.ORDER.CHW
    config.type_out = drpai_param.TYPE.FP32
    ops = [op.Crop(*block["crop"])] if block.get("crop") else []
    ops += [
        op.Resize(SHAPE[3], SHAPE[2], op.Resize.BILINEAR),
        op.Normalize([-m for m in mean_std()[0]], [1.0 / s for s in mean_std()[1]]),  # (x - mean) / std on 0-255
    ]
    config.ops = ops
    preruntime.PreRuntime(config, str(OUT / "preprocess"), S["product"])


def drpai_mode(translator: str, sdk: str) -> None:
    from tvm.relay.mera import drp

    mod, params = frontend()
    config = {"interpreter": False, "addr_map_start": S["addr_map_start"], "toolchain_dir": translator, "sdk_root": sdk}
    drp.build(mod, params, "arm", config, output_dir=str(OUT), disable_concat=False)
    preprocess_runtime()


def main() -> None:
    OUT.mkdir(parents=True)
    os.chdir("/tmp")  # PreRuntime writes addr_map.yaml and preprocess.yaml into the working folder
    translator, sdk = environment()
    drpai_mode(translator, sdk)
    missing = [f for f in ("deploy.so", "deploy.json", "deploy.params") if not (OUT / f).is_file()]
    if missing:
        fail(f"the compile finished without {', '.join(missing)} in {OUT.name}")
    print(f"drpai_tvm: {OUT.name} ready (DRP-AI mode, {S['frontend']} frontend)", flush=True)


if __name__ == "__main__":
    main()
