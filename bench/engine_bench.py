"""Engine overheads, measured side by side in one run.

1. No-op `invoke build` of real models vs `invoke --list` (goal <= 1.5x, zero containers):
   face_deeppose and hrnet_sophon (HRNet-W32, a 115 MB model) with random-weight checkpoints
   made in the mmpose image and served over loopback, really exported and built for
   `--target ort_fp32` once, then rebuilt with nothing changed.
2. Per-step overhead vs a raw `docker run` of the same command (goal <= 1.10x or <= 300 ms).
3. Two independent CPU-bound steps, --jobs 2 vs --jobs 1 (goal wall <= 0.65x).
Usage: python3 bench/engine_bench.py [--smoke]
--smoke: the same code paths, quickly (one small recipe on the test stand-ins, one round);
the test suite runs it so the benchmark cannot rot.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.core.plan import export_step_id, plan  # noqa: E402
from pipelines.core.recipe import load_recipe  # noqa: E402
from pipelines.core.steps import Step  # noqa: E402
from pipelines.edges.containers.docker_driver import DockerDriver, Mount  # noqa: E402
from pipelines.run.engine import EngineOptions  # noqa: E402
from pipelines.edges.containers.images import ImageBuilder, load_toolchain  # noqa: E402
from tests.conftest import SHARED_STORE, TEST_TOOLCHAINS, make_engine, without_preview  # noqa: E402
from tests.httpserver import LoopbackServer, Route  # noqa: E402

REAL = ("face_deeppose", "hrnet_sophon")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def random_checkpoint(name: str, work: Path) -> bytes:
    """A random-weight checkpoint of the recipe's real model, made in the mmpose image."""
    driver = DockerDriver.from_env()
    image = ImageBuilder(driver, ROOT / "docker", SHARED_STORE).ensure(load_toolchain(ROOT / "docker", "mmpose")).id
    recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
    export = next(s for s in plan(recipe, recipe.targets, "0" * 64, None) if s.id == export_step_id(recipe, 1))
    out = work / f"ckpt-{name}"
    out.mkdir()
    if os.geteuid() == 0:
        os.chown(out, 1000, 1000)
    script = ROOT / "tests" / "mmpose" / "make_checkpoint.py"
    res = driver.run(image=image, command=["/opt/venv/bin/python", "/in/make.py", export.params["mmpose"]["config_1x"], "7",
                                           ",".join(map(str, export.params["input"]["shape"]))],
                     mounts=[Mount(script, "/in/make.py"), Mount(out, "/out", False)], env={"MPLCONFIGDIR": "/tmp"},
                     label="bench/checkpoint", log_path=work / f"ckpt-{name}.log", on_line=lambda line: None, timeout=1800)
    if res.exit_code:
        sys.exit((work / f"ckpt-{name}.log").read_text()[-3000:])
    return (out / "checkpoint.pth").read_bytes()


def scratch_checkout(root: Path, server: LoopbackServer, names: tuple[str, ...], real: bool,
                     calibration: bytes | None = None, extra: tuple[str, ...] = ()) -> None:
    """recipes/ with their downloads on loopback; docker/ real (a real export) or the test stand-ins.
    ``calibration``: a zip of scenes/*.png served in place of the recipes' archive (count 8)."""
    (root / "recipes").mkdir(parents=True)
    for folder in ("base", "calibration", *(("mmpose", "onnxruntime") if real else ()), *extra):
        shutil.copytree(ROOT / "docker" / folder, root / "docker" / folder)
    if not real:
        for folder in ("mmpose", "onnxruntime"):
            shutil.copytree(TEST_TOOLCHAINS / "standin", root / "docker" / folder)
    for name in names:
        text = without_preview((ROOT / "recipes" / f"{name}.yaml").read_text())
        url = re.search(r"checkpoint:\n\s+url: (\S+)", text).group(1)
        body = random_checkpoint(name, root.parent) if real else f"bench bytes for {url}\n".encode()
        local = server.add(f"/{name}.pth", Route(body))
        block = re.search(rf"url: {re.escape(url)}\n\s+sha256: \S+", text).group(0)
        text = text.replace(block, f"url: {local}\n    sha256: {hashlib.sha256(body).hexdigest()}")
        if calibration is not None:
            url = server.add(f"/{name}-scenes.zip", Route(calibration))
            text = re.sub(r"url: http://images\.cocodataset\.org\S+\n(\s+)sha256: \S+",
                          lambda m: f"url: {url}\n{m[1]}sha256: {hashlib.sha256(calibration).hexdigest()}", text)
            text = re.sub(r"count: \d+", "count: 8", text.replace('select: "val2017/*.jpg"', 'select: "scenes/*.png"'))
        (root / "recipes" / f"{name}.yaml").write_text(text)


