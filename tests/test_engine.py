"""The step engine with the real Docker engine and the probe toolchain."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from pipelines.edges.containers.docker_driver import OWNER_LABEL
from pipelines.core.steps import Step, sorter
from pipelines.run.engine import EngineOptions
from pipelines.core.errors import StepFailed, UsageError
from pipelines.core.layout import REPO_ROOT

from .conftest import TEST_TOOLCHAINS, make_engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def write(id_: str, text: str, deps=()) -> Step:
    return Step(id_, "probe", {"action": "write", "text": text}, f"test/{id_}", deps=tuple(deps))


def read(entry, name: str) -> str:
    return (entry.outputs / name).read_text()


def test_step_runs_hermetically_and_is_cached(tmp_path):
    e = make_engine(tmp_path)
    out = e.run([write("a", "hello")])["a"]
    assert read(out, "result.txt") == "hello\n"
    env = json.loads(read(out, "env.json"))
    assert env == {"uid": 1000, "epoch": "315532800"} or (os.geteuid() != 0 and env["uid"] == os.getuid())
    assert e.stats.ran == ["a"]
    again = make_engine(tmp_path)
    assert again.run([write("a", "hello")])["a"].key == out.key
    assert again.stats.ran == [] and again.stats.cached == ["a"]  # a no-op starts no container


def test_outside_writes_and_network_are_impossible(tmp_path):
    e = make_engine(tmp_path)
    res = e.run([
        Step("esc", "probe", {"action": "escape"}, "test/esc"),
        Step("net", "probe", {"action": "network"}, "test/net"),
    ])
    assert set(json.loads(read(res["esc"], "escape.json")).values()) <= {"OSError", "PermissionError"}
    net = json.loads(read(res["net"], "network.json"))
    assert net["interfaces"] == ["lo"] and net["dns"] != "resolved"


def test_dependency_outputs_are_mounted_read_only(tmp_path):
    res = make_engine(tmp_path).run([write("a", "up"), write("b", "down", deps=[("up", "a")])])
    seen = json.loads(read(res["b"], "inputs.json"))
    assert "/in/up/result.txt" in seen
    assert json.loads(read(res["b"], "dep_writes.json")) == {"up": "EROFS"}  # the write was refused
    assert read(res["a"], "result.txt") == "up\n"  # and the upstream entry is intact


def test_failure_reports_everything_and_caches_nothing(tmp_path):
    e = make_engine(tmp_path)
    with pytest.raises(StepFailed) as err:
        e.run([Step("f", "probe", {"action": "fail"}, "rec/tgt/f")])
    msg = str(err.value)
    assert "step rec/tgt/f failed: exit code 3" in msg
    assert "/opt/venv/bin/python /opt/posepipe/step.py" in msg
    assert "log line 39" in msg and "log line 5\n" not in msg  # the last 30 lines
    log = Path(msg.split("full log: ")[1].split("\n")[0])
    assert "log line 0" in log.read_text()  # the full log is never clipped
    assert e.cache.keys() == []


def test_timeout_kills_the_step(tmp_path):
    e = make_engine(tmp_path)
    with pytest.raises(StepFailed, match="timed out after 2 s"):
        e.run([Step("h", "probe", {"action": "hang"}, "test/h", timeout=2)])
    assert e.cache.keys() == []


def test_failure_stops_new_work_and_lists_what_did_not_run(tmp_path):
    e = make_engine(tmp_path, EngineOptions(jobs=1))
    steps = [Step("f", "probe", {"action": "fail"}, "test/f"), write("later", "x", deps=[("f", "f")]), write("z", "y")]
    with pytest.raises(StepFailed) as err:
        e.run(steps)
    assert "not run because of the failure: test/later" in str(err.value)


def test_keep_failed_keeps_the_container(tmp_path, docker_driver):
    e = make_engine(tmp_path, EngineOptions(keep_failed=True))
    with pytest.raises(StepFailed) as err:
        e.run([Step("f", "probe", {"action": "fail"}, "test/f")])
    name = str(err.value).split("docker exec -it ")[1].split()[0]
    try:
        res = docker_driver.client.containers.get(name).exec_run(["cat", "/in/params.json"])
        assert res.exit_code == 0 and b'"fail"' in res.output  # alive, with the step's inputs
    finally:
        docker_driver.api.remove_container(name, force=True)
        docker_driver.api.remove_image(f"posepipe-failed:{name.rsplit('-', 1)[1]}")


def test_each_key_component_misses_and_nothing_else_does(tmp_path):
    base = [write("a", "one"), write("b", "two", deps=[("a", "a")])]
    e = make_engine(tmp_path)
    first = e.run(base)

    def rerun(steps, **opts):
        eng = make_engine(tmp_path, EngineOptions(jobs=2, **opts))
        return eng.run(steps), eng.stats

    _, stats = rerun(base)
    assert stats.ran == []
    # a parameter change reruns that step and what depends on it
    _, stats = rerun([write("a", "ONE"), write("b", "two", deps=[("a", "a")])])
    assert sorted(stats.ran) == ["a", "b"]
    # a downstream-only change reruns only downstream
    _, stats = rerun([write("a", "one"), write("b", "TWO", deps=[("a", "a")])])
    assert stats.ran == ["b"]
    # SOURCE_DATE_EPOCH is part of the key
    _, stats = rerun(base, source_date_epoch=1700000000)
    assert sorted(stats.ran) == ["a", "b"]
    # a blob input is part of the key
    blob_a = e.blobs.blob_path("a" * 64)
    blob_a.parent.mkdir(parents=True, exist_ok=True)
    blob_a.write_bytes(b"x")
    _, stats = rerun([replace(base[0], blobs=(("w", "a" * 64),)), base[1]])
    assert "a" in stats.ran
    # --no-cache runs everything
    _, stats = rerun(base, no_cache=True)
    assert sorted(stats.ran) == ["a", "b"]
    assert rerun(base)[0]["a"].key == first["a"].key  # and the original key is still a hit


def test_toolchain_change_means_new_image_and_miss(tmp_path):
    toolchains = tmp_path / "toolchains"
    shutil.copytree(TEST_TOOLCHAINS, toolchains)
    e = make_engine(tmp_path / "store", toolchains=toolchains)
    e.run([write("a", "x")])
    with open(toolchains / "probe" / "step.py", "a") as f:
        f.write("# a change to the in-image script makes a new image\n")
    e2 = make_engine(tmp_path / "store", toolchains=toolchains)
    e2.run([write("a", "x")])
    assert e2.stats.ran == ["a"]


def test_corrupt_entry_is_a_miss(tmp_path):
    e = make_engine(tmp_path)
    entry = e.run([write("a", "good")])["a"]
    (entry.outputs / "result.txt").write_text("evil\n")
    e2 = make_engine(tmp_path)
    again = e2.run([write("a", "good")])["a"]
    assert e2.stats.ran == ["a"] and read(again, "result.txt") == "good\n"


def test_graph_errors_are_usage_errors():
    with pytest.raises(UsageError, match="cycle"):
        sorter([write("a", "", deps=[("b", "b")]), write("b", "", deps=[("a", "a")])])
    with pytest.raises(UsageError, match="unknown step"):
        sorter([write("a", "", deps=[("b", "zzz")])])


def child(store: Path, steps: list[Step]) -> subprocess.Popen:
    payload = json.dumps([{**asdict(s), "params": dict(s.params)} for s in steps])
    return subprocess.Popen(
        [sys.executable, "-m", "tests.engine_child", str(store), payload],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_for_line(proc: subprocess.Popen, wanted: str) -> list[str]:
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if wanted in line:
            return seen
    raise AssertionError(f"child ended without {wanted!r}:\n{''.join(seen)}")


def containers_of(docker_driver, proc: subprocess.Popen) -> list[dict]:
    return [c for c in docker_driver.api.containers(all=True, filters={"label": OWNER_LABEL})
            if c["Labels"][OWNER_LABEL].split(":")[1] == str(proc.pid)]


def test_kill_9_mid_step_leaves_no_entry_and_rerun_is_right(tmp_path, docker_driver):
    """The build is killed while its step is held mid-write (it waits for a signal nobody sends it)."""
    step = Step("s", "probe", {"action": "await_signal", "text": "done"}, "test/s")
    proc = child(tmp_path, [step])
    wait_for_line(proc, "probe: waiting for SIGUSR1")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert containers_of(docker_driver, proc)  # its container is orphaned, still waiting
    assert make_engine(tmp_path).cache.keys() == []  # the killed run left no entry
    rerun = child(tmp_path, [step])
    seen = wait_for_line(rerun, "probe: waiting for SIGUSR1")
    assert not containers_of(docker_driver, proc)  # the rerun reaped the orphan before starting its own
    (mine,) = containers_of(docker_driver, rerun)
    docker_driver.api.kill(mine["Id"], signal="SIGUSR1")
    out = "".join(seen) + rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0 and json.loads(out.split("stats: ")[1]) == {"ran": ["s"], "cached": []}, out
    res = make_engine(tmp_path).run([step])["s"]  # cached now
    assert read(res, "result.txt") == "done\n" and read(res, "part.txt") == "first half\n"
    assert not list((tmp_path / "steps" / ".tmp").iterdir())  # the killed run's staging folder was swept
    assert not docker_driver.orphans()


@pytest.mark.parametrize("kind, kind_said", [("link", "symbolic link"), ("dirlink", "symbolic link"), ("fifo", "FIFO")])
def test_a_step_that_writes_a_link_or_fifo_fails_naming_it_and_caches_nothing(tmp_path, kind, kind_said):
    e = make_engine(tmp_path)
    with pytest.raises(StepFailed) as err:
        e.run([Step("x", "probe", {"action": "special", "kind": kind}, "rec/tgt/x")])
    name = "pipe" if kind == "fifo" else "link"
    assert f"step rec/tgt/x wrote /out/{name}, a {kind_said}" in str(err.value)
    assert e.cache.keys() == [] and not list((tmp_path / "steps" / ".tmp").iterdir())


def test_two_concurrent_builds_run_the_step_once(tmp_path, docker_driver):
    """The second build waits on the first one's lock (and says so) while the first one's step is held running."""
    step = Step("s", "probe", {"action": "await_signal", "text": "once"}, "test/s")
    first = child(tmp_path, [step])
    first_seen = wait_for_line(first, "probe: waiting for SIGUSR1")
    second = child(tmp_path, [step])
    waiting = wait_for_line(second, "waiting for another build of step test/s")
    assert f"(pid {first.pid})" in waiting[-1]
    running = [c for c in docker_driver.api.containers(filters={"label": OWNER_LABEL})
               if c["Labels"][OWNER_LABEL].split(":")[1] == str(first.pid)]
    assert len(running) == 1
    docker_driver.api.kill(running[0]["Id"], signal="SIGUSR1")
    outs = ["".join(first_seen) + first.communicate(timeout=300)[0], "".join(waiting) + second.communicate(timeout=300)[0]]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    stats = [json.loads(o.split("stats: ")[1]) for o in outs]
    assert stats == [{"ran": ["s"], "cached": []}, {"ran": [], "cached": ["s"]}]
    assert "probe: waiting" not in outs[1]  # the second build started no container


def test_ctrl_c_removes_running_containers(tmp_path, docker_driver):
    proc = child(tmp_path, [Step("h", "probe", {"action": "hang"}, "test/h")])
    wait_for_line(proc, "probe: hanging")
    assert containers_of(docker_driver, proc)  # it is running now
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert not containers_of(docker_driver, proc)  # removed by the child itself on Ctrl-C, not reaped later
    assert make_engine(tmp_path).cache.keys() == []


def test_check_reruns_cached_steps_and_names_files_that_differ(tmp_path):
    steps = [write("stable", "x"), Step("rnd", "probe", {"action": "random"}, "test/rnd")]
    make_engine(tmp_path).run(steps)
    e = make_engine(tmp_path, EngineOptions(jobs=2, check=True))
    res = e.run(steps)
    assert sorted(e.stats.cached) == ["rnd", "stable"]
    assert e.stats.differs == {"stable": [], "rnd": ["random.bin"]}
    assert (res["rnd"].outputs / "same.txt").read_text() == "stable\n"  # the cache entry is kept as it was
