"""Vastai step: write the `vamc build` yaml from the recipe and run it, as the seed does by hand.

The yaml follows the seed's build_in/build/mmpose_hrnetpose.yaml: name, frontend (input name
and shape, the ONNX checkpoint), backend tvm_vacc with dtype fp16|int8 (int8: calibrate_mode,
quantize_per_channel and a dataset with the preprocessing ops), workspace. The dataset's
Normalize uses the recipe's normalisation, not a copied constant. The output suite is found by
its files (the seed's README and yaml disagree on where it lands) and copied to /out/<output>/.
Inputs: /in/params.json, /in/model/model.onnx, /in/calibration/ (int8: the calibration step). Output: /out/<output>/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from posepipe_step import OUT, PARAMS, SETTINGS as S, fail, mean_std, run

WORK = Path("/tmp/workspace")
NAME = PARAMS["output"].split("-")[0]  # "hrnet_pose-int8-kl_divergence-512-vacc" -> model prefix "hrnet_pose"


def q(value) -> str:
    return json.dumps(value)  # JSON scalars and lists are valid YAML flow values


def build_yaml() -> str:
    _, _, h, w = PARAMS["input"]["shape"]
    lines = [
        f"name: {NAME}",
        "frontend:",
        "  shape:",
        f"    {q(PARAMS['input']['name'])}: {q(PARAMS['input']['shape'])}",
        "  type: onnx",
        "  checkpoint: /in/model/model.onnx",
        "backend:",
        "  type: tvm_vacc",
        f"  dtype: {S['dtype']}",
        "  compile:",
        f"    cluster_mode: {S.get('cluster_mode', 0)}",
    ]
    if S["dtype"] == "int8":
        folder = Path("/in/calibration/calibration")  # the recipe's calibration set, and nothing else
        files = sorted(folder.iterdir())
        suffix = files[0].suffix.lstrip(".")
        mean, std = ([v / 255 for v in values] for values in mean_std())
        lines += [
            "  quantize:",
            f"    calibrate_mode: {S.get('calibrate_mode', 'max')}",
            f"    quantize_per_channel: {q(S.get('quantize_per_channel', True))}",
            "dataset:",
            f"  path: {folder}",
            "  sampler:",
            f"    suffix: {suffix}",
            f"    get_data_num: {len(files)}",
            "  process_ops:",
            "    - type: DecodeImage",
            "    - type: Resize",
            f"      size: {q([max(h, w), -1])}",
            "      adaptive_side: long",
            "    - type: Pad",
            "      pad_to_square: true",
            "    - type: Normalize",
            "      div255: true",
            f"      mean: {q(mean)}",
            f"      std: {q(std)}",
            "    - type: ToTensor",
        ]
    lines += ["workspace:", f"  work_dir: {WORK / 'vacc'}", "  enable_ir: false", "  save_log: true"]
    return "\n".join(lines) + "\n"


def main() -> None:
    WORK.mkdir(parents=True)
    config = WORK / "build.yaml"
    config.write_text(build_yaml())
    vamc = shutil.which("vamc")
    if vamc is None:
        fail("`vamc` is not on PATH in the provisioned image")
    run([vamc, "build", str(config)], cwd=WORK, what="vamc build")
    suites = sorted({p.parent for p in WORK.rglob("*.params")})
    if len(suites) != 1:
        fail(f"expected one model suite (*.so/*.json/*.params) under {WORK}, found {[str(s) for s in suites]}")
    shutil.copytree(suites[0], OUT)
    shutil.copyfile(config, OUT / "build.yaml")  # what was compiled, for the record
    print(f"vastai_vamc: {OUT.name} ready ({S['dtype']})", flush=True)


if __name__ == "__main__":
    main()