def invoke(env: dict, *args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"invoke {' '.join(args)} failed ({res.returncode}):\n{res.stderr[-3000:]}")


def containers_created(since: float) -> int:
    out = subprocess.run(
        ["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
         "--filter", "type=container", "--filter", "event=create", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout
    return len(out.split())


def noop_build(work: Path, smoke: bool) -> None:
    names, rounds = (("face_deeppose",), 1) if smoke else (REAL, 3)
    with LoopbackServer() as server:
        scratch_checkout(work / "repo", server, names, real=not smoke)
        env = {**os.environ, "POSEPIPE_ROOT": str(work / "repo"), "POSEPIPE_STORE": str(work / "store"), "CI": "1"}
        for n in names:  # warm: every step runs once, for real
            invoke(env, "build", "--recipe", n, "--target", "ort_fp32")
        for n in names:
            t_start = time.time()
            builds, lists = [], []
            for _ in range(rounds):  # side by side, interleaved
                builds.append(timed(lambda: invoke(env, "build", "--recipe", n, "--target", "ort_fp32")))
                lists.append(timed(lambda: invoke(env, "--list")))
            created = containers_created(t_start)
            b, lst = statistics.median(builds), statistics.median(lists)
            size = sum(f.stat().st_size for f in (work / "repo" / "artifacts" / n / "ort_fp32").rglob("*") if f.is_file())
            print(f"1. no-op build {n} --target ort_fp32 ({size / 1e6:.1f} MB artifact): {b:.2f} s vs `invoke --list` {lst:.2f} s")
            print(f"   ratio {b / lst:.2f}x (goal <= 1.5x); containers started during the no-op builds: {created}")


def step_overhead(work: Path, smoke: bool) -> None:
    engine = make_engine(work / "overhead", EngineOptions(jobs=1, no_cache=True))
    step = Step("w", "probe", {"action": "write", "text": "x"}, "bench/w")
    engine.run([step])  # image ready
    image = engine.key_for(step, {})[1].id
    raw = ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "--read-only",
           "--tmpfs", "/tmp", "-v", f"{work}/params.json:/in/params.json:ro", "-v", f"{work}/out:/out",
           image, "/opt/venv/bin/python", "/opt/posepipe/step.py"]
    (work / "params.json").write_text('{"action": "write", "text": "x"}')
    (work / "out").mkdir()
    os.chmod(work / "out", 0o777)
    ours, docker_run = [], []
    for _ in range(2 if smoke else 7):
        ours.append(timed(lambda: engine.run([step])))
        docker_run.append(timed(lambda: subprocess.run(raw, check=True, capture_output=True)))
    o, d = statistics.median(ours), statistics.median(docker_run)
    print(f"2. one step: posepipe {o * 1000:.0f} ms vs raw docker run {d * 1000:.0f} ms")
    print(f"   ratio {o / d:.2f}x, overhead {(o - d) * 1000:+.0f} ms (goal <= 1.10x or <= 300 ms)")


def parallel(work: Path, smoke: bool) -> None:
    def steps(tag: str):
        return [Step(f"{tag}{i}", "probe", {"action": "burn", "rounds": 200_000 if smoke else 4_000_000, "tag": f"{tag}{i}"}, f"bench/{tag}{i}") for i in range(2)]

    walls = {}
    for jobs in (1, 2):
        engine = make_engine(work / f"par{jobs}", EngineOptions(jobs=jobs, no_cache=True))
        engine.run(steps("warm"))
        walls[jobs] = statistics.median(timed(lambda: engine.run(steps(f"j{jobs}"))) for _ in range(1 if smoke else 3))
    print(f"3. two CPU-bound steps: --jobs 2 {walls[2]:.2f} s vs --jobs 1 {walls[1]:.2f} s")
    print(f"   ratio {walls[2] / walls[1]:.2f}x (goal <= 0.65x)")


def main() -> None:
    smoke = "--smoke" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        noop_build(work, smoke)
        step_overhead(work, smoke)
        parallel(work, smoke)


if __name__ == "__main__":
    main()
