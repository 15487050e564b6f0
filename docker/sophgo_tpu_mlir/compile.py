"""Sophgo TPU-MLIR step for BM1684, as sophon-demo's gen_*bmodel_mlir.sh run it, with the recipe's values.

  model_transform.py --model_name NET --model_def M.onnx --input_shapes [[N,3,H,W]]
      --mean m,m,m --scale s,s,s --pixel_format rgb|bgr --mlir NET.mlir
      [--test_input IMG --test_result NET_top_outputs.npz]            (INT8: a calibration image)
  run_calibration.py NET.mlir --dataset DIR --input_num COUNT -o NET_cali_table   (INT8)
  model_deploy.py --mlir NET.mlir --quantize F32|INT8 --chip bm1684 [--calibration_table NET_cali_table]
      [--test_input NET_in_f32.npz --test_reference NET_top_outputs.npz] --model OUT/NET.bmodel

Mean and scale are the recipe's normalisation ((x - mean) * scale, scale = 1/std) in its own
channel order; sophon-demo's HRNet script has 123.675 for the green mean, a typo this avoids.
BM1684 has no F16 in TPU-MLIR, so F32 and INT8 are the choices.
Inputs: /in/params.json, /in/model/model.onnx, /in/calibration/ (INT8). Output: /out/<output>/NET.bmodel.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from posepipe_step import OUT, PARAMS, SETTINGS as S, fail, mean_std, run

WORK = Path("/tmp/tpu_mlir")
NET = PARAMS["output"]


def tool(name: str) -> str:
    """Newer wheels install the tools without the .py suffix."""
    found = shutil.which(f"{name}.py") or shutil.which(name)
    if found is None:
        fail(f"{name}.py is not on PATH in the provisioned image")
    return found


def main() -> None:
    WORK.mkdir()
    OUT.mkdir(parents=True)
    n = PARAMS["normalization"]
    mean, std = mean_std()
    shape = json.dumps([PARAMS["input"]["shape"]]).replace(" ", "")
    transform = [tool("model_transform"), "--model_name", NET, "--model_def", "/in/model/model.onnx",
                 "--input_shapes", shape, "--mean", ",".join(f"{m:g}" for m in mean),
                 "--scale", ",".join(f"{1 / s:.8g}" for s in std), "--pixel_format", n["channel_order"].lower(),
                 "--mlir", f"{NET}.mlir"]
    deploy = [tool("model_deploy"), "--mlir", f"{NET}.mlir", "--quantize", S["quantize"], "--chip", S["chip"]]
    if S["quantize"] == "INT8":
        dataset = Path("/in/calibration/calibration")  # the recipe's calibration set, and nothing else
        images = sorted(dataset.iterdir())
        transform += ["--test_input", str(images[0]), "--test_result", f"{NET}_top_outputs.npz"]
        run(transform, cwd=WORK)
        run([tool("run_calibration"), f"{NET}.mlir", "--dataset", str(dataset), "--input_num", str(len(images)),
             "-o", f"{NET}_cali_table"], cwd=WORK)
        deploy += ["--calibration_table", f"{NET}_cali_table",
                   "--test_input", f"{NET}_in_f32.npz", "--test_reference", f"{NET}_top_outputs.npz"]
    else:
        run(transform, cwd=WORK)
    run(deploy + ["--model", str(OUT / f"{NET}.bmodel")], cwd=WORK)
    if not (OUT / f"{NET}.bmodel").is_file():
        fail("model_deploy finished without writing the bmodel")
    print(f"sophgo_tpu_mlir: {OUT.name}/{NET}.bmodel ready ({S['quantize']})", flush=True)


if __name__ == "__main__":
    main()
