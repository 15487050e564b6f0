"""Runs a DAG of steps in their toolchain containers; no step runs twice for the same inputs.

A step's cache key is sha256 over the digest of its toolchain image's inputs
(not the image ID, which a rebuild changes), the in-image command, its
parameters and the digests of its inputs (blobs, and the manifest digest of
each upstream step's outputs, so a rebuilt upstream that produces the same
bytes does not invalidate what follows). A key missing here is looked up in
the remote cache, if one is configured, before the step runs; a step that ran
is pushed there. Independent steps run in parallel up to ``jobs``; the first
failure stops new work, running steps finish, and every failure is reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.edges.store.blobs import BlobStore
from pipelines.core.steps import Step, sorter, step_key
from pipelines.edges.containers.docker_driver import DockerDriver, Mount
from pipelines.core.errors import StepFailed
from pipelines.edges.fs import get_or_make
from pipelines.edges.containers.images import ImageBuilder, ToolchainImage, ToolchainSpec, load_toolchain
from pipelines.edges.remote.steps import RemoteSteps
from pipelines.edges.store.steps import Entry, StepCache, tree_manifest
from pipelines.edges.trees import NotPlainFile

DEFAULT_SOURCE_DATE_EPOCH = 315532800  # 1980-01-01: the earliest time zip archives can hold
LOG_TAIL = 30


@dataclass(frozen=True)
class EngineOptions:
    jobs: int = 0  # 0: one per core
    no_cache: bool = False
    keep_failed: bool = False
    mem_limit: str | None = None
    cpus: float | None = None
    source_date_epoch: int = DEFAULT_SOURCE_DATE_EPOCH
    check: bool = False  # run cached steps again and report which output files differ


@dataclass
class RunStats:
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    pulled: list[str] = field(default_factory=list)  # came from the remote cache (also in ``cached``)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step, cached or run
    differs: dict[str, list[str]] = field(default_factory=dict)  # --check: step id -> files that came out different


class Engine:
    def __init__(
        self,
        driver: DockerDriver,
        images: ImageBuilder,
        cache: StepCache,
        blobs: BlobStore,
        docker_dir: Path,
        logs_dir: Path,
        options: EngineOptions = EngineOptions(),
        on_line=lambda step, line: None,
        on_start=lambda step: None,
        on_done=lambda step, ran, seconds: None,
        remote: RemoteSteps | None = None,
    ):
        self.driver = driver
        self.images = images
        self.cache = cache
        self.blobs = blobs
        self.docker_dir = docker_dir
        self.logs_dir = logs_dir
        self.options = options
        self.on_line = on_line  # every line a step prints (its log file has them all)
        self.on_start = on_start  # a step's container is about to start
        self.on_done = on_done  # one call per finished step: ran (or came from the cache), wall seconds
        self.remote = remote  # a shared step cache in an OCI registry, or None
        self.stats = RunStats()
        self._specs: dict[str, ToolchainSpec] = {}
        self._spec_lock = threading.Lock()

    # ---------------------------------------------------------------- scheduling

    def run(self, steps: list[Step]) -> dict[str, Entry]:
        """Run ``steps`` in dependency order, up to ``jobs`` at once; the first failure stops new work."""
        graph = sorter(steps)
        by_id = {s.id: s for s in steps}
        self.driver.reap_orphans()
        self.cache.sweep_stale()
        jobs = self.options.jobs or os.cpu_count() or 1
        done: dict[str, Entry] = {}
        failures: list[StepFailed] = []
        failed: set[str] = set()
        ready: list[str] = []
        running: dict[Future, Step] = {}
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="step")
        try:
            while True:
                if not failures:
                    ready += graph.get_ready()
                    while ready and len(running) < jobs:
                        s = by_id[ready.pop(0)]
                        running[pool.submit(self._execute, s, {n: done[d] for n, d in s.deps})] = s
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    s = running.pop(f)
                    try:
                        done[s.id] = f.result()
                        graph.done(s.id)
                    except StepFailed as e:
                        failures.append(e)
                        failed.add(s.id)
        except KeyboardInterrupt:
            self.driver.kill_running()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if failures:
            not_run = [s.label for s in steps if s.id not in done and s.id not in failed]
            tail = f"\nnot run because of the failure: {', '.join(not_run)}" if not_run else ""
            raise StepFailed("\n\n".join(str(e) for e in failures) + tail)
        return done

    # ---------------------------------------------------------------- one step

    def _spec(self, name: str) -> ToolchainSpec:
        with self._spec_lock:
            if name not in self._specs:
                self._specs[name] = load_toolchain(self.docker_dir, name)
            return self._specs[name]

    def key_for(self, step: Step, deps: Mapping[str, Entry]) -> tuple[str, ToolchainImage, ToolchainSpec]:
        spec = self._spec(step.toolchain)
        image = self.images.ensure(spec)
        inputs = {name: f"step:{deps[name].digest}" for name, _ in step.deps}
        inputs.update({name: f"blob:{sha}" for name, sha in step.blobs})
        return step_key(image.digest, spec.argv(step.script), step.params, inputs, self.options.source_date_epoch), image, spec

    def _execute(self, step: Step, deps: Mapping[str, Entry]) -> Entry:
        t0 = time.monotonic()
        key, image, spec = self.key_for(step, deps)
        image_id = image.id
        ran = pulled = False

        def make() -> Entry:
            nonlocal ran, pulled
            if self.remote and not self.options.no_cache and (entry := self.remote.pull(key, step.label, self.cache)):
                pulled = True
                return entry
            ran = True
            self.on_start(step)
            with self._inputs_held(step, deps), self.cache.staging(key) as staged:
                entry = self._run_container(step, key, image_id, spec, deps, staged)
            if self.remote:
                self.remote.push(entry, step.label)
            return entry

        find = (lambda: None) if self.options.no_cache else (lambda: self.cache.lookup(key))
        entry = get_or_make(self.cache.lock_path(key), f"step {step.label}", find, make)
        if not ran and self.options.check:
            self._recheck(step, entry, image_id, spec, deps)
        seconds = time.monotonic() - t0
        with self._spec_lock:
            (self.stats.ran if ran else self.stats.cached).append(step.id)
            if pulled:
                self.stats.pulled.append(step.id)
            self.stats.seconds[step.id] = seconds
        self.on_done(step, ran, seconds)
        return entry

    def _recheck(self, step: Step, hit: Entry, image_id: str, spec: ToolchainSpec, deps: Mapping[str, Entry]) -> None:
        """Run a cached step again in a scratch folder; record the files whose bytes differ."""
        with self._inputs_held(step, deps), self.cache.staging(hit.key) as staged:
            fresh = self._run_container(step, hit.key, image_id, spec, deps, staged, commit=False)
            cached = json.loads((hit.path / "manifest.json").read_text())["files"]
            self.stats.differs[step.id] = sorted(p for p in set(fresh) | set(cached) if fresh.get(p) != cached.get(p))

    @contextlib.contextmanager
    def _inputs_held(self, step: Step, deps: Mapping[str, Entry]):
        """Shared holds on every step entry and blob the step mounts, so `gc` leaves them while it runs."""
        with contextlib.ExitStack() as holds:
            for dep in deps.values():
                holds.enter_context(self.cache.in_use(dep.key))
            for _, sha in step.blobs:
                holds.enter_context(self.blobs.in_use(sha))
            yield

    def _run_container(
        self, step: Step, key: str, image_id: str, spec: ToolchainSpec, deps: Mapping[str, Entry], staged: Path,
        commit: bool = True,
    ):
        """Run the step into ``staged``; commit it as the cache entry, or (commit=False) return its file digests."""
        params_file = staged / "params.json"
        params_file.write_text(json.dumps(step.params, sort_keys=True, indent=1))
        outputs = staged / "outputs"
        if os.geteuid() == 0:
            os.chown(outputs, 1000, 1000)  # the container's non-root user
        mounts = [Mount(params_file, "/in/params.json"), Mount(outputs, "/out", read_only=False)]
        mounts += [Mount(deps[name].outputs, f"/in/{name}") for name, _ in step.deps]
        for name, sha in step.blobs:
            blob = self.blobs.blob_path(sha)
            if not blob.is_file():
                raise StepFailed(f"{step.label}: input blob {name} ({sha}) is not in the store")
            mounts.append(Mount(blob, f"/in/{name}"))
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', step.id)}.log"
        with self.cache.log_in_use(log_path):
            return self._run_logged(step, key, image_id, spec, mounts, staged, log_path, commit)

    def _run_logged(self, step: Step, key: str, image_id: str, spec: ToolchainSpec, mounts: list[Mount], staged: Path,
                    log_path: Path, commit: bool):
        """The container run and the commit, while the step's log is held (gc leaves it)."""
        outputs = staged / "outputs"
        log_path.write_bytes(b"")
        result = self.driver.run(
            image=image_id,
            command=list(spec.argv(step.script)),
            mounts=mounts,
            env={"SOURCE_DATE_EPOCH": str(self.options.source_date_epoch), "HOME": "/tmp", "PYTHONUNBUFFERED": "1",
                 "POSEPIPE_TOOLCHAIN": step.toolchain},
            label=step.label,
            log_path=log_path,
            on_line=lambda line: self.on_line(step, line),
            timeout=step.timeout,
            mem_limit=self.options.mem_limit,
            cpus=self.options.cpus,
            keep_failed=self.options.keep_failed,
        )
        if result.timed_out or result.exit_code != 0:
            shell = self._keep_for_debugging(step, staged, mounts, result.kept_container)
            raise StepFailed(_failure_message(step, spec, result, log_path, shell))
        facts = {"step": step.id, "toolchain": step.toolchain, "image": image_id, "params": step.params}
        try:
            return tree_manifest(outputs) if not commit else self.cache.commit(key, staged, log_path, facts)
        except NotPlainFile as e:
            raise StepFailed(f"step {step.label} wrote /out/{e.path}, a {e.kind}: step outputs must be plain files and "
                             f"folders, so nothing of it was cached\n  toolchain: {step.toolchain}\n  full log: {log_path}") from None


    def _keep_for_debugging(self, step: Step, staged: Path, mounts: list[Mount], failed: str | None) -> str | None:
        """--keep-failed: keep the step's folder and a live copy of its container."""
        if failed is None:
            return None
        kept = self.cache.failed / staged.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, kept)
        moved = [replace(m, host=kept / m.host.relative_to(staged)) if m.host.is_relative_to(staged) else m for m in mounts]
        return self.driver.debug_shell(failed, moved, step.label)


def _failure_message(step: Step, spec: ToolchainSpec, result, log_path: Path, shell: str | None) -> str:
    why = f"timed out after {step.timeout:g} s" if result.timed_out else f"exit code {result.exit_code}"
    lines = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    msg = (
        f"step {step.label} failed: {why}\n"
        f"  toolchain: {step.toolchain}\n  command: {' '.join(spec.argv(step.script))}\n  full log: {log_path}\n"
        f"  last {len(lines)} log lines:\n" + "".join(f"    | {line}\n" for line in lines)
    )
    if shell:
        msg += f"  kept for inspection: docker exec -it {shell} bash\n  remove it with: docker rm -f {shell}"
    return msg.rstrip()
