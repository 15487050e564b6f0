"""Engine overheads, measured side by side in one run (issue 3's goals).

1. No-op `invoke build` of every recipe vs `invoke --list` (goal <= 1.5x, zero containers).
   Runs on a scratch checkout whose export/ONNX Runtime stages are the test stand-ins,
   with checkpoints served over loopback, so every step is a cache hit.
2. Per-step overhead vs a raw `docker run` of the same command (goal <= 1.10x or <= 300 ms).
3. Two independent CPU-bound steps, --jobs 2 vs --jobs 1 (goal wall <= 0.65x).
Usage: python3 bench/engine_bench.py
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

from pipelines.engine import EngineOptions, Step  # noqa: E402
from pipelines.recipe import recipe_paths  # noqa: E402
from tests.conftest import TEST_TOOLCHAINS, make_engine  # noqa: E402
from tests.httpserver import LoopbackServer, Route  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def scratch_checkout(root: Path, server: LoopbackServer) -> None:
    (root / "recipes").mkdir(parents=True)
    shutil.copytree(ROOT / "docker" / "base", root / "docker" / "base")
    for name in ("mmpose", "onnxruntime"):
        shutil.copytree(TEST_TOOLCHAINS / "standin", root / "docker" / name)
    for path in recipe_paths(ROOT / "recipes"):
        text = path.read_text()
        for url in re.findall(r"url: (\S+)", text):
            body = f"bench bytes for {url}\n".encode()
            local = server.add(f"/{hashlib.sha256(url.encode()).hexdigest()}", Route(body))
            block = re.search(rf"url: {re.escape(url)}\n\s+sha256: \S+", text).group(0)
            text = text.replace(block, f"url: {local}\n    sha256: {hashlib.sha256(body).hexdigest()}")
        (root / "recipes" / path.name).write_text(text)


def invoke(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, env=env, capture_output=True)


def containers_created(since: float) -> int:
    out = subprocess.run(
        ["docker", "events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
         "--filter", "type=container", "--filter", "event=create", "--format", "{{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout
    return len(out.split())


def noop_build(work: Path) -> None:
    with LoopbackServer() as server:
        scratch_checkout(work / "repo", server)
        env = {**os.environ, "POSEPIPE_ROOT": str(work / "repo"), "POSEPIPE_STORE": str(work / "store"), "CI": "1"}
        names = [p.stem for p in recipe_paths(work / "repo" / "recipes")]
        for n in names:  # warm: every step runs once
            invoke(env, "build", "--recipe", n)
        t_start = time.time()
        builds, lists = [], []
        for _ in range(3):
            builds.append(timed(lambda: [invoke(env, "build", "--recipe", n) for n in names]))
            lists.append(timed(lambda: [invoke(env, "--list") for _ in names]))
        created = containers_created(t_start)
    b, lst = statistics.median(builds), statistics.median(lists)
    print(f"1. no-op build of {len(names)} recipes: {b:.2f} s vs `invoke --list` x{len(names)}: {lst:.2f} s")
    print(f"   ratio {b / lst:.2f}x (goal <= 1.5x); containers started during the no-op builds: {created}")


def step_overhead(work: Path) -> None:
    engine = make_engine(work / "overhead", EngineOptions(jobs=1, no_cache=True))
    step = Step("w", "probe", {"action": "write", "text": "x"}, "bench/w")
    engine.run([step])  # image ready
    image = engine.key_for(step, {})[1]
    raw = ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "--read-only",
           "--tmpfs", "/tmp", "-v", f"{work}/params.json:/in/params.json:ro", "-v", f"{work}/out:/out",
           image, "/opt/venv/bin/python", "/opt/posepipe/step.py"]
    (work / "params.json").write_text('{"action": "write", "text": "x"}')
    (work / "out").mkdir()
    os.chmod(work / "out", 0o777)
    ours, docker_run = [], []
    for _ in range(7):
        ours.append(timed(lambda: engine.run([step])))
        docker_run.append(timed(lambda: subprocess.run(raw, check=True, capture_output=True)))
    o, d = statistics.median(ours), statistics.median(docker_run)
    print(f"2. one step: posepipe {o * 1000:.0f} ms vs raw docker run {d * 1000:.0f} ms")
    print(f"   ratio {o / d:.2f}x, overhead {(o - d) * 1000:+.0f} ms (goal <= 1.10x or <= 300 ms)")


def parallel(work: Path) -> None:
    def steps(tag: str):
        return [Step(f"{tag}{i}", "probe", {"action": "burn", "rounds": 4_000_000, "tag": f"{tag}{i}"}, f"bench/{tag}{i}") for i in range(2)]

    walls = {}
    for jobs in (1, 2):
        engine = make_engine(work / f"par{jobs}", EngineOptions(jobs=jobs, no_cache=True))
        engine.run(steps("warm"))
        walls[jobs] = statistics.median(timed(lambda: engine.run(steps(f"j{jobs}"))) for _ in range(3))
    print(f"3. two CPU-bound steps: --jobs 2 {walls[2]:.2f} s vs --jobs 1 {walls[1]:.2f} s")
    print(f"   ratio {walls[2] / walls[1]:.2f}x (goal <= 0.65x)")


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        noop_build(work)
        step_overhead(work)
        parallel(work)


if __name__ == "__main__":
    main()
