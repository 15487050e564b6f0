"""OpenVINO step: the ONNX export -> IR (.xml/.bin) at FP32, FP16 (compressed weights) or INT8
(NNCF post-training quantisation on the recipe's calibration images), then the IR run by
OpenVINO's CPU plugin with f32 inference precision and compared with the FP32 export run by ONNX
Runtime: FP32/FP16 by max abs difference on a seeded input (FP32: the export's tolerance, FP16: the
target's max_abs_diff), INT8 by decoded keypoints on the held-out images (the target's limits).
Auto-generated node names are renamed by graph position, so the IR's bytes do not depend on how
many nodes earlier code in the process made.
Inputs: /in/params.json, /in/model/ (model.onnx, export.json, decode.json), /in/calibration/ (INT8).
Output: /out/<output>/ (model.xml, model.bin, decode.json, report.json).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from posepipe_step import (OUT, PARAMS, SETTINGS as S, agreement, batches, check, fail, gate, held_out_inputs, limits, load_image,
                          max_abs_diff, write_report)

MODEL_IN = Path("/in/model")
AUTO_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*_\d+")  # OpenVINO's own names (Constant_330437), not the export's


def decline_telemetry() -> None:
    """OpenVINO asks $HOME/intel/openvino_telemetry; "0" declines (the image's HOME has the same file)."""
    consent = Path(os.environ.get("HOME", "/tmp")) / "intel" / "openvino_telemetry"
    consent.parent.mkdir(parents=True, exist_ok=True)
    consent.write_text("0")


def stable_names(model) -> int:
    """Rename auto-named nodes by their position in the graph; how many were renamed."""
    renamed = 0
    for i, op in enumerate(model.get_ordered_ops()):
        if AUTO_NAME.fullmatch(op.get_friendly_name()):
            op.set_friendly_name(f"{op.get_type_name()}_{i}")
            renamed += 1
    return renamed


def main() -> None:
    decline_telemetry()
    import numpy as np
    import onnxruntime as ort
    import openvino as ov

    source = MODEL_IN / "model.onnx"
    if not source.is_file():
        fail("the export step produced no model.onnx")
    OUT.mkdir(parents=True)
    export = json.loads((MODEL_IN / "export.json").read_text())
    shutil.copyfile(MODEL_IN / "decode.json", OUT / "decode.json")
    precision, name = S["precision"], PARAMS["input"]["name"]
    model = ov.convert_model(str(source))
    report = {"openvino": ov.get_version(), "precision": precision, "settings": S}
    reference_run = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])

    if precision == "INT8":
        import nncf

        listing = json.loads(Path("/in/calibration/list.json").read_text())
        calib = batches([load_image((Path("/in/calibration") / e["file"]).read_bytes()) for e in listing["calibration"]])
        scope = S.get("ignored_scope", {})
        model = nncf.quantize(
            model, nncf.Dataset(calib), subset_size=S.get("subset_size", len(calib)),
            preset=nncf.QuantizationPreset.MIXED if S.get("preset") == "mixed" else nncf.QuantizationPreset.PERFORMANCE,
            ignored_scope=nncf.IgnoredScope(names=scope.get("names", []), types=scope.get("types", [])),
        )
        report["nncf"] = nncf.__version__
        report["calibration"] = {"images": len(calib), "held_out": len(listing["held_out"])}
    report["renamed_nodes"] = stable_names(model)
    ov.save_model(model, str(OUT / "model.xml"), compress_to_fp16=precision == "FP16")

    # the shipped files, read back, on the CPU plugin at f32 (this CPU's default would be bf16)
    compiled = ov.Core().compile_model(str(OUT / "model.xml"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def run(x):
        result = compiled(x)
        return [result[out] for out in compiled.outputs]

    if precision == "INT8":
        held = held_out_inputs()
        measured = agreement([reference_run.run(None, {name: x}) for x in held], [run(x) for x in held])
        report["accuracy_int8_vs_fp32"] = measured
        problems = gate(measured)
        checks = [check("int8 IR keypoints (CPU plugin) vs the fp32 export on held-out images", not problems,
                        **measured, **limits())]  # the schema requires a limit for every INT8 target
    else:
        probe = np.random.default_rng(0).standard_normal(PARAMS["input"]["shape"]).astype(np.float32)
        diff = max_abs_diff(reference_run.run(None, {name: probe}), run(probe))
        tolerance = export["tolerance"] if precision == "FP32" else S["max_abs_diff"]
        report["ir_vs_export_max_abs_diff"] = diff
        problems = [] if diff <= tolerance else [f"the {precision} IR differs from the export by {diff:.3g} > {tolerance:g}"]
        checks = [check(f"{precision.lower()} IR outputs (CPU plugin) vs the export", not problems,
                        max_abs_diff=diff, tolerance=tolerance)]
    report["checks"] = checks
    write_report(report)
    if problems:
        fail("accuracy gate: " + "; ".join(problems))


if __name__ == "__main__":
    main()
