"""Kneron step: the documented ktc flow, from the exported opset-11 ONNX to a .nef.

torch_exported_onnx_flow (the Python form of pytorch_exported_onnx_preprocess.py, which replaced
the seed's removed pytorch2onnx.py) -> ktc.ModelConfig(id, version, platform) -> evaluate ->
analysis with the recipe's calibration images, preprocessed with the recipe's normalisation
(NCHW, as ktc takes them since v0.21) -> .bie -> ktc.compile -> .nef, then the E2E simulator
compares the .nef with the float model on a calibration image.
Inputs: /in/params.json, /in/model/model.onnx, /in/calibration/ (list.json, images/). Output: /out/<output>/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ktc
import numpy as np
import onnx

from posepipe_step import OUT, PARAMS, SETTINGS as S, load_image, max_abs_diff

FLOW = Path("/tmp/kneron_flow")


def calibration_inputs() -> list[np.ndarray]:
    listing = json.loads(Path("/in/calibration/list.json").read_text())
    return [load_image((Path("/in/calibration") / e["file"]).read_bytes()) for e in listing["calibration"]]


def main() -> None:
    FLOW.mkdir(parents=True)
    OUT.mkdir(parents=True)
    name = PARAMS["input"]["name"]
    model = ktc.onnx_optimizer.torch_exported_onnx_flow(onnx.load("/in/model/model.onnx"))
    optimized = FLOW / "model.opt.onnx"
    onnx.save(model, str(optimized))
    km = ktc.ModelConfig(S["model_id"], S["model_version"], S["platform"], onnx_model=model)
    km.evaluate()
    inputs = calibration_inputs()
    bie = km.analysis({name: inputs}, output_dir=str(FLOW), threads=2)
    nef = ktc.compile([km], output_dir=str(FLOW))
    reference = ktc.kneron_inference([inputs[0]], onnx_file=str(optimized), input_names=[name])
    on_chip = ktc.kneron_inference([inputs[0]], nef_file=nef, input_names=[name], platform=int(S["platform"]))
    diff = max_abs_diff(reference, on_chip)
    for path in (nef, bie, optimized):
        shutil.copyfile(path, OUT / Path(path).name)
    report = {"platform": S["platform"], "model_id": S["model_id"], "model_version": S["model_version"],
              "calibration_images": len(inputs), "nef_vs_float_max_abs_diff": diff}
    (OUT / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
