"""RKNN: the ONNX export -> a .rknn for a Rockchip NPU (FP16, or INT8 calibrated on the recipe's images)
through rknn-toolkit2, checked in the toolkit's x86 simulator against the FP32 export.

1. The graph rewrites the target asks for are applied (posepipe_rewrite; each recorded, checked exact in
   ONNX Runtime on the held-out images).
2. A child process (one platform's compiler aborts the whole process on some convolutions) configures the
   toolkit with the recipe's normalisation (the .rknn takes raw 0-255 pixels in the model's channel order),
   loads the ONNX, builds, runs the built model in the simulator on the held-out images and only then
   exports the .rknn: the simulator refuses a .rknn loaded from a file, so the check runs on the model
   this process built, right before it is written. The toolkit's verbose log (in the step's log) has an op
   table saying where each op runs (an op the NPU cannot take falls back to the board's CPU: the report lists them).
3. The simulator's outputs are compared with the FP32 export's (ONNX Runtime): max abs difference, cosine
   and decoded keypoints; keypoints within the target's limits (and outputs within max_abs_diff, if set)
   earn the check.
4. The .rknn's bytes are not reproducible (UNSTABLE); the simulator outputs were identical run to run, so the
   report records their digest per held-out image (a --check rebuild compares report.json) and nothing that
   depends on the .rknn's bytes.
Inputs: /in/params.json, /in/model (export: model.onnx, decode.json), /in/calibration. Output: /out/<output>/
model.rknn, decode.json, report.json.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

import posepipe_child
import posepipe_rewrite
from posepipe_step import (OUT, PARAMS, SETTINGS as S, agreement, check, fail, gate, held_out_inputs, limits, load_image,
                          max_abs_diff, mean_std, write_report)

WORK = Path(tempfile.mkdtemp(prefix="rknn"))
OP_ROW = re.compile(r"^D RKNN: \[[^\]]*\]\s+(\d+)\s+(\S+)\s+(\S+)\s+(NPU|CPU)\s.*\s(\S+)\s*$")
BOUNDARY_OPS = {"InputOperator", "OutputOperator"}  # the toolkit's own input/output stages, not the model's ops
CHECK_RAN_ON = ("the model rknn-toolkit2 built in this process, run in its x86 simulator right before export_rknn wrote "
                "the .rknn (the simulator refuses a .rknn loaded from a file)")
UNSTABLE = ("the .rknn's bytes are not reproducible: rknn-toolkit2 writes 500-1,500 bytes that change between fresh "
            "builds of the same inputs (pointer-like values; no setting, seed or single thread pins them, ASLR cannot be "
            "turned off under Docker's default seccomp profile, and the RKNN licence forbids the reverse engineering a "
            "patch would need). What is reproducible: the simulator's outputs on the held-out images "
            "(simulator_outputs_sha256), identical run to run.")


def raw_pixels(x: np.ndarray) -> np.ndarray:
    """A normalised NCHW batch back to the 0-255 pixels (model channel order) the .rknn takes: the toolkit
    applies the recipe's mean/std itself, as the board will."""
    mean, std = (np.array(v, np.float32).reshape(1, -1, 1, 1) for v in mean_std())
    return np.round(x * std + mean).astype(np.float32)


def build(model: Path, calibration: list[Path], verbose: bool = True):
    """The toolkit's model built from ``model`` with the target's settings, in this process (returned for
    the simulator: ``init_runtime()`` with no target). ``calibration``: NCHW raw-pixel .npy files (INT8).
    ``verbose``: the toolkit's debug log, whose op table says where each op runs."""
    from rknn.api import RKNN

    mean, std = mean_std()
    toolkit = RKNN(verbose=verbose)
    int8 = S["quantize"] == "INT8"
    steps = [
        ("config", lambda: toolkit.config(mean_values=[mean], std_values=[std], target_platform=S["platform"],
                                          quantized_dtype="w8a8", quantized_algorithm=S.get("algorithm", "normal"))),
        ("load_onnx", lambda: toolkit.load_onnx(model=str(model))),
        ("build", lambda: toolkit.build(do_quantization=int8, dataset=str(_dataset(calibration)) if int8 else None)),
        ("init_runtime", lambda: toolkit.init_runtime()),
    ]
    for name, call in steps:
        if call() != 0:
            raise RuntimeError(f"rknn-toolkit2 {name} failed (its log: the step's output above)")
    return toolkit


def _dataset(files: list[Path]) -> Path:
    listing = WORK / "dataset.txt"
    listing.write_text("".join(f"{f}\n" for f in files))
    return listing


def simulate(toolkit, inputs) -> list[list[np.ndarray]]:
    """Each raw-pixel NCHW batch through the built model in the simulator: the outputs in the export's order."""
    return [[np.asarray(o, np.float32) for o in toolkit.inference(inputs=[x], data_format="nchw")] for x in inputs]


def digests(outputs: list[list[np.ndarray]]) -> list[str]:
    """One sha256 per input over its outputs' float32 bytes: what a rebuild must give again."""
    return [hashlib.sha256(b"".join(np.ascontiguousarray(o, np.float32).tobytes() for o in outs)).hexdigest() for outs in outputs]


