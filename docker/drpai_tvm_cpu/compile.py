"""DRP-AI TVM CPU-only step: what Renesas' compile_cpu_only_onnx_model.py (v1.1.1), with the DeepPose
README's TorchScript edit, does, compiled here for real, then the aarch64 result run under emulation.

The vendor script, step by step: the TorchScript frontend (``from_pytorch`` on the export's model.pt),
``bind_params_by_name``, its pass ``Sequential`` (SimplifyInference, FoldConstant, FoldExplicitPadding,
Backward/ForwardFoldScaleAxis, FoldConstant, DynamicToStatic, RemoveUnusedFunctions; built inside an
opt_level=3 context but run after it, as the script does), the legacy ``json, lib, params = relay.build``
for ``llvm -device=arm_cpu -mtriple=aarch64-linux-gnu -mattr=+neon`` (target and host), and
``export_library`` with the aarch64 g++ and ``-march=armv8-a -mtune=cortex-a53``. Differences, all
recorded: Debian's cross g++ instead of the Poky SDK's, no TopHub tuning log (offline:
TOPHUB_LOCATION=NONE), and deploy.params written in sorted-name order (TVM's map order moves per
process), so the three files are byte-reproducible.

Checks: (a) the same Relay module built for x86-64 and run by TVM's graph executor on the held-out
images against the TorchScript export in PyTorch, a check of the graph and weights; (b) the shipped
aarch64 deploy.so itself, run under qemu-aarch64 (Cortex-A53) by run_graph, a C loader that does what
the sample app's runtime wrapper does, with an aarch64 TVM graph-executor runtime. Only (b) runs the
artifact. Inputs: /in/params.json, /in/model/ (model.pt, export.json, decode.json), /in/calibration/.
Output: /out/<output>/ (deploy.so, deploy.json, deploy.params, decode.json, report.json).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from posepipe_step import OUT, PARAMS, SETTINGS as S, agreement, check, fail, held_out_inputs, max_abs_diff, write_report

os.environ["TOPHUB_LOCATION"] = "NONE"  # arm_cpu schedules would download tuning logs (there is no network)
MODEL_IN = Path("/in/model")
TARGET = "llvm -device=arm_cpu -mtriple=aarch64-linux-gnu -mattr=+neon"
TWIN_TARGET = "llvm -mtriple=x86_64-linux-gnu"  # in this TVM a bare "llvm" means riscv64
CROSS_CXX = "aarch64-linux-gnu-g++"
CROSS_FLAGS = ["-march=armv8-a", "-mtune=cortex-a53"]
EMULATOR = ["qemu-aarch64-static", "-cpu", "cortex-a53", "-L", "/usr/aarch64-linux-gnu"]
RUNTIME = Path(os.environ["POSEPIPE_AARCH64_RUNTIME"])  # set by the image, with its origin
LOADER = Path("/opt/aarch64-runtime/run_graph")
PARAMS_MAGIC = 0xF7E58D4F05049CB7  # TVM's kTVMNDArrayListMagic
SHAPE = PARAMS["input"]["shape"]
PREPROCESSING = ("the sample app's CPU pre-processing (CPU mode has no DRP-AI Pre-processing Runtime): YUYV camera "
                 "frame to RGB, resize to {}x{}, (x - mean) / std with the recipe's normalisation, HWC to CHW, float32")


def relay_module():
    """The vendor script's frontend, parameter binding and passes, on the export's TorchScript."""
    import torch
    from tvm import relay, transform
    from tvm.relay.build_module import bind_params_by_name

    model = torch.jit.load(str(MODEL_IN / "model.pt")).eval()
    mod, params = relay.frontend.from_pytorch(model, [(PARAMS["input"]["name"], SHAPE)])
    mod["main"] = bind_params_by_name(mod["main"], params)
    with transform.PassContext(opt_level=3):
        passes = [relay.transform.SimplifyInference(), relay.transform.FoldConstant(),
                  relay.transform.FoldExplicitPadding(), relay.transform.BackwardFoldScaleAxis(),
                  relay.transform.ForwardFoldScaleAxis(), relay.transform.FoldConstant(),
                  relay.transform.DynamicToStatic(), relay.transform.RemoveUnusedFunctions()]
    return transform.Sequential(passes)(mod), params, model


def build(mod, params, target: str):
    from tvm import relay, transform

    with transform.PassContext(opt_level=3):
        graph, lib, built_params = relay.build(mod, target=target, target_host=target, params=params)
    return graph, lib, built_params


def save_params_sorted(params, path: Path) -> None:
    """deploy.params as relay.save_param_dict writes it, with the arrays in sorted-name order: TVM's own
    writer serialises each array; only the list around them is written here."""
    from tvm import runtime

    names = sorted(params)
    blobs = []
    for name in names:
        one = runtime.save_param_dict({name: params[name]})
        header = 8 + 8 + 8 + 8 + len(name.encode()) + 8  # magic, reserved, 1 name (length + bytes), 1 array
        blobs.append(one[header:])
    out = [struct.pack("<QQQ", PARAMS_MAGIC, 0, len(names))]
    out += [struct.pack("<Q", len(n.encode())) + n.encode() for n in names]
    out += [struct.pack("<Q", len(names))] + blobs
    path.write_bytes(b"".join(out))


def reference_outputs(model, inputs):
    import torch

    with torch.no_grad():
        outs = [model(torch.from_numpy(x)) for x in inputs]
    return [[o.numpy()] if hasattr(o, "numpy") else [t.numpy() for t in o] for o in outs]


def twin_check(mod, params, inputs, reference, tolerance: float):
    """(a): the Relay module built for x86-64, run in-process by TVM's graph executor."""
    import tvm
    from tvm.contrib import graph_executor

    graph, lib, built_params = build(mod, params, TWIN_TARGET)
    executor = graph_executor.create(graph, lib, tvm.cpu())
    executor.load_params(tvm.runtime.save_param_dict(built_params))
    outs = []
    for x in inputs:
        executor.set_input(PARAMS["input"]["name"], x)
        executor.run()
        outs.append([executor.get_output(i).numpy() for i in range(executor.get_num_outputs())])
    diff = max_abs_diff(reference, outs)
    figures = {"max_abs_diff": diff, "tolerance": tolerance, **agreement(reference, outs)}
    return check("x86-64 build of the same Relay module (TVM graph executor) vs the TorchScript export, held-out "
                 "images: checks the graph and weights, not the aarch64 code", diff <= tolerance, **figures), figures


