"""LiteRT: the ONNX export -> a full-integer INT8 .tflite (int8 in and out, NHWC) through onnx2tf, checked in
the LiteRT interpreter against the FP32 export.

1. The export is copied (onnx2tf rewrites its input file in place) and the graph rewrites the target asks
   for are applied (posepipe_rewrite; each recorded, and checked exact in ONNX Runtime on the held-out images).
2. onnx2tf converts it (the target's `converter`: its default flatbuffer_direct backend, or TensorFlow's
   converter), calibrating on the recipe's calibration images in the model's channel order, 0-1, with the
   recipe's normalisation as onnx2tf's mean/std, after onnxsim unless the target says `onnxsim: false`;
   the int16-activation variants onnx2tf would also write are skipped (an INT8 target does not need them;
   writing them aborts on some graphs). It runs in a child process, so a crash is a clear failure.
3. Every tensor of the result must be int8 (or int32 biases and shapes): otherwise the model cannot be fully
   quantised and the step fails naming the op.
4. The .tflite runs in the LiteRT interpreter (builtin kernels, as a board without a delegate runs it) on the
   held-out images against the FP32 export in ONNX Runtime; keypoints within the target's limits earn the
   check. decode.json gains what a board needs: the NHWC input, each output's place in the .tflite and
   layout, and the input and output scale and zero point.
Inputs: /in/params.json, /in/model (export: model.onnx, decode.json), /in/calibration. Output: /out/<output>/
model.tflite, decode.json, report.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

import posepipe_child
import posepipe_rewrite

from posepipe_step import (OUT, PARAMS, SETTINGS as S, agreement, check, fail, gate, held_out_inputs, limits, mean_std,
                          write_report)

WORK = Path(tempfile.mkdtemp(prefix="litert"))
QUANTISED = {"int8", "int32"}  # int32: biases, shapes and indices of a full-integer model


def calibration_images() -> np.ndarray:
    """The recipe's calibration set as onnx2tf takes it: NHWC float32 in 0-1, in the model's channel order."""
    _, _, h, w = PARAMS["input"]["shape"]
    listing = json.loads(Path("/in/calibration/list.json").read_text())
    images = []
    for entry in listing["calibration"]:
        rgb = np.asarray(Image.open(Path("/in/calibration") / entry["file"]).convert("RGB").resize((w, h), Image.BILINEAR), np.float32)
        images.append((rgb[..., ::-1] if PARAMS["normalization"]["channel_order"] == "BGR" else rgb) / 255.0)
    return np.stack(images)


def convert(model: Path) -> Path:
    """The full-integer .tflite onnx2tf makes of ``model``, converted in a child process: onnx2tf can crash
    (a segfault in its flatbuffer_direct backend on some graphs) and the step then says so plainly."""
    calibration = WORK / "calibration.npy"
    np.save(calibration, calibration_images())
    posepipe_child.run([sys.executable, __file__, "convert", model, calibration, WORK / "converted"],
                       f"onnx2tf ({S.get('converter', 'flatbuffer_direct')}) could not make a full-integer model")
    found = sorted((WORK / "converted").glob("*_full_integer_quant.tflite"))
    if not found:
        fail("onnx2tf wrote no full-integer .tflite")
    return found[0]


def convert_here(model: str, calibration: str, folder: str) -> None:
    """The child: onnx2tf's Python API with the step's settings; its root error, if any, on one line."""
    import onnx2tf
    import onnx2tf.tflite_builder as builder

    builder.strict_int16_activation_skip_reasons = lambda model_ir: ["posepipe builds INT8 activations only"]
    mean, std = mean_std()
    try:
        onnx2tf.convert(
            input_onnx_file_path=model, output_folder_path=folder, output_integer_quantized_tflite=True,
            tflite_backend=S.get("converter", "flatbuffer_direct"), quant_type="per-channel", input_quant_dtype="int8",
            output_quant_dtype="int8", not_use_onnxsim=not S.get("onnxsim", True), non_verbose=True,
            custom_input_op_name_np_data_path=[[PARAMS["input"]["name"], calibration,
                                                [[[[m / 255 for m in mean]]]], [[[[s / 255 for s in std]]]]]],
        )
    except Exception as e:  # noqa: BLE001 - reported on one line, the step then fails with it
        posepipe_child.refuse(e)


class Quantised:
    """A full-integer .tflite in LiteRT's interpreter (builtin kernels, no delegate), taking and giving the
    export's NCHW float tensors: the input quantised to int8 NHWC, outputs dequantised and put back in the
    export's order and layout (``places``)."""

    def __init__(self, path: Path, places: list[dict] | None = None):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.interpreter = Interpreter(model_path=str(path), num_threads=2,
                                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()
        self.places = places

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        scale, zero = self.input["quantization"]
        q = np.clip(np.round(x.transpose(0, 2, 3, 1) / scale + zero), -128, 127).astype(np.int8)
        self.interpreter.set_tensor(self.input["index"], q)
        self.interpreter.invoke()
        found = []
        for d in self.outputs:
            s, z = d["quantization"]
            found.append((self.interpreter.get_tensor(d["index"]).astype(np.float32) - z) * s)
        return [found[p["tflite_output"]].transpose(0, 3, 1, 2) if p["layout"] == "NHWC" else found[p["tflite_output"]]
                for p in self.places]


def places_of(model: Quantised, x: np.ndarray) -> list[dict]:
    """Where each of the export's outputs is in the .tflite and in which layout, matched by name (onnx2tf keeps
    the ONNX names), else by order, and by shape after a real run (a shape may only be known then)."""
    model.places = [{"tflite_output": i, "layout": "as exported"} for i in range(len(model.outputs))]
    shapes = [o.shape for o in model(x)]
    names = [d["name"] for d in model.outputs]
    places = []
    for i, o in enumerate(PARAMS["outputs"]):
        index = names.index(o["name"]) if o["name"] in names else i
        want, have = tuple(o["shape"]), tuple(shapes[index])
        if have == want:
            layout = "as exported"
        elif len(want) == 4 and have == (want[0], want[2], want[3], want[1]):
            layout = "NHWC"
        else:
            fail(f"the .tflite output {names[index]} has shape {list(have)}, not the export's {list(want)} (or its NHWC form)")
        places.append({"name": o["name"], "tflite_output": index, "layout": layout, "scale": float(model.outputs[index]["quantization"][0]),
                       "zero_point": int(model.outputs[index]["quantization"][1])})
    return places


def not_integer(path: Path) -> list[str]:
    """The ops of the .tflite that compute in floating point (none in a full-integer model)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    dtypes = {t["index"]: t["dtype"].__name__ for t in interpreter.get_tensor_details()}
    return sorted({op["op_name"] for op in interpreter._get_ops_details()
                   if any(dtypes.get(i) not in QUANTISED for i in [*op["inputs"], *op["outputs"]] if i >= 0)})


def main() -> None:
    OUT.mkdir(parents=True)
    source = WORK / "model.onnx"
    shutil.copyfile("/in/model/model.onnx", source)  # onnx2tf rewrites its input in place
    held = held_out_inputs()
    reference = ort.InferenceSession("/in/model/model.onnx", providers=["CPUExecutionProvider"])
    name = PARAMS["input"]["name"]
    expected = [reference.run(None, {name: x}) for x in held]
    rewrites = posepipe_rewrite.apply(S.get("rewrites", []), source, source)
    rewrite_diff = posepipe_rewrite.exact(source, held, expected, name) if rewrites else None

    tflite = convert(source)
    if floating := not_integer(tflite):
        fail(f"the model cannot be fully quantised: op {', '.join(floating)} stays in floating point (onnx2tf "
             f"{S.get('converter', 'flatbuffer_direct')}); no .tflite is kept")
    shutil.copyfile(tflite, OUT / "model.tflite")
    runner = Quantised(OUT / "model.tflite")
    places = runner.places = places_of(runner, held[0])
    candidate = [runner(x) for x in held]
    measured = agreement(expected, candidate)
    problems = gate(measured)
    report = {
        "converter": {"tool": "onnx2tf", "backend": S.get("converter", "flatbuffer_direct"), "onnxsim": S.get("onnxsim", True)},
        "rewrites": {"applied": rewrites, "max_abs_diff_vs_export": rewrite_diff},
        "tflite_bytes": (OUT / "model.tflite").stat().st_size,
        "input": {"name": name, "layout": "NHWC", "dtype": "int8", "scale": float(runner.input["quantization"][0]),
                  "zero_point": int(runner.input["quantization"][1])},
        "outputs": places,
        "accuracy_int8_vs_fp32": measured,
        "checks": [check("int8 .tflite keypoints vs the FP32 export (LiteRT interpreter)", not problems, **measured, **limits())],
    }
    decode = json.loads(Path("/in/model/decode.json").read_text())
    decode["tflite"] = {"input": report["input"], "outputs": places,
                        "note": "quantise the normalised NHWC input: q = round(x / scale) + zero_point; dequantise each output"
                                " as (q - zero_point) * scale, and transpose an NHWC output to the export's NCHW"}
    (OUT / "decode.json").write_text(json.dumps(decode, indent=1, sort_keys=True) + "\n")
    write_report(report)
    if problems:
        fail("accuracy gate (LiteRT INT8 vs the FP32 export): " + "; ".join(problems))


if __name__ == "__main__":
    convert_here(*sys.argv[2:]) if sys.argv[1:2] == ["convert"] else main()