def calibration_files() -> list[Path]:
    """The recipe's calibration images as the toolkit takes them: NCHW raw-pixel .npy files."""
    listing = json.loads(Path("/in/calibration/list.json").read_text())
    files = []
    for i, entry in enumerate(listing["calibration"]):
        files.append(WORK / f"calibration{i:04d}.npy")
        np.save(files[-1], raw_pixels(load_image((Path("/in/calibration") / entry["file"]).read_bytes())))
    return files


def prepared_model(held: list[np.ndarray], expected: list | None) -> tuple[Path, dict]:
    """The export with the target's rewrites applied (checked exact against ``expected`` when given)."""
    model = WORK / "model.onnx"
    applied = posepipe_rewrite.apply(S.get("rewrites", []), "/in/model/model.onnx", model)
    diff = posepipe_rewrite.exact(model, held, expected, PARAMS["input"]["name"]) if applied and expected is not None else None
    return model, {"applied": applied, "max_abs_diff_vs_export": diff}


def child(model: str, inputs: str, folder: str) -> None:
    """Build, simulate the held-out inputs (saved to ``folder``), then export the .rknn; the root error, if any,
    on one line."""
    out = Path(folder)
    held = [np.load(f) for f in sorted(Path(inputs).glob("held*.npy"))]
    try:
        toolkit = build(Path(model), sorted(Path(inputs).glob("calibration*.npy")))
        for i, outs in enumerate(simulate(toolkit, held)):
            np.savez(out / f"simulated{i:04d}.npz", *outs)
        if toolkit.export_rknn(str(out / "model.rknn")) != 0:
            raise RuntimeError("rknn-toolkit2 export_rknn failed")
    except Exception as e:  # noqa: BLE001 - reported on one line; the step then fails with it
        posepipe_child.refuse(e)


def op_targets(log: str) -> dict:
    """Where the toolkit placed each of the model's ops, from the op table of its verbose log: NPU count, CPU ops."""
    placed: dict[str, list[str]] = {"NPU": [], "CPU": []}
    for line in log.splitlines():
        if (row := OP_ROW.match(line)) and row.group(2) not in BOUNDARY_OPS:
            placed[row.group(4)].append(f"{row.group(2)} ({row.group(5)})")
    if not placed["NPU"] and not placed["CPU"]:
        fail("the toolkit's log has no op table (where each op runs); its format may have changed")
    return {"npu_ops": len(placed["NPU"]), "cpu_ops": placed["CPU"]}


def compared(expected: list, simulated: list) -> dict:
    """The simulator's outputs against the export's: largest abs difference, lowest cosine, decoded keypoints."""
    pairs = [(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)) for ref, sim in zip(expected, simulated)
             for a, b in zip(ref, sim)]
    cosine = min(float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-30)) for a, b in pairs)
    return {"max_abs_diff": max_abs_diff(expected, simulated), "min_cosine": cosine, **agreement(expected, simulated)}


def main() -> None:
    import onnxruntime as ort

    OUT.mkdir(parents=True)
    held = held_out_inputs()
    name = PARAMS["input"]["name"]
    reference = ort.InferenceSession("/in/model/model.onnx", providers=["CPUExecutionProvider"])
    expected = [reference.run(None, {name: x}) for x in held]
    model, rewrites = prepared_model(held, expected)
    for i, x in enumerate(held):
        np.save(WORK / f"held{i:04d}.npy", raw_pixels(x))
    if S["quantize"] == "INT8":
        calibration_files()
    built = WORK / "built"
    built.mkdir()
    output = posepipe_child.run([sys.executable, __file__, "child", model, WORK, built],
                                f"rknn-toolkit2 could not build for {S['platform']} ({S['quantize']})", cwd=WORK)
    simulated = [[arrays[k] for k in sorted(arrays.files, key=lambda k: int(k.split("_")[1]))]
                 for arrays in (np.load(f) for f in sorted(built.glob("simulated*.npz")))]
    shutil.copyfile(built / "model.rknn", OUT / "model.rknn")
    shutil.copyfile("/in/model/decode.json", OUT / "decode.json")
    measured = compared(expected, simulated)
    problems = gate(measured)
    if "max_abs_diff" in S and measured["max_abs_diff"] > S["max_abs_diff"]:
        problems.append(f"max abs difference {measured['max_abs_diff']:.4g} > {S['max_abs_diff']}")
    what = f"{S['quantize'].lower()} .rknn ({S['platform']}) in the simulator vs the FP32 export on held-out images"
    write_report({
        "toolkit": "rknn-toolkit2 2.5.0",
        "platform": S["platform"], "quantize": S["quantize"], "algorithm": S.get("algorithm", "normal") if S["quantize"] == "INT8" else None,
        "input": {"name": name, "pixels": "raw 0-255, the model's channel order; the .rknn applies the recipe's mean/std",
                  "channel_order": PARAMS["normalization"]["channel_order"]},
        "rewrites": rewrites,
        "ops": op_targets(output),
        "simulator_vs_fp32_export": measured,
        "simulator_outputs_sha256": digests(simulated),
        "check_ran_on": CHECK_RAN_ON,
        "reproducibility": UNSTABLE,
        "checks": [check(what, not problems, **measured, **limits(), **({"max_abs_diff_limit": S["max_abs_diff"]} if "max_abs_diff" in S else {}))],
    })
    if problems:
        fail(f"accuracy gate (RKNN {S['quantize']} in the simulator vs the FP32 export): " + "; ".join(problems))


if __name__ == "__main__":
    child(*sys.argv[2:]) if sys.argv[1:2] == ["child"] else main()