def run_emulated(folder: Path, x):
    """The deploy.* in ``folder`` run on one batch under qemu-aarch64 (Cortex-A53) by run_graph: (outputs, seconds)."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        source, prefix = Path(tmp) / "input.f32", Path(tmp) / "output"
        source.write_bytes(np.ascontiguousarray(x, np.float32).tobytes())
        argv = [*EMULATOR, LOADER, RUNTIME, folder, PARAMS["input"]["name"], source, prefix, *SHAPE]
        print("+ " + " ".join(map(str, argv)), flush=True)
        start = time.monotonic()
        proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                              env={**os.environ, "LD_LIBRARY_PATH": str(RUNTIME.parent)})
        seconds = time.monotonic() - start
        print(proc.stdout + proc.stderr, end="", flush=True)
        if proc.returncode != 0:
            fail(f"the aarch64 deploy.so did not run under emulation (run_graph exited {proc.returncode})")
        shapes = [[int(d) for d in line.split()[2:]] for line in proc.stdout.splitlines() if line.startswith("output ")]
        return [np.fromfile(f"{prefix}{k}.f32", np.float32).reshape(shape) for k, shape in enumerate(shapes)], seconds


def emulated_check(inputs, reference, tolerance: float):
    """(b): the shipped deploy.so under qemu-aarch64 (Cortex-A53), loaded by run_graph."""
    count = int(S.get("emulated_images", 1))
    reference = reference[:count]
    runs = [run_emulated(OUT, x) for x in inputs[:count]]
    outs = [outputs for outputs, _ in runs]
    print(f"emulated inference: {sum(s for _, s in runs) / len(runs):.1f} s per image", flush=True)  # in the log: the report stays byte-stable
    diff = max_abs_diff(reference, outs)
    figures = {"max_abs_diff": diff, "tolerance": tolerance, "images": count, **agreement(reference, outs),
               "runtime": runtime_description(), "emulator": "qemu-aarch64-static -cpu cortex-a53 (" + tool_version(["qemu-aarch64-static", "--version"]) + ")"}
    return check("the aarch64 deploy.so itself under qemu-aarch64 (Cortex-A53), run by a graph-executor loader with an "
                 "aarch64 TVM runtime, vs the TorchScript export", diff <= tolerance, **figures), figures


def runtime_description() -> str:
    digest = hashlib.sha256(RUNTIME.read_bytes()).hexdigest()
    origin = os.environ["POSEPIPE_AARCH64_RUNTIME_ORIGIN"]
    return f"{RUNTIME.name} ({origin}; sha256 {digest})"


def tool_version(argv) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0].strip()


def board_contract(graph: str) -> dict:
    """What a board's runtime and sample app must match, read off the files written."""
    so = OUT / "deploy.so"
    header = so.read_bytes()[:20]
    machine = struct.unpack("<H", header[18:20])[0]
    dynamic = subprocess.run(["aarch64-linux-gnu-readelf", "--dynamic", "--version-info", "--wide", str(so)],
                             capture_output=True, text=True, check=True).stdout
    needed = sorted({line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line})
    glibc = sorted({w for w in dynamic.split() if w.startswith("GLIBC_")}, key=lambda v: [int(p) for p in v[6:].split(".")])
    magic = struct.unpack("<Q", (OUT / "deploy.params").read_bytes()[:8])[0]
    return {
        "elf": {"class": "ELF64" if header[4] == 2 else "ELF32", "machine": "AArch64" if machine == 183 else str(machine),
                "needed": needed, "glibc_at_least": glibc[-1] if glibc else None},
        "tvm_abi": {"graph_json_keys": sorted(json.loads(graph)), "params_magic": f"0x{magic:016X}",
                    "runtime_functions": "tvm.graph_executor.create, load_params, set_input, run, get_output"},
        "target": TARGET,
        "cross_compiler": f"{CROSS_CXX} {' '.join(CROSS_FLAGS)} ({tool_version([CROSS_CXX, '--version'])})",
        "tuning": "none: no TopHub tuning log (TOPHUB_LOCATION=NONE; the vendor's online compile may pick rk3399 schedules)",
        "preprocessing": PREPROCESSING.format(SHAPE[3], SHAPE[2]),
    }


