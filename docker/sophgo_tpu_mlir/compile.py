"""Sophgo TPU-MLIR step for BM1684, as sophon-demo's gen_*bmodel_mlir.sh run it, with the recipe's values,
then every bmodel checked twice: by model_deploy's own comparison and by posepipe in the cmodel simulator.

  model_transform --model_name NET --model_def model.onnx --input_shapes [[N,3,H,W]]
      --mean m,m,m --scale s,s,s --pixel_format rgb|bgr --test_input IMG --test_result NET_top_outputs.npz
      --mlir NET.mlir
  run_calibration NET.mlir --dataset DIR --input_num COUNT -o NET_cali_table                       (INT8)
  model_deploy --mlir NET.mlir --quantize F32|INT8 --chip bm1684 [--calibration_table NET_cali_table]
      --test_input NET_in_f32.npz --test_reference NET_top_outputs.npz --model NET.bmodel
  model_tool --info NET.bmodel

all in a work folder: the tools write beside the bmodel, so only a bmodel that passed both checks is
copied to OUT.

Reproducible bytes: model_deploy leaves two things in the bmodel's flatbuffer that change between runs:
the kernel module's mode field, which it does not set (4 bytes of whatever memory held; also why
`model_tool --combine` says "Inconsistent kernel module mode"), and the wall-clock time (ctime(), 25
characters) as Model.time. `model_tool --refresh` rewrites the first as 0 (normal); posepipe then
rewrites the time in place to ctime(SOURCE_DATE_EPOCH) in UTC (same length, so no offset moves).
Both happen before either check runs, so the checked bytes are the shipped bytes; report.json
records what was done.

Mean and scale are the recipe's normalisation ((x - mean) * scale, scale = 1/std) in its own channel
order; sophon-demo's HRNet script has 123.675 for the green mean, a typo this avoids. BM1684 has no F16
in TPU-MLIR, so F32 and INT8 are the choices.

posepipe's own check, independent of the tool's: the held-out calibration images, normalised by the
recipe, run through the bmodel in the cmodel simulator (simulate.py: TPU-MLIR's model runner, one process) and the FP32 ONNX
export in ONNX Runtime; keypoints decoded from both are compared (mean and p95 error in input pixels,
PCK@2px, normalised error) against the target's limits, as for ort_int8.
Inputs: /in/params.json, /in/model/ (model.onnx, decode.json), /in/calibration/. Output: /out/<output>/:
NET.bmodel, bmodel.json (real tensor names, shapes, dtypes), bmodel_info.txt, decode.json, report.json.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from posepipe_step import (OUT, PARAMS, SETTINGS as S, agreement, check, fail, gate, held_out_inputs, limits, mean_std, run,
                          run_capture, write_report)

WORK = Path("/tmp/tpu_mlir")
NET = PARAMS["output"]
SIMILARITY = re.compile(r"min_similarity\s*=\s*\(([^)]*)\)")
# A flatbuffer string holding ctime(): u32 length 25, "Www Mmm dd hh:mm:ss yyyy\n", NUL.
CTIME = re.compile(rb"\x19\x00\x00\x00([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\n)\x00")
UNSTABLE_INT8 = (
    "the INT8 bmodel's bytes are not reproducible: model_deploy's INT8 code generation depends on memory addresses "
    "(ASLR). Two runs on the same MLIR and calibration table differed in 48 bytes of 4.6 MB (Lite-HRNet: pairs of "
    "command fields swapped, e.g. 0x40 and 0x44), and in none with ASLR off, which Docker's default seccomp profile "
    "does not allow a container. What is reproducible: the MLIR and calibration table (tool_outputs_sha256) and the "
    "bmodel's simulated outputs on the held-out images (simulator_outputs_sha256)"
)
HEADER = struct.Struct("<4I")  # bmodel MODEL_HEADER_T: magic, header_size, flatbuffers_size, binary_size, ...


def tool(name: str) -> str:
    """The wheel installs each tool with and without the .py suffix."""
    found = shutil.which(name) or shutil.which(f"{name}.py")
    if found is None:
        fail(f"{name} is not on PATH in the TPU-MLIR image")
    return found


def tool_comparison(log: str) -> dict:
    """model_deploy's own figures, min_similarity (cosine, euclidean, SQNR) of its two comparisons:
    lowering (the quantised MLIR graph vs the F32 one) and cmodel (the bmodel, simulated, vs the
    quantised graph); and its verdict."""
    # SQNR is inf when the outputs are equal: JSON has no infinity, so non-finite values stay text
    found = [dict(zip(("cosine", "euclidean", "sqnr"), (float(v) if math.isfinite(float(v)) else v.strip()
                                                         for v in m.split(","))))
             for m in SIMILARITY.findall(log)]
    return {"lowering": found[0] if found else {}, "cmodel": found[1] if len(found) > 1 else {},
            "verdict": "PASSED" if "npz compare PASSED" in log and "npz compare FAILED" not in log
            else "FAILED" if "npz compare FAILED" in log else "none"}


def pin_create_time(bmodel: Path, epoch: int) -> dict:
    """Rewrite the bmodel's create time (Model.time) to ``epoch``, in place; what was there and where."""
    data = bytearray(bmodel.read_bytes())
    _, header_size, flatbuffers_size, _ = HEADER.unpack_from(data)
    region = bytes(data[header_size:header_size + flatbuffers_size])
    found = list(CTIME.finditer(region))
    if len(found) != 1:  # another TPU-MLIR writes it differently: say so, and leave the bytes as they are
        return {"field": "Model.time", "pinned": False,
                "why": f"{len(found)} create-time strings in the flatbuffer, expected one"}
    pinned = time.strftime("%a %b %e %H:%M:%S %Y\n", time.gmtime(epoch)).encode()  # ctime()'s format
    offset = header_size + found[0].start(1)
    data[offset:offset + len(pinned)] = pinned
    bmodel.write_bytes(bytes(data))
    return {"field": "Model.time", "pinned": True, "offset": offset, "pinned_to": pinned.decode().strip(),
            "source_date_epoch": epoch}


