"""CPU latency of a recipe's open targets: ONNX Runtime FP32 and INT8 and OpenVINO FP16 and INT8 IR,
against the unoptimised export, side by side in one process.

Builds each seed recipe's export, ort_fp32, ort_int8, ov_fp16 and ov_int8 steps on a scratch
store (random weights in MMPose 0.x form and synthetic calibration scenes, as the tests do:
latency does not depend on weight values; the accuracy gates are opened for them), then times
every model in the openvino image (which carries ONNX Runtime as its reference): median of 20
runs, batch 1, 2 threads, OpenVINO at f32 inference precision. Goals (issue 9): FP32 <= 1.0x,
INT8 <= 0.8x the export.
Usage: python3 bench/ort_bench.py [--smoke] [recipe ...]
--smoke: the bench's timing and table path in seconds, so the test suite can run it and it cannot rot:
face_deeppose's input shape and name, a one-convolution model made in the openvino image standing in for
every column (no checkpoint, no export, no compile; its figures say nothing) and 3 timed runs. The real
builds are the tests' (tests/test_pipeline.py, tests/test_openvino.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.edges.store.blobs import BlobStore  # noqa: E402
from pipelines.edges.containers.docker_driver import DockerDriver, Mount  # noqa: E402
from pipelines.core.plan import CALIBRATION_TOOLCHAIN  # noqa: E402
from pipelines.run.engine import Engine, EngineOptions  # noqa: E402
from pipelines.edges.store.fetcher import Fetcher  # noqa: E402
from pipelines.edges.containers.images import ImageBuilder, load_toolchain  # noqa: E402
from pipelines.core.plan import compile_step_id, export_step_id, plan  # noqa: E402
from pipelines.core.recipe import Recipe, RemoteFile, Target, load_recipe  # noqa: E402
from pipelines.core.steps import Step  # noqa: E402
from pipelines.edges.store.steps import StepCache  # noqa: E402
from tests.conftest import SHARED_STORE  # noqa: E402

RULE = {"quantize_ops", "fp32_depthwise", "int8_min_map"}  # a recipe's statement of what stays FP32

TIMER = """
import json, sys, time
import numpy as np, onnxruntime as ort
ort.set_default_logger_severity(3)
shape, name = json.loads(sys.argv[1]), sys.argv[2]
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
out = {}
for label in sys.argv[3].split(","):
    if label.startswith("ov_"):
        import openvino as ov
        compiled = ov.Core().compile_model(f"/in/{label}.xml", "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 2})
        request = compiled.create_infer_request()
        infer = lambda: request.infer({0: x})
    else:
        so = ort.SessionOptions(); so.intra_op_num_threads = 2
        s = ort.InferenceSession(f"/in/{label}.onnx", so, providers=["CPUExecutionProvider"])
        infer = lambda: s.run(None, {name: x})
    for _ in range(3): infer()
    t = []
    for _ in range(RUNS):
        t0 = time.perf_counter(); infer(); t.append(time.perf_counter() - t0)
    out[label] = float(np.median(t) * 1000)
print(json.dumps(out))
"""
# --smoke: one convolution on the recipe's input, written under every column's name (ORT's dynamic INT8
# quantization for int8, OpenVINO's converter for the IR), so the timer and the table run without a build.
SMOKE_MODELS = """
import json, sys
import numpy as np, onnx, openvino as ov
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import quantize_dynamic
shape, name = json.loads(sys.argv[1]), sys.argv[2]
w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, shape[1], 3, 3)).astype(np.float32), "w")
graph = helper.make_graph([helper.make_node("Conv", [name, "w"], ["y"], pads=[1, 1, 1, 1])], "smoke",
                          [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
for label in ("export", "fp32"):
    onnx.save(model, f"/out/{label}.onnx")
quantize_dynamic("/out/fp32.onnx", "/out/int8.onnx")
for label, fp16 in (("ov_fp16", True), ("ov_int8", False)):
    ov.save_model(ov.convert_model("/out/fp32.onnx"), f"/out/{label}.xml", compress_to_fp16=fp16)
print("smoke models written")
"""
OPEN_GATES = {"max_keypoint_error_px": 1e9, "max_normalized_error": 1e9}  # random weights: latency only


def run(driver: DockerDriver, image: str, script: Path, args: list[str], mounts: list[Mount], work: Path) -> str:
    lines: list[str] = []
    res = driver.run(image=image, command=["/opt/venv/bin/python", "/in/script.py", *args],
                     mounts=[Mount(script, "/in/script.py"), *mounts], env={"MPLCONFIGDIR": "/tmp"},
                     label="bench", log_path=work / "log", on_line=lines.append, timeout=3600)
    if res.exit_code:
        sys.exit((work / "log").read_text()[-3000:])
    return lines[-1]


def main() -> None:
    args = sys.argv[1:]
    smoke = "--smoke" in args
    names = [a for a in args if a != "--smoke"] or (
        ["face_deeppose"] if smoke else ["face_deeppose", "hand_hrnetv2", "litehrnet", "hrnet_sophon", "hrnet_pose_ae",
                                         "rtmpose_m_body", "rtmpose_m_face"])
    runs = 3 if smoke else 20
    driver = DockerDriver.from_env()
    docker = ROOT / "docker"
    images = ImageBuilder(driver, docker, SHARED_STORE)
    timing = images.ensure(load_toolchain(docker, "openvino")).id
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        print("recipe          export ms   fp32 ms  int8 ms   fp32/export  int8/export  int8/fp32   "
              "ov_fp16 ms  ov_int8 ms  ov_fp16/export  ov_int8/export  ov_int8/fp32")
        if smoke:
            print("(smoke: a one-convolution model in every column; its figures say nothing)")
        built = None if smoke else Built(driver, images, work)
        for name in names:
            recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
            targets = tuple(recipe.target(t) for t in ("ort_fp32", "ort_int8", "ov_fp16", "ov_int8"))
            export = next(s for s in plan(recipe, targets, "0" * 64, None) if s.id == export_step_id(recipe, 1))
            shape, input_name = export.params["input"]["shape"], export.params["input"]["name"]
            models = work / f"{name}-models"
            models.mkdir()
            if smoke:
                os.chown(models, 1000, 1000) if os.geteuid() == 0 else None
                run(driver, timing, _script(work, "models.py", SMOKE_MODELS), [json.dumps(shape), input_name],
                    [Mount(models, "/out", False)], work)
                labels = ["export", "fp32", "int8", "ov_fp16", "ov_int8"]
            else:
                labels = built.models(recipe, targets, export, models)
            t = json.loads(run(driver, timing, _script(work, "timer.py", TIMER.replace("/in/{label}", "/in/m/{label}").replace("RUNS", str(runs))),
                               [json.dumps(shape), input_name, ",".join(labels)], [Mount(models, "/in/m")], work))
            e = t["export"]
            print(f"{name:15s} {e:9.1f} {t['fp32']:9.1f} {t['int8']:8.1f}   "
                  f"{t['fp32'] / e:9.2f}x  {t['int8'] / e:9.2f}x  {t['int8'] / t['fp32']:8.2f}x   "
                  f"{t['ov_fp16']:9.1f} {t['ov_int8']:10.1f}   {t['ov_fp16'] / e:12.2f}x  {t['ov_int8'] / e:13.2f}x  "
                  f"{t['ov_int8'] / t['fp32']:10.2f}x", flush=True)
            if "int8_every_op" in t:
                print(f"  {name} without the recipe's INT8 rule (every op INT8): {t['int8_every_op']:.1f} ms, "
                      f"{t['int8_every_op'] / t['export']:.2f}x export, {t['int8_every_op'] / t['fp32']:.2f}x fp32", flush=True)


class Built:
    """The real models: each recipe's export and its open targets built on the shared test store from a
    random-weight checkpoint, with synthetic scenes as the calibration set."""

    def __init__(self, driver: DockerDriver, images: ImageBuilder, work: Path) -> None:
        self.driver, self.images, self.work = driver, images, work
        self.mmpose = mmpose = images.ensure(load_toolchain(ROOT / "docker", "mmpose")).id
        out = work / "scenes"
        out.mkdir()
        os.chown(out, 1000, 1000) if os.geteuid() == 0 else None
        run(driver, mmpose, ROOT / "tests" / "mmpose" / "train_tiny.py", [], [Mount(out, "/out", False)], work)
        self.store = BlobStore(SHARED_STORE)
        self.fetch = Fetcher(self.store, work / "lock")
        self.calibration = self.fetch.fetch(RemoteFile(str(out / "calibration.zip"), "unpinned")).sha256

    def models(self, recipe: Recipe, targets: tuple[Target, ...], export: Step, models: Path) -> list[str]:
        """Build the recipe's steps and link each model into ``models`` under its column's label."""
        name, work = recipe.name, self.work
        ck = work / name
        ck.mkdir()
        os.chown(ck, 1000, 1000) if os.geteuid() == 0 else None
        shape = ",".join(map(str, export.params["input"]["shape"]))
        run(self.driver, self.mmpose, ROOT / "tests" / "mmpose" / "make_checkpoint.py",
            [export.params["mmpose"]["config_1x"], "7", shape], [Mount(ck, "/out", False)], work)
        checkpoint = self.fetch.fetch(RemoteFile(str(ck / "checkpoint.pth"), "unpinned")).sha256
        steps = plan(recipe, targets, checkpoint, self.calibration)
        for s in steps:  # the bench's synthetic scenes stand in for the calibration set
            if s.toolchain == CALIBRATION_TOOLCHAIN:
                s.params.update(select="scenes/*.png", count=8)
            settings = s.params.get("settings", {})
            if settings.get("quantize") == "int8" or settings.get("precision") in ("INT8", "FP16"):
                s.params["settings"] = {**settings, **OPEN_GATES, **({"max_abs_diff": 1e9} if "max_abs_diff" in settings else {})}
        int8_step = next(s for s in steps if s.id == compile_step_id(recipe, targets[1]))
        if RULE & set(int8_step.params["settings"]):  # the same INT8 target without the recipe's rule, side by side
            settings = {k: v for k, v in int8_step.params["settings"].items() if k not in RULE}
            steps.append(replace(int8_step, id=f"{int8_step.id}#every-op", params={**int8_step.params, "settings": settings}))
        engine = Engine(self.driver, self.images, StepCache(SHARED_STORE), self.store, ROOT / "docker", work / "logs",
                        EngineOptions(jobs=1))
        res = engine.run(steps)
        found = {
            "export": res[export.id].outputs / "model.onnx",
            "fp32": res[compile_step_id(recipe, targets[0])].outputs / targets[0].output / "model.onnx",
            "int8": res[int8_step.id].outputs / targets[1].output / "model.onnx",
        }
        if f"{int8_step.id}#every-op" in res:
            found["int8_every_op"] = res[f"{int8_step.id}#every-op"].outputs / targets[1].output / "model.onnx"
        for label, path in found.items():
            os.link(path, models / f"{label}.onnx")
        for target in targets[2:]:  # the IR: model.xml beside model.bin, linked under the target's name
            ir = res[compile_step_id(recipe, target)].outputs / target.output
            for suffix in ("xml", "bin"):
                os.link(ir / f"model.{suffix}", models / f"{target.id}.{suffix}")
        return [*found, *(t.id for t in targets[2:])]


def _script(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(text)
    return path


if __name__ == "__main__":
    main()