def main() -> None:
    import torch  # noqa: F401  before tvm: the other order aborts at torch.jit.load (free(): invalid pointer)
    import tvm

    if not (MODEL_IN / "model.pt").is_file():
        fail("the export step produced no model.pt (TorchScript)")
    export = json.loads((MODEL_IN / "export.json").read_text())
    tolerance = float(export["tolerance"])
    inputs = held_out_inputs()
    OUT.mkdir(parents=True)
    shutil.copyfile(MODEL_IN / "decode.json", OUT / "decode.json")

    mod, params, model = relay_module()
    start = time.monotonic()
    graph, lib, built_params = build(mod, params, TARGET)
    from tvm.contrib import cc

    lib.export_library(str(OUT / "deploy.so"), fcompile=cc.cross_compiler(CROSS_CXX, CROSS_FLAGS))
    (OUT / "deploy.json").write_text(graph)
    save_params_sorted(built_params, OUT / "deploy.params")
    print(f"aarch64 compile and export: {time.monotonic() - start:.1f} s", flush=True)

    reference = reference_outputs(model, inputs)  # the TorchScript export in PyTorch, once for both checks
    twin, twin_figures = twin_check(mod, params, inputs, reference, tolerance)
    emulated, emulated_figures = emulated_check(inputs, reference, tolerance)
    report = {
        "tvm": f"{tvm.__version__} (hhb-tvm)", "settings": S,
        "board_contract": board_contract(graph),
        "sizes": {name: (OUT / name).stat().st_size for name in ("deploy.so", "deploy.json", "deploy.params")},
        "x86_twin_vs_export": twin_figures, "emulated_vs_export": emulated_figures,
        "checks": [twin, emulated],
    }
    write_report(report)
    failed = [f"{c['name']}: max abs diff {c['figures']['max_abs_diff']:.3g} > {tolerance:g}"
              for c in report["checks"] if not c["passed"]]
    if failed:
        fail("accuracy gate: " + "; ".join(failed))


if __name__ == "__main__":
    main()
