"""ONNX Runtime targets: a graph-optimised FP32 model, or a static QDQ INT8 model with an accuracy gate.

Inputs: /in/params.json, /in/model/ (the export step: model.onnx, export.json, decode.json) and,
for INT8, /in/calibration/ (the calibration step: list.json and images/). Output: /out/<output>/ with model.onnx,
decode.json and report.json (what was done and what was measured).

FP32 is saved as .onnx, not .ort: an .onnx file runs on any ONNX Runtime build a board has
(the .ort format ties the file to ORT's minimal-build versions), and the optimisation level is
EXTENDED, not ALL: level ALL adds layout transforms specific to the machine that ran them.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

PARAMS = json.loads(Path("/in/params.json").read_text())
SETTINGS = PARAMS["settings"]
MODEL_IN = Path("/in/model")
OUT = Path("/out") / PARAMS["output"]
HELD_OUT = 16  # images after the calibration set that only the accuracy gate sees
ort.set_default_logger_severity(3)
SO = ort.SessionOptions()
SO.intra_op_num_threads = 2


def fail(message: str) -> None:
    print(f"onnxruntime step failed: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), SO, providers=["CPUExecutionProvider"])


def optimise(src: Path, dst: Path) -> None:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------ images


def preprocess(data: bytes) -> np.ndarray:
    """The model's own normalisation from the recipe: resize to the input, (x - mean) / std, NCHW."""
    _, _, h, w = PARAMS["input"]["shape"]
    n = PARAMS["normalization"]
    img = Image.open(io.BytesIO(data)).convert("RGB").resize((w, h), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32)
    if n["channel_order"] == "BGR":
        x = x[..., ::-1]
    x = (x - np.array(n["mean"], np.float32)) / np.array(n["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def batches(images: list[np.ndarray]) -> list[np.ndarray]:
    """Group single images into the model's fixed batch size."""
    b = PARAMS["input"]["shape"][0]
    return [np.concatenate(images[i : i + b]) for i in range(0, len(images) - b + 1, b)]


class Reader(CalibrationDataReader):
    def __init__(self, inputs: list[np.ndarray]):
        self.items = iter([{PARAMS["input"]["name"]: x} for x in inputs])

    def get_next(self):
        return next(self.items, None)


# ------------------------------------------------------------------ accuracy


def keypoints(outputs: list[np.ndarray]) -> np.ndarray:
    """(N, K, 2) keypoints in input pixels (heatmaps: arg-max scaled by the stride; regression: x*W, y*H)."""
    _, _, h, w = PARAMS["input"]["shape"]
    first = outputs[0]
    if first.ndim == 3:  # regression head: normalised (x, y)
        return first * np.array([w, h], np.float32)
    n, k, hh, ww = first.shape
    flat = first.reshape(n, k, -1).argmax(-1)
    ys, xs = np.divmod(flat, ww)
    return np.stack([(xs + 0.5) * w / ww, (ys + 0.5) * h / hh], axis=-1)


def agreement(reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]]) -> dict:
    """Keypoint disagreement of ``candidate`` with ``reference`` over the held-out images."""
    _, _, h, w = PARAMS["input"]["shape"]
    err = np.concatenate([np.linalg.norm(keypoints(c) - keypoints(r), axis=-1).ravel() for r, c in zip(reference, candidate)])
    return {
        "images": len(reference) * PARAMS["input"]["shape"][0],
        "mean_error_px": float(err.mean()),
        "p95_error_px": float(np.percentile(err, 95)),
        "pck_2px": float((err <= 2.0).mean()),
        "normalized_mean_error": float(err.mean() / np.hypot(w, h)),
    }


def gate(measured: dict) -> list[str]:
    problems = []
    if "max_keypoint_error_px" in SETTINGS and measured["mean_error_px"] > SETTINGS["max_keypoint_error_px"]:
        problems.append(f"mean keypoint error {measured['mean_error_px']:.3f} px > {SETTINGS['max_keypoint_error_px']} px")
    if "max_normalized_error" in SETTINGS and measured["normalized_mean_error"] > SETTINGS["max_normalized_error"]:
        problems.append(f"normalised mean error {measured['normalized_mean_error']:.4f} > {SETTINGS['max_normalized_error']}")
    return problems


def raise_opset(path: Path, minimum: int) -> int:
    """Convert the model in place to at least ``minimum`` of the default ONNX domain; returns the opset."""
    model = onnx.load(str(path))
    current = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if current < minimum:
        model = onnx.version_converter.convert_version(model, minimum)
        onnx.save(model, str(path))
        return minimum
    return current


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
    report["fp32_vs_export_max_abs_diff"] = max(
        float(np.abs(a - b).max()) for a, b in zip(raw.run(None, {name: probe}), opt.run(None, {name: probe}))
    )
    if SETTINGS["quantize"] == "int8":
        listing = json.loads(Path("/in/calibration/list.json").read_text())
        if len(listing["held_out"]) < HELD_OUT:
            fail(f"the calibration archive leaves {len(listing['held_out'])} held-out image(s) after the calibration set; the gate needs {HELD_OUT}")
        read = lambda entries: [preprocess((Path("/in/calibration") / e["file"]).read_bytes()) for e in entries]  # noqa: E731
        calib = batches(read(listing["calibration"]))
        held = batches(read(listing["held_out"][:HELD_OUT]))
        exclude = list(SETTINGS.get("exclude_nodes", []))
        # Quantize the export itself (after ORT's recommended shape inference and basic
        # optimisation), not the EXTENDED-optimised FP32 file whose fused contrib ops it cannot type.
        prepared = Path("/tmp/prepared.onnx")
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        report["int8_opset"] = raise_opset(prepared, 13)  # per-channel QDQ needs DequantizeLinear's axis (opset 13)
        quantize_static(
            str(prepared), str(OUT / "model.onnx"), Reader(calib),
            quant_format=QuantFormat.QDQ,
            per_channel=SETTINGS.get("per_channel", True),
            activation_type=QuantType.QUInt8 if SETTINGS.get("activation_type", "uint8") == "uint8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                              "percentile": CalibrationMethod.Percentile}[SETTINGS.get("calibration_method", "minmax")],
            nodes_to_exclude=exclude,
        )
        q = session(OUT / "model.onnx")
        reference = [opt.run(None, {name: x}) for x in held]
        candidate = [q.run(None, {name: x}) for x in held]
        report["accuracy_int8_vs_fp32"] = agreement(reference, candidate)
        report["calibration"] = {"images": len(listing["calibration"]), "held_out": HELD_OUT,
                                 "first": listing["calibration"][0]["member"], "last": listing["calibration"][-1]["member"]}
        report["fp32_nodes"] = exclude
        problems = gate(report["accuracy_int8_vs_fp32"])
    else:
        problems = []
    onnx.checker.check_model(str(OUT / "model.onnx"))
    (OUT / "report.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    print(json.dumps({k: report[k] for k in report if k != "settings"}), flush=True)
    if problems:
        fail("accuracy gate: " + "; ".join(problems))


if __name__ == "__main__":
    main()
