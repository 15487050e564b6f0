"""Sophgo TPU-MLIR on this machine: every BM1684 bmodel of a recipe, compiled and simulated for real.

Builds the recipe's sophgo_tpu_mlir targets through `invoke build` on a scratch checkout (a
random-weight checkpoint of the real model made in the mmpose image, synthetic calibration
scenes, both served over loopback), then prints per target: the compile step's wall time, the
bmodel's size, TPU-MLIR's own similarity figures and posepipe's simulator-vs-FP32 keypoint error.
Random weights give near-flat heatmaps, so the keypoint gate is opened wide and its figures say
little about accuracy; times, sizes and the tool's similarity are what this measures. It also
builds one target twice (two clean stores) and reports which bmodel bytes differ.
Usage: python3 bench/tpu_mlir_bench.py [--smoke] [--target ID ...] [recipe]   (default hrnet_sophon, every
TPU-MLIR target). --smoke runs the bench's whole path in seconds so it cannot rot: litehrnet's first
TPU-MLIR target only, with the test stand-ins for the export and the compile (no model, no
compile: its row is labelled contract-test); the real compile is tests/test_tpu_mlir.py's.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import scratch_checkout  # noqa: E402
from pipelines.core.recipe import load_recipe  # noqa: E402
from tests.conftest import SHARED_STORE, TEST_TOOLCHAINS  # noqa: E402
from tests.httpserver import LoopbackServer  # noqa: E402


def scenes_zip(count: int = 40, size: int = 192) -> bytes:
    """Synthetic calibration scenes: smooth random colour fields as PNGs (no imaging library needed)."""
    def png(seed: int) -> bytes:
        r = random.Random(seed)
        base = [r.randrange(256) for _ in range(3)]
        rows = b"".join(b"\0" + bytes((base[c] + x * (c + 1) + y) % 256 for x in range(size) for c in range(3)) for y in range(size))
        chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)  # noqa: E731
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(count):
            z.writestr(f"scenes/{i:04d}.png", png(i))
    return buf.getvalue()


def build(env: dict, recipe: str, target: str) -> float:
    """The wall seconds of the target's compile step, as the build's console reports it."""
    res = subprocess.run([sys.executable, "-m", "invoke", "build", "--recipe", recipe, "--target", target],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"build {recipe}/{target} failed ({res.returncode}):\n{res.stderr[-4000:]}")
    found = re.search(rf"(?:ran|cached)\s+{re.escape(recipe)}/{re.escape(target)}/compile\s+([\d.]+) s", res.stderr)
    return float(found.group(1)) if found else float("nan")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default="hrnet_sophon")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--target", action="append", default=[], help="only these targets (repeat)")
    parser.add_argument("--no-rebuild", action="store_true", help="skip building the first target again from a clean store")
    args = parser.parse_args()
    smoke = args.smoke
    name = "litehrnet" if smoke else args.recipe
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    targets = [t.id for t in recipe.targets if t.toolchain == "sophgo_tpu_mlir" and (not args.target or t.id in args.target)]
    targets = targets[: 1 if smoke else None]
    with tempfile.TemporaryDirectory() as d, LoopbackServer() as server:
        work = Path(d)
        scratch_checkout(work / "repo", server, (name,), real=not smoke, calibration=scenes_zip(),
                         extra=() if smoke else ("sophgo_tpu_mlir",))
        if smoke:
            shutil.copytree(TEST_TOOLCHAINS / "tpu_mlir_standin", work / "repo" / "docker" / "sophgo_tpu_mlir")
        text = (work / "repo" / "recipes" / f"{name}.yaml").read_text()
        text = re.sub(r"max_keypoint_error_px: \S+", "max_keypoint_error_px: 100000", text)
        (work / "repo" / "recipes" / f"{name}.yaml").write_text(re.sub(r"max_normalized_error: \S+", "max_normalized_error: 100000", text))
        env = {**os.environ, "POSEPIPE_ROOT": str(work / "repo"), "POSEPIPE_STORE": str(SHARED_STORE), "CI": "1"}
        build(env, name, "ort_fp32")  # the export (and images) first, so the times below are the compiles
        print(f"{name}: target, step wall s, bmodel MB, model_deploy lowering cos / eucl / SQNR (verdict), simulator vs fp32 mean / p95 px, PCK@2px")
        for target in targets:
            wall = build(env, name, target)
            manifest = json.loads((work / "repo" / "artifacts" / name / target / "manifest.json").read_text())
            report = next(v for k, v in manifest["verification"].items() if k.startswith(f"{name}/{target}/"))
            sim, tool = report["simulator_vs_fp32_export"], report["model_deploy"]
            sim_figs = tool["lowering"]
            cos, eucl, sqnr = (sim_figs.get(k, "?") for k in ("cosine", "euclidean", "sqnr"))
            print(f"  {target:22s} {wall:7.1f} {report['bmodel_bytes'] / 1e6:8.2f}   "
                  f"{cos} / {eucl} / {sqnr} ({tool['verdict']})   {sim['mean_error_px']:.2f} / "
                  f"{sim['p95_error_px']:.2f}   {sim['pck_2px']:.2f}   label {manifest['label']}", flush=True)
        builds, lists = [], []
        for _ in range(3):  # a no-op rebuild of the first target beside `invoke --list`, interleaved
            builds.append(timed(lambda: build(env, name, targets[0])))
            lists.append(timed(lambda: subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=ROOT, env=env,
                                                      capture_output=True, check=True)))
        b, lst = statistics.median(builds), statistics.median(lists)
        print(f"no-op build of {targets[0]}: {b:.2f} s vs `invoke --list` {lst:.2f} s, ratio {b / lst:.2f}x (goal <= 1.5x)")
        if not (smoke or args.no_rebuild):  # the same bmodel twice, from two clean stores
            folder = work / "repo" / "artifacts" / name / targets[0]
            first = next(p for p in folder.rglob("*.bmodel")).read_bytes()
            before = json.loads(next(folder.rglob("report.json")).read_text())
            env2 = {**env, "POSEPIPE_STORE": str(work / "store2")}
            subprocess.run([sys.executable, "-m", "invoke", "build", "--recipe", name, "--target", targets[0], "--no-cache"],
                           cwd=ROOT, env=env2, capture_output=True, check=True)
            second = next(p for p in (work / "repo" / "artifacts" / name / targets[0]).rglob("*.bmodel")).read_bytes()
            diff = [i for i, (a, b) in enumerate(zip(first, second)) if a != b]
            print(f"rebuild of {targets[0]}: {len(first)} vs {len(second)} bytes, {len(diff)} byte(s) differ at {diff[:16]}")
            after = json.loads(next(folder.rglob("report.json")).read_text())
            stages, again = before.get("tool_outputs_sha256", {}), after.get("tool_outputs_sha256", {})
            moved = sorted(k for k in set(stages) | set(again) if stages.get(k) != again.get(k))
            print(f"  tool outputs before model_deploy that differ: {', '.join(moved) or 'none'}; simulated outputs "
                  + ("equal" if before.get("simulator_outputs_sha256") == after.get("simulator_outputs_sha256") else "DIFFER"))


if __name__ == "__main__":
    main()
