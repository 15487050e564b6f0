"""ONNX Runtime targets: a graph-optimised FP32 model, or a static QDQ INT8 model with an accuracy gate.

Inputs: /in/params.json, /in/model/ (the export step: model.onnx, export.json, decode.json) and,
for INT8, /in/calibration/ (the calibration step: list.json and images/). Output: /out/<output>/ with model.onnx,
decode.json and report.json (what was done and what was measured).

FP32 is saved as .onnx, not .ort: an .onnx file runs on any ONNX Runtime build a board has
(the .ort format ties the file to ORT's minimal-build versions), and the optimisation level is
EXTENDED, not ALL: level ALL adds layout transforms specific to the machine that ran them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from posepipe_step import (OUT, PARAMS, SETTINGS, agreement, batches, check, fail, gate, held_out_inputs, limits, load_image,
                          max_abs_diff, write_report)

MODEL_IN = Path("/in/model")
ort.set_default_logger_severity(3)
SO = ort.SessionOptions()
SO.intra_op_num_threads = 2


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), SO, providers=["CPUExecutionProvider"])


def optimise(src: Path, dst: Path) -> None:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------ images


class Reader(CalibrationDataReader):
    def __init__(self, inputs: list[np.ndarray]):
        self.items = iter([{PARAMS["input"]["name"]: x} for x in inputs])

    def get_next(self):
        return next(self.items, None)


def raise_opset(path: Path, minimum: int) -> int:
    """Convert the model in place to at least ``minimum`` of the default ONNX domain; returns the opset."""
    model = onnx.load(str(path))
    current = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if current < minimum:
        model = onnx.version_converter.convert_version(model, minimum)
        onnx.save(model, str(path))
        return minimum
    return current


def fp32_convs(path: Path) -> list[str]:
    """The convolutions the recipe's rule keeps in FP32: depthwise ones (``fp32_depthwise``) and those
    whose output map is smaller than ``int8_min_map`` [H, W]. On small, memory-bound layers the
    quantize/dequantize pairs around an INT8 kernel cost more than the kernel saves."""
    rule_dw, min_map = SETTINGS.get("fp32_depthwise", False), SETTINGS.get("int8_min_map")
    if not rule_dw and not min_map:
        return []
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*model.graph.value_info, *model.graph.output]}
    keep = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        out = dims.get(node.output[0], [])
        small = bool(min_map) and len(out) == 4 and out[2] * out[3] < min_map[0] * min_map[1]
        if (rule_dw and group > 1) or small:
            keep.append(node.name)
    return keep


# ------------------------------------------------------------------ main


def main() -> None:
    source = MODEL_IN / "model.onnx"
    if not source.is_file():
        fail("the export step produced no model.onnx")
    OUT.mkdir(parents=True)
    export = json.loads((MODEL_IN / "export.json").read_text())
    shutil.copyfile(MODEL_IN / "decode.json", OUT / "decode.json")
    fp32 = OUT / "model.onnx" if SETTINGS["quantize"] == "none" else Path("/tmp/fp32.onnx")
    optimise(source, fp32)
    report = {
        "format": "onnx (ORT_ENABLE_EXTENDED offline optimisation)",
        "onnxruntime": ort.__version__,
        "export": export,
        "settings": SETTINGS,
    }
    rng = np.random.default_rng(0)
    probe = rng.standard_normal(PARAMS["input"]["shape"]).astype(np.float32)
    name = PARAMS["input"]["name"]
    raw, opt = session(source), session(fp32)
    diff = max_abs_diff(raw.run(None, {name: probe}), opt.run(None, {name: probe}))
    report["fp32_vs_export_max_abs_diff"] = diff
    checks = []  # the shipped model's own checks: FP32 against the export, INT8 against FP32 under the recipe's limits
    if SETTINGS["quantize"] == "none":
        checks.append(check("fp32 outputs vs the export", diff <= export["tolerance"], max_abs_diff=diff, tolerance=export["tolerance"]))
    if SETTINGS["quantize"] == "int8":
        listing = json.loads(Path("/in/calibration/list.json").read_text())
        held = held_out_inputs()
        calib = batches([load_image((Path("/in/calibration") / e["file"]).read_bytes()) for e in listing["calibration"]])
        # Quantize the export itself (after ORT's recommended shape inference and basic
        # optimisation), not the EXTENDED-optimised FP32 file whose fused contrib ops it cannot type.
        prepared = Path("/tmp/prepared.onnx")
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        report["int8_opset"] = raise_opset(prepared, 13)  # per-channel QDQ needs DequantizeLinear's axis (opset 13)
        exclude = sorted(set(SETTINGS.get("exclude_nodes", [])) | set(fp32_convs(prepared)))
        quantize_static(
            str(prepared), str(OUT / "model.onnx"), Reader(calib),
            quant_format=QuantFormat.QDQ,
            per_channel=SETTINGS.get("per_channel", True),
            activation_type=QuantType.QUInt8 if SETTINGS.get("activation_type", "uint8") == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[SETTINGS.get("calibration_method", "minmax")],
            nodes_to_exclude=exclude,
            op_types_to_quantize=SETTINGS.get("quantize_ops"),
        )
        q = session(OUT / "model.onnx")
        reference = [opt.run(None, {name: x}) for x in held]
        candidate = [q.run(None, {name: x}) for x in held]
        report["accuracy_int8_vs_fp32"] = agreement(reference, candidate)
        report["calibration"] = {"images": len(listing["calibration"]), "held_out": len(listing["held_out"]),
                                 "first": listing["calibration"][0]["member"], "last": listing["calibration"][-1]["member"]}
        report["fp32_nodes"] = exclude
        report["int8_ops"] = SETTINGS.get("quantize_ops", "all that ONNX Runtime quantizes")
        problems = gate(report["accuracy_int8_vs_fp32"])
        if limits():  # figures without a limit are recorded, but they are no check
            checks.append(check("int8 keypoints vs fp32 on held-out images", not problems,
                                **report["accuracy_int8_vs_fp32"], **limits()))
    else:
        problems = [] if diff <= export["tolerance"] else [f"fp32 differs from the export by {diff:.3g} > {export['tolerance']:g}"]
    onnx.checker.check_model(str(OUT / "model.onnx"))
    report["checks"] = checks
    write_report(report)
    if problems:
        fail("accuracy gate: " + "; ".join(problems))


if __name__ == "__main__":
    main()
