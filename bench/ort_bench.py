"""CPU latency of a recipe's open targets: ONNX Runtime FP32 and INT8 and OpenVINO FP16 and INT8 IR,
against the unoptimised export, side by side in one process.

Builds each seed recipe's export, ort_fp32, ort_int8, ov_fp16 and ov_int8 steps on a scratch
store (random weights in MMPose 0.x form and synthetic calibration scenes, as the tests do:
latency does not depend on weight values; the accuracy gates are opened for them), then times
every model in the openvino image (which carries ONNX Runtime as its reference): median of 20
runs, batch 1, 2 threads, OpenVINO at f32 inference precision. Goals (issue 9): FP32 <= 1.0x,
INT8 <= 0.8x the export.
Usage: python3 bench/ort_bench.py [--smoke] [recipe ...]
--smoke: face_deeppose only and 3 timed runs, so the test suite can run it and it cannot rot.
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
from pipelines.core.recipe import RemoteFile, load_recipe  # noqa: E402
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
    mmpose, timing = (images.ensure(load_toolchain(docker, n)).id for n in ("mmpose", "openvino"))
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        out = work / "scenes"
        out.mkdir()
        os.chown(out, 1000, 1000) if os.geteuid() == 0 else None
        run(driver, mmpose, ROOT / "tests" / "mmpose" / "train_tiny.py", [], [Mount(out, "/out", False)], work)
        store = BlobStore(SHARED_STORE)
        fetch = Fetcher(store, work / "lock")
        calibration = fetch.fetch(RemoteFile(str(out / "calibration.zip"), "unpinned")).sha256
        print("recipe          export ms   fp32 ms  int8 ms   fp32/export  int8/export  int8/fp32   "
              "ov_fp16 ms  ov_int8 ms  ov_fp16/export  ov_int8/export  ov_int8/fp32")
        for name in names:
            recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
            targets = tuple(recipe.target(t) for t in ("ort_fp32", "ort_int8", "ov_fp16", "ov_int8"))
            export = next(s for s in plan(recipe, targets, "0" * 64, None) if s.id == export_step_id(recipe, 1))
            ck = work / name
            ck.mkdir()
            os.chown(ck, 1000, 1000) if os.geteuid() == 0 else None
            shape = ",".join(map(str, export.params["input"]["shape"]))
            run(driver, mmpose, ROOT / "tests" / "mmpose" / "make_checkpoint.py",
                [export.params["mmpose"]["config_1x"], "7", shape], [Mount(ck, "/out", False)], work)
            checkpoint = fetch.fetch(RemoteFile(str(ck / "checkpoint.pth"), "unpinned")).sha256
            steps = plan(recipe, targets, checkpoint, calibration)
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
            engine = Engine(driver, images, StepCache(SHARED_STORE), store, docker, work / "logs", EngineOptions(jobs=1))
            res = engine.run(steps)
            models = work / f"{name}-models"
            models.mkdir()
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
            labels = [*found, *(t.id for t in targets[2:])]
            t = json.loads(run(driver, timing, _timer(work, runs), [json.dumps(export.params["input"]["shape"]),
                                                             export.params["input"]["name"], ",".join(labels)],
                               [Mount(models, "/in/m")], work))
            e = t["export"]
            print(f"{name:15s} {e:9.1f} {t['fp32']:9.1f} {t['int8']:8.1f}   "
                  f"{t['fp32'] / e:9.2f}x  {t['int8'] / e:9.2f}x  {t['int8'] / t['fp32']:8.2f}x   "
                  f"{t['ov_fp16']:9.1f} {t['ov_int8']:10.1f}   {t['ov_fp16'] / e:12.2f}x  {t['ov_int8'] / e:13.2f}x  "
                  f"{t['ov_int8'] / t['fp32']:10.2f}x", flush=True)
            if "int8_every_op" in t:
                print(f"  {name} without the recipe's INT8 rule (every op INT8): {t['int8_every_op']:.1f} ms, "
                      f"{t['int8_every_op'] / t['export']:.2f}x export, {t['int8_every_op'] / t['fp32']:.2f}x fp32", flush=True)


def _timer(work: Path, runs: int) -> Path:
    path = work / "timer.py"
    path.write_text(TIMER.replace("/in/{label}", "/in/m/{label}").replace("RUNS", str(runs)))
    return path


if __name__ == "__main__":
    main()
