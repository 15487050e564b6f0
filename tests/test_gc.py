"""Store garbage collection: bounds by age and size, least recently used first, never in use."""

from __future__ import annotations

import os
import time

import pytest

from pipelines.core.errors import UsageError
from pipelines.core.steps import Step
from pipelines.edges.store import gc
from pipelines.edges.store.blobs import BlobStore, url_key
from pipelines.edges.containers.docker_driver import STEP_LABEL
from pipelines.edges.fs import file_lock
from pipelines.edges.store.steps import StepCache

from .conftest import make_engine


def make_entry(cache: StepCache, key: str, size: int, age_s: float, tmp_path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("log\n")
    with cache.staging(key) as staged:
        (staged / "outputs" / "blob").write_bytes(b"x" * size)
        entry = cache.commit(key, staged, log, {})
    t = time.time() - age_s
    os.utime(entry.path, (t, t))


def test_parse_units():
    assert gc.parse_size("20G") == 20 << 30 and gc.parse_size("500M") == 500 << 20 and gc.parse_size("1.5KiB") == 1536
    assert gc.parse_age("30d") == 30 * 86400 and gc.parse_age("12h") == 43200
    with pytest.raises(UsageError):
        gc.parse_size("lots")
    with pytest.raises(UsageError):
        gc.collect(__import__("pathlib").Path("/nonexistent"), None, None)


def test_choose_drops_oldest_first_to_meet_both_bounds():
    items = [gc.Item("step", n, 100, t) for n, t in (("old", 0), ("mid", 50), ("new", 99))]
    assert [i.name for i in gc.choose(items, max_size=150, max_age=None, now=100)] == ["old", "mid"]
    assert [i.name for i in gc.choose(items, max_size=None, max_age=60, now=100)] == ["old"]
    assert gc.choose(items, max_size=1000, max_age=1000, now=100) == []


def test_collect_removes_lru_entries_but_not_those_in_use(tmp_path):
    store = tmp_path / "store"
    cache = StepCache(store)
    make_entry(cache, "a" * 64, 1000, 3000, tmp_path)
    make_entry(cache, "b" * 64, 1000, 2000, tmp_path)
    make_entry(cache, "c" * 64, 1000, 10, tmp_path)
    with cache.in_use("a" * 64):
        removed, busy = gc.collect(store, "1500", None)
    assert [i.name for i in busy] == ["a" * 64]
    assert [i.name for i in removed] == ["b" * 64]
    assert cache.keys() == ["a" * 64, "c" * 64]
    assert cache.lookup("c" * 64) is not None  # survivors are intact


def test_a_blob_a_step_mounts_and_a_download_under_way_are_kept(tmp_path):
    """What a running build holds (a blob mounted into a step, a partial download whose fetch holds its lock)
    is counted but never deleted; once let go, the next gc removes it."""
    store = tmp_path / "store"
    blobs = BlobStore(store)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"p" * 3000)
    sha = blobs.add(photo)
    partial = blobs.partial_path(url_key("http://example.invalid/big.zip"))
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"x" * 5000)
    assert {i.kind for i in gc.inventory(store)} == {"blob", "partial"}
    with blobs.in_use(sha), file_lock(blobs.lock_path(url_key("http://example.invalid/big.zip"))):
        removed, busy = gc.collect(store, "100", None)
    assert removed == [] and sorted(i.kind for i in busy) == ["blob", "partial"]
    assert blobs.blob_path(sha).is_file() and partial.is_file()
    removed, busy = gc.collect(store, "100", None)
    assert sorted(i.kind for i in removed) == ["blob", "partial"] and busy == []
    assert not blobs.blob_path(sha).exists() and not partial.exists()


@pytest.mark.docker
@pytest.mark.slow
def test_gc_leaves_the_blob_a_running_step_mounts(tmp_path):
    """A real step holds its input blob for as long as its container runs: gc run meanwhile keeps it."""
    store = tmp_path / "store"
    engine = make_engine(store)
    photo = tmp_path / "input.bin"
    photo.write_bytes(b"i" * 4096)
    sha = engine.blobs.add(photo)
    results = {}

    def during(step, line):  # the step waits for a signal; gc runs, then the test releases it
        if "waiting for SIGUSR1" in line:
            results["gc"] = gc.collect(store, "1", None)
            (mine,) = engine.driver.api.containers(filters={"label": f"{STEP_LABEL}=test/hold"})
            engine.driver.api.kill(mine["Id"], signal="SIGUSR1")

    engine.on_line = during
    engine.run([Step("hold", "probe", {"action": "await_signal", "text": "held"}, "test/hold", blobs=(("input", sha),))])
    removed, busy = results["gc"]
    assert sha in [i.name for i in busy] and sha not in [i.name for i in removed]
    assert "log" in {i.kind for i in busy}  # the log its container is writing, too
    assert engine.blobs.blob_path(sha).is_file()


def test_max_size_counts_wheels_logs_and_failed_steps_too(tmp_path):
    """The bound is kept over the whole store: a wheelhouse and logs are most of a real one."""
    store = tmp_path / "store"
    cache = StepCache(store)
    make_entry(cache, "a" * 64, 1000, 10, tmp_path)  # the newest: kept
    old = time.time() - 5000
    for path, size in ((store / "wheels" / ("d" * 64) / "torch-2.13.0-cp311-none-any.whl", 4000),
                       (store / "logs" / "face_deeppose" / "export.log", 3000),
                       (store / "steps" / ".failed" / "x" / "outputs" / "half.bin", 2000)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
        os.utime(path, (old, old))
        os.utime(path.parent, (old, old))
    for folder in (store / "wheels" / ("d" * 64), store / "steps" / ".failed" / "x"):
        os.utime(folder, (old, old))
    kinds = {i.kind for i in gc.inventory(store)}
    assert kinds == {"step", "wheel", "log", "failed"}
    removed, busy = gc.collect(store, "2000", None)
    assert sorted(i.kind for i in removed) == ["failed", "log", "wheel"] and busy == []
    assert sum(i.size for i in gc.inventory(store)) <= 2000
    assert not (store / "wheels" / ("d" * 64)).exists() and cache.lookup("a" * 64) is not None
