"""Machine B's build of a recipe from the remote cache vs machine A's cold build, side by side in one run.

Two stores stand for two machines, sharing one real OCI registry on 127.0.0.1 (Debian's
docker-registry) and one Docker engine (so both have the toolchain images: this measures steps).
Machine A builds the recipe's target with an empty store and pushes every step; machine B, with
another empty store, builds the same target. Reported: both wall times, their ratio, B's
containers (goal 0) and the bytes B pulled against the bytes of A's step outputs. Rounds
alternate which store is fresh, each round with new stores and a new registry.
Usage: python3 bench/remote_cache_bench.py [--smoke] [--recipe NAME] [--rounds N]
--smoke: the same code paths on the test stand-ins, one round (the test suite runs it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_bench import containers_created, invoke, scratch_checkout  # noqa: E402
from tests.conftest import local_registry  # noqa: E402
from tests.httpserver import LoopbackServer  # noqa: E402


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def one_round(work: Path, repo: Path, recipe: str, target: str) -> tuple[float, float, int, int, int]:
    with local_registry(work / "registry") as registry:
        walls = []
        for machine in ("a", "b"):
            env = {**os.environ, "POSEPIPE_ROOT": str(repo), "POSEPIPE_STORE": str(work / machine), "CI": "1",
                   "POSEPIPE_CACHE": registry.url}
            t0, since = time.perf_counter(), time.time()
            invoke(env, "build", "--recipe", recipe, "--target", target)
            walls.append((time.perf_counter() - t0, containers_created(since)))
        pushed = tree_bytes(registry.data / "docker" / "registry" / "v2" / "blobs")
    (a, _), (b, b_containers) = walls
    return a, b, b_containers, pushed, tree_bytes(work / "a" / "steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--recipe", default="face_deeppose")
    parser.add_argument("--target", default="ort_fp32")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = 1 if args.smoke else args.rounds
    with tempfile.TemporaryDirectory(prefix="remote-bench-") as tmp, LoopbackServer() as server:
        work = Path(tmp)
        scratch_checkout(work / "repo", server, (args.recipe,), real=not args.smoke)
        results = [one_round(work / f"round{i}", work / "repo", args.recipe, args.target) for i in range(rounds)]
    a, b = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
    containers, pushed, outputs = max(r[2] for r in results), results[0][3], results[0][4]
    print(f"{args.recipe} --target {args.target}, median of {rounds} round(s):")
    print(f"  machine A, cold, pushes: {a:.1f} s; machine B, from the remote cache: {b:.1f} s; ratio B/A {b / a:.2f}x")
    print(f"  containers started on machine B: {containers}")
    print(f"  bytes in the registry (B pulled them): {pushed / 1e6:.1f} MB for {outputs / 1e6:.1f} MB of A's step entries")


if __name__ == "__main__":
    main()
