"""Machine B's build of a recipe from the remote cache vs machine A's cold build, side by side in one run.

Two stores stand for two machines, sharing one real OCI registry on 127.0.0.1 (Debian's
docker-registry) and one Docker engine. Machine A has the toolchain images (made earlier, without
the cache) and an empty store: its build runs every step and pushes the steps and the images it
used. Machine B, with another empty store and, with --without-images, none of those images (they
are removed from the engine first), builds the same target. Reported: both wall times, their
ratio, the containers B created (goal 0: no image build, no step) and the bytes in the registry
against A's step entries (B fetches every step; both machines share one Docker engine, so its image
pulls find the layers present and move little: a second machine would move them all). Each round has new stores and a new registry.
Usage: python3 bench/remote_cache_bench.py [--smoke] [--recipe NAME] [--rounds N] [--without-images]
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
from pipelines.core.plan import plan  # noqa: E402
from pipelines.core.recipe import load_recipe  # noqa: E402
from pipelines.edges.containers.docker_driver import DockerDriver  # noqa: E402
from pipelines.edges.containers.images import ImageBuilder, image_tag, load_toolchain  # noqa: E402
from tests.conftest import local_registry  # noqa: E402
from tests.httpserver import LoopbackServer  # noqa: E402


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def used_images(repo: Path, recipe: str, target: str) -> list[str]:
    """The tags of the toolchain images a build of the target uses (export, calibration, its own)."""
    loaded = load_recipe(repo / "recipes" / f"{recipe}.yaml")
    builder = ImageBuilder(DockerDriver.from_env(), repo / "docker", repo)  # the digest reads no store
    names = {s.toolchain for s in plan(loaded, (loaded.target(target),), "0" * 64, "0" * 64)}
    return [image_tag(n, builder.digest(load_toolchain(repo / "docker", n))) for n in sorted(names)]


def one_round(work: Path, repo: Path, recipe: str, target: str, without_images: bool) -> tuple[float, float, int, int, int]:
    with local_registry(work / "registry") as registry:
        walls = []
        for machine in ("a", "b"):
            if machine == "b" and without_images:
                for tag in used_images(repo, recipe, target):
                    DockerDriver.from_env().remove_image(tag)
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
    parser.add_argument("--without-images", action="store_true", help="machine B starts without the toolchain images")
    args = parser.parse_args()
    rounds = 1 if args.smoke else args.rounds
    with tempfile.TemporaryDirectory(prefix="remote-bench-") as tmp, LoopbackServer() as server:
        work = Path(tmp)
        scratch_checkout(work / "repo", server, (args.recipe,), real=not args.smoke)
        invoke({**os.environ, "POSEPIPE_ROOT": str(work / "repo"), "POSEPIPE_STORE": str(work / "images")}, "images")
        results = [one_round(work / f"round{i}", work / "repo", args.recipe, args.target, args.without_images or args.smoke)
                   for i in range(rounds)]
    a, b = statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)
    containers, pushed, outputs = max(r[2] for r in results), results[0][3], results[0][4]
    print(f"{args.recipe} --target {args.target}, median of {rounds} round(s):")
    print(f"  machine A, cold, pushes: {a:.1f} s; machine B, from the remote cache: {b:.1f} s; ratio B/A {b / a:.2f}x")
    print(f"  containers started on machine B: {containers}"
          + (" (it started without the toolchain images)" if args.without_images or args.smoke else ""))
    print(f"  bytes in the registry: {pushed / 1e6:.1f} MB for {outputs / 1e6:.1f} MB of A's step entries (B fetched the "
          "steps; image layers only where this engine lacks them: A and B share one engine here)")


if __name__ == "__main__":
    main()
