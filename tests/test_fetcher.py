"""The fetcher against a real, misbehaving HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from pathlib import Path

import pytest

from pipelines.edges.store import lockfile
from pipelines.edges.store.blobs import BlobStore
from pipelines.core.errors import IntegrityError, NetworkError, OfflineMissing, UnlockedInput
from pipelines.edges.store.fetcher import Fetcher, FetchOptions
from pipelines.core.recipe import RemoteFile

from .httpserver import LoopbackServer, Route

FAST = FetchOptions(attempts=4, backoff_base=0.01, backoff_cap=0.05, connect_timeout=2, read_timeout=0.5)
DATA = os.urandom(3 * 1024 * 1024 + 17)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


@pytest.fixture
def store(tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def fetcher(store: BlobStore, **options) -> Fetcher:
    opts = FetchOptions(**{**FAST.__dict__, **options})
    return Fetcher(store, store.root.parent / "checkpoints.lock", opts)


def no_partials(store: BlobStore) -> bool:
    part = store.root / "partial"
    return not part.exists() or not any(part.iterdir())


def blob_names(store: BlobStore) -> list[str]:
    d = store.root / "blobs" / "sha256"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_plain_download_lands_verified_blob(server, store):
    url = server.add("/ok.pth", Route(DATA))
    res = fetcher(store).fetch(RemoteFile(url, SHA))
    assert res.downloaded and res.sha256 == SHA and res.size == len(DATA)
    assert res.path == store.blob_path(SHA) and res.path.read_bytes() == DATA
    assert no_partials(store)


def test_hit_does_not_touch_network(server, store):
    route = Route(DATA)
    url = server.add("/hit.pth", route)
    fetcher(store).fetch(RemoteFile(url, SHA))
    again = fetcher(store).fetch(RemoteFile(url, SHA))
    assert not again.downloaded and len(route.requests) == 1


def test_resume_after_connection_drop_uses_range(server, store):
    route = Route(DATA, drop_after=1_000_000)
    url = server.add("/drop.pth", route)
    res = fetcher(store).fetch(RemoteFile(url, SHA))
    assert res.path.read_bytes() == DATA
    assert route.ranges()[0] is None
    resumed_at = int(route.ranges()[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 1_000_000, route.ranges()


def test_server_ignoring_range_restarts_from_zero(server, store):
    route = Route(DATA, honour_range=False, drop_after=500_000)
    url = server.add("/norange.pth", route)
    res = fetcher(store).fetch(RemoteFile(url, SHA))
    assert res.path.read_bytes() == DATA
    assert route.ranges()[1] is not None  # asked to resume, got 200, restarted cleanly


def test_500_and_429_are_retried_honouring_retry_after(server, store):
    route = Route(DATA, statuses=[(500, None), (429, "0"), (503, None)])
    url = server.add("/flaky.pth", route)
    res = fetcher(store).fetch(RemoteFile(url, SHA))
    assert res.sha256 == SHA and len(route.requests) == 4


def test_404_is_not_retried(server, store):
    with pytest.raises(NetworkError, match="HTTP 404"):
        fetcher(store).fetch(RemoteFile(server.base_url + "/missing.pth", SHA))
    assert blob_names(store) == []


def test_stall_past_read_timeout_is_retried_and_resumed(server, store):
    route = Route(DATA, stall_after=200_000)
    url = server.add("/stall.pth", route)
    res = fetcher(store, read_timeout=0.3).fetch(RemoteFile(url, SHA))
    assert res.path.read_bytes() == DATA
    assert route.ranges()[1] == "bytes=200000-"


def test_wrong_bytes_are_deleted_and_reported(server, store):
    url = server.add("/wrong.pth", Route(b"x" * len(DATA)))
    with pytest.raises(IntegrityError) as e:
        fetcher(store).fetch(RemoteFile(url, SHA))
    text = str(e.value)
    assert url in text and SHA in text and hashlib.sha256(b"x" * len(DATA)).hexdigest() in text
    assert blob_names(store) == [] and no_partials(store)


def test_always_short_body_ends_in_clean_network_error(server, store):
    route = Route(DATA, short_by=1000)
    url = server.add("/short.pth", route)
    with pytest.raises(NetworkError, match="gave up after 4 attempts"):
        fetcher(store).fetch(RemoteFile(url, SHA))
    assert blob_names(store) == []


def test_announced_size_differing_from_recipe_size_fails_before_download(server, store):
    url = server.add("/size.pth", Route(DATA))
    with pytest.raises(IntegrityError, match="expected size"):
        fetcher(store).fetch(RemoteFile(url, SHA, size=len(DATA) + 1))
    assert blob_names(store) == [] and no_partials(store)


def test_mirrors_are_tried_in_order(server, store):
    dead = server.base_url + "/gone.pth"
    route = Route(DATA)
    mirror = server.add("/mirror.pth", route)
    res = fetcher(store).fetch(RemoteFile(dead, SHA, mirrors=(mirror,)))
    assert res.sha256 == SHA and len(route.requests) == 1


def test_prefix_pin_records_full_hash_in_lock_file(server, store):
    url = server.add("/model-" + SHA[:8] + "_20210303.pth", Route(DATA))
    f = fetcher(store)
    res = f.fetch(RemoteFile(url, SHA[:8]))
    entries = lockfile.read(f.lock_path)
    assert entries[url] == lockfile.LockEntry(SHA, len(DATA), url)
    assert res.sha256 == SHA
    assert f.lock_path.read_text().startswith("# posepipe lock file")


def test_prefix_mismatch_is_refused(server, store):
    url = server.add("/model-deadbeef_20210303.pth", Route(DATA))
    with pytest.raises(IntegrityError, match="expected sha256: deadbeef"):
        fetcher(store).fetch(RemoteFile(url, "deadbeef"))
    assert blob_names(store) == []
    assert not (store.root.parent / "checkpoints.lock").exists()


def test_locked_refuses_unrecorded_prefix(server, store):
    url = server.add("/m.pth", Route(DATA))
    with pytest.raises(UnlockedInput, match="no full sha256"):
        fetcher(store, locked=True).fetch(RemoteFile(url, SHA[:8]))


def test_lock_file_pins_later_fetches(server, store):
    route = Route(DATA)
    url = server.add("/pinned.pth", route)
    fetcher(store).fetch(RemoteFile(url, "unpinned"))
    route.data = bytes(len(DATA))  # same size, other bytes: only the recorded hash can tell
    store.discard(SHA)
    with pytest.raises(IntegrityError, match=SHA):
        fetcher(store, locked=True).fetch(RemoteFile(url, "unpinned"))


def test_offline_names_the_missing_blob(server, store):
    url = server.add("/off.pth", Route(DATA))
    with pytest.raises(OfflineMissing) as e:
        fetcher(store, offline=True).fetch(RemoteFile(url, SHA))
    assert str(store.blob_path(SHA)) in str(e.value) and url in str(e.value)


def test_corrupt_blob_is_a_miss_and_refetched(server, store):
    route = Route(DATA)
    url = server.add("/c.pth", route)
    fetcher(store).fetch(RemoteFile(url, SHA))
    blob = store.blob_path(SHA)
    blob.write_bytes(b"y" * len(DATA))  # same size: only a full re-hash can tell
    res = fetcher(store, verify=True).fetch(RemoteFile(url, SHA))
    assert res.downloaded and blob.read_bytes() == DATA and len(route.requests) == 2


def test_local_path_and_file_url(tmp_path, store):
    src = tmp_path / "vendor.bin"
    src.write_bytes(DATA)
    assert fetcher(store).fetch(RemoteFile(str(src), SHA)).sha256 == SHA
    store.discard(SHA)
    assert fetcher(store).fetch(RemoteFile(src.as_uri(), SHA)).downloaded


def _fetch_in_process(store_root: str, url: str, pin: str, started, results) -> None:
    store = BlobStore(Path(store_root))
    started.set()
    res = Fetcher(store, store.root.parent / "checkpoints.lock", FAST).fetch(RemoteFile(url, pin))
    results.put((res.sha256, res.downloaded))


@pytest.mark.parametrize("pin", [SHA, SHA[:8]], ids=["full", "prefix"])
def test_two_processes_fetch_one_blob_once(server, store, pin):
    route = Route(DATA, stall_after=1_000_000)  # the first download holds until released
    url = server.add("/shared-" + SHA[:8] + "_20200101.pth", route)
    ctx = mp.get_context("spawn")
    results, started_a, started_b = ctx.Queue(), ctx.Event(), ctx.Event()
    a = ctx.Process(target=_fetch_in_process, args=(str(store.root), url, pin, started_a, results))
    a.start()
    assert started_a.wait(30)
    assert route.arrived.wait(30)  # A holds the lock and is mid-download
    b = ctx.Process(target=_fetch_in_process, args=(str(store.root), url, pin, started_b, results))
    b.start()
    assert started_b.wait(30)
    server.release.set()  # A's first response now hangs up; A resumes and completes
    a.join(60)
    b.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in range(2))
    assert [o[0] for o in outcomes] == [SHA, SHA]
    assert sorted(o[1] for o in outcomes) == [False, True]  # exactly one downloaded
    assert sum(1 for r in route.requests if r.get("Range") is None) == 1  # one download, then a resume