def pin_table_time(table: Path, epoch: int) -> None:
    """run_calibration writes its wall-clock time into the table's header comment; pin it."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    table.write_text(re.sub(r"(?m)^# genetated time: .*$", f"# genetated time: {when} (SOURCE_DATE_EPOCH)", table.read_text()))


def outputs_digest(simulated: list[dict[str, np.ndarray]]) -> str:
    """sha256 over every simulated output array, in order: what stays equal when a bmodel's bytes do not."""
    h = hashlib.sha256()
    for outputs in simulated:
        for name, value in outputs.items():
            h.update(name.encode() + b"\0" + str(value.dtype).encode() + str(value.shape).encode() + np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def simulate(bmodel: Path, input_name: str, batches: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The bmodel's outputs for each batch from the cmodel simulator, all in one simulate.py process."""
    sim = Path(tempfile.mkdtemp(prefix="simulated", dir=WORK))  # a runner simulates once per chunk of a labelled set
    shutil.copy2(bmodel, sim / bmodel.name)  # the simulator writes a folder beside the bmodel it runs
    pairs = []
    for i, batch in enumerate(batches):
        np.savez(sim / f"in{i}.npz", **{input_name: batch})
        pairs.append(f"{sim / f'in{i}.npz'}:{sim / f'out{i}.npz'}")
    run([sys.executable, Path(__file__).with_name("simulate.py"), sim / bmodel.name, *pairs], cwd=sim)
    results = []
    for i in range(len(batches)):
        with np.load(sim / f"out{i}.npz") as out:
            results.append({k: out[k] for k in out.files})
    return results


def main() -> None:
    WORK.mkdir()
    OUT.mkdir(parents=True)
    mean, std = mean_std()
    order = PARAMS["normalization"]["channel_order"]
    images = sorted(Path("/in/calibration/calibration").iterdir())  # the recipe's calibration set, and nothing else
    shape = json.dumps([PARAMS["input"]["shape"]]).replace(" ", "")
    run([tool("model_transform"), "--model_name", NET, "--model_def", "/in/model/model.onnx", "--input_shapes", shape,
         "--mean", ",".join(f"{m:g}" for m in mean), "--scale", ",".join(f"{1 / s:.8g}" for s in std),
         "--pixel_format", order.lower(), "--test_input", images[0], "--test_result", f"{NET}_top_outputs.npz",
         "--mlir", f"{NET}.mlir"], cwd=WORK)
    deploy = [tool("model_deploy"), "--mlir", f"{NET}.mlir", "--quantize", S["quantize"], "--chip", S["chip"],
              "--test_input", f"{NET}_in_f32.npz", "--test_reference", f"{NET}_top_outputs.npz"]
    if "deploy_tolerance" in S:  # model_deploy's own (cosine, euclidean) bar; its default is 0.90,0.80 (INT8)
        deploy += ["--tolerance", ",".join(f"{t:g}" for t in S["deploy_tolerance"])]
    if S["quantize"] == "INT8":
        run([tool("run_calibration"), f"{NET}.mlir", "--chip", S["chip"], "--dataset", "/in/calibration/calibration",
             "--input_num", len(images), "--cali_method", S.get("calibration_method", "kl"), "-o", f"{NET}_cali_table"], cwd=WORK)
        pin_table_time(WORK / f"{NET}_cali_table", int(os.environ["SOURCE_DATE_EPOCH"]))
        deploy += ["--calibration_table", f"{NET}_cali_table"]
    bmodel = WORK / f"{NET}.bmodel"  # model_deploy's check writes a folder beside it: copied to OUT at the end
    code, deploy_log = run_capture(deploy + ["--model", bmodel], cwd=WORK)
    # what the stages before model_deploy made, by digest (reproducible: two builds compare them)
    stages = {name: hashlib.sha256((WORK / name).read_bytes()).hexdigest()
              for name in (f"{NET}.mlir", f"{NET}_cali_table") if (WORK / name).is_file()}
    tool_figures = tool_comparison(deploy_log)
    pinned = None
    if code == 0 and bmodel.is_file():
        run([tool("model_tool"), "--refresh", bmodel], cwd=WORK)  # sets the kernel module mode model_deploy leaves unset
        pinned = pin_create_time(bmodel, int(os.environ["SOURCE_DATE_EPOCH"]))
        pinned["kernel_module_mode"] = "set by model_tool --refresh (model_deploy leaves it unset memory)"
    tool_check = check("model_deploy: cmodel vs the MLIR graph (TPU-MLIR's own comparison)",
                       code == 0 and tool_figures["verdict"] == "PASSED", **tool_figures)
    if code != 0 or not bmodel.is_file():
        write_report({"chip": S["chip"], "quantize": S["quantize"], "model_deploy": tool_figures, "checks": [tool_check]})
        fail(f"model_deploy exited with {code}" + (f"; its own comparison failed: {tool_figures}"
                                                   if tool_figures["verdict"] == "FAILED" else ""))
    _, info = run_capture([tool("model_tool"), "--info", bmodel], cwd=WORK)
    (OUT / "bmodel_info.txt").write_text(info)

    with np.load(WORK / f"{NET}_in_f32.npz") as tool_input:
        input_name = tool_input.files[0]
    session = ort.InferenceSession("/in/model/model.onnx", providers=["CPUExecutionProvider"])
    held = held_out_inputs()
    reference = [session.run(None, {PARAMS["input"]["name"]: batch}) for batch in held]
    simulated = simulate(bmodel, input_name, held)
    candidate = [list(outputs.values()) for outputs in simulated]
    outputs = simulated[0]
    tensors = {
        "inputs": [{"name": input_name, "shape": list(held[0].shape), "dtype": "float32"}],
        "outputs": [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype), "export_name": o["name"]}
                    for k, v, o in zip(outputs, outputs.values(), PARAMS["outputs"])],
    }
    (OUT / "bmodel.json").write_text(json.dumps(tensors, indent=1) + "\n")
    decode = json.loads(Path("/in/model/decode.json").read_text())
    decode["bmodel_outputs"] = tensors["outputs"]  # the real tensor names: INT8 renames them (output_Conv_f32)
    (OUT / "decode.json").write_text(json.dumps(decode, indent=1, sort_keys=True) + "\n")

    measured = agreement(reference, candidate)
    problems = gate(measured)
    checks = [tool_check, check("cmodel simulator keypoints vs the fp32 export on held-out images", not problems,
                                **measured, **limits())]  # the schema requires a limit for every bmodel target
    write_report({
        "chip": S["chip"], "quantize": S["quantize"], "batch": PARAMS["input"]["shape"][0],
        "tpu_mlir": re.search(r"bmodel version: (\S+)", info).group(1) if "bmodel version:" in info else "unknown",
        "bmodel_bytes": bmodel.stat().st_size, "tensors": tensors,
        "model_deploy": tool_figures, "simulator_vs_fp32_export": measured, "checks": checks,
        "create_time": pinned, "tool_outputs_sha256": stages, "simulator_outputs_sha256": outputs_digest(simulated),
        **({"reproducibility": UNSTABLE_INT8} if S["quantize"] == "INT8" else {}),
    })
    if not tool_check["passed"]:
        fail(f"model_deploy's own comparison did not pass: {tool_figures}")
    if problems:
        fail("accuracy gate (cmodel simulator vs the fp32 export): " + "; ".join(problems))
    shutil.copy2(bmodel, OUT / bmodel.name)  # only a bmodel that passed both checks becomes an artifact
    print(f"sophgo_tpu_mlir: {OUT.name}/{NET}.bmodel ready ({S['quantize']}, batch {PARAMS['input']['shape'][0]})", flush=True)


if __name__ == "__main__":
    main()
