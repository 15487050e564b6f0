"""Sophgo BM1684 step: the seed's gen_fp32bmodel.sh / gen_int8bmodel.sh, with the recipe's values.

- FP32: python3 -m bmneto --model=M.onnx --shapes=[[N,3,H,W]] --target=BM1684 --outdir=OUT
  --net_name=NAME --opt=2 --dyn=false --cmp=true  ->  OUT/compilation.bmodel
- INT8 (one-shot auto calibration): python3 -m ufw.cali.cali_model --net_name NAME --model M.onnx
  --cali_image_path DIR --cali_image_preprocess 'resize_h=H,resize_w=W;mean_value=..,scale=..,bgr2rgb=True'
  --input_shapes [N,3,H,W] --cali_iterations=COUNT --target=BM1684
  --convert_bmodel_cmd_opt='-outdir=OUT --target=BM1684 -opt=2 -v=4'
  The calibration images are the recipe's calibration set (/in/calibration); mean and scale are the recipe's
  normalisation, listed in the decoded image's BGR channel order as Sophgo's own scripts do.
- combine: bm_model.bin --combine A.bmodel B.bmodel -o compilation.bmodel (batch 1 + 4 in one file)
Every bmodel's `bm_model.bin --info` is kept as bmodel_info.txt.
Output: /out/<output>/compilation.bmodel + bmodel_info.txt.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from posepipe_step import OUT, PARAMS, SETTINGS as S, fail, mean_std, run

WORK = Path("/tmp/sophgo")
NET = PARAMS["output"]


def preprocess_option() -> str:
    _, _, h, w = PARAMS["input"]["shape"]
    n = PARAMS["normalization"]
    mean, std = mean_std("BGR")  # listed in the decoded (BGR) order, as Sophgo's scripts do
    means = ":".join(f"{m:g}" for m in mean)
    scales = ":".join(f"{1 / s:.8g}" for s in std)
    return f"resize_h={h},resize_w={w};mean_value={means},scale={scales},bgr2rgb={n['channel_order'] == 'RGB'}"


def compile_one(model: str, built: Path) -> Path:
    shape = PARAMS["input"]["shape"]
    if S["quantize"] == "fp32":
        run(["python3", "-m", "bmneto", f"--model={model}", f"--shapes=[{json.dumps(shape).replace(' ', '')}]",
             "--target=BM1684", f"--outdir={built}", f"--net_name={NET}", "--opt=2", "--dyn=false", "--cmp=true"], cwd=WORK, what="bmneto")
    else:
        images = Path("/in/calibration/calibration")  # the recipe's calibration set, and nothing else
        run(["python3", "-m", "ufw.cali.cali_model", "--net_name", NET, "--model", model,
             "--cali_image_path", str(images), "--cali_image_preprocess", preprocess_option(),
             "--input_shapes", json.dumps(shape).replace(" ", ""), f"--cali_iterations={len(list(images.iterdir()))}",
             "--target=BM1684", f"--convert_bmodel_cmd_opt=-outdir={built} --target=BM1684 -opt=2 -v=4"], cwd=WORK, what="ufw.cali.cali_model")
    found = sorted(WORK.rglob("compilation.bmodel"))  # the auto-cali tool may nest it under <net>_batch<N>/
    if len(found) != 1:
        fail(f"expected one compilation.bmodel under {WORK}, found {[str(p) for p in found]}")
    return found[0]


def main() -> None:
    WORK.mkdir()
    OUT.mkdir(parents=True)
    if "combine" in S:
        parts = [str(next(Path(f"/in/{ref}").rglob("compilation.bmodel"))) for ref in S["combine"]]
        run(["bm_model.bin", "--combine", *parts, "-o", str(OUT / "compilation.bmodel")], cwd=WORK, what="bm_model.bin --combine")
    else:
        shutil.copyfile(compile_one("/in/model/model.onnx", WORK / "out"), OUT / "compilation.bmodel")
    info = subprocess.run(["bm_model.bin", "--info", str(OUT / "compilation.bmodel")], capture_output=True, text=True)
    if info.returncode != 0:
        fail(f"bm_model.bin --info failed: {info.stderr.strip()}")
    (OUT / "bmodel_info.txt").write_text(info.stdout)
    print(info.stdout, flush=True)


if __name__ == "__main__":
    main()
