"""A broken or hostile server cannot fill the disk or hang a build (the fetcher, and `invoke download`).

Each case is a row of what a bad mirror, a captive portal or a proxy gone wrong does. Time is
driven by small configured limits (rate window, attempts), never by sleeps in the test.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest

from pipelines.commands import download as downloading
from pipelines.commands import publish as publishing
from pipelines.core.errors import IntegrityError, NetworkError, NoSpace
from pipelines.core.layout import Layout
from pipelines.core.recipe import RemoteFile
from pipelines.edges.store.blobs import BlobStore
from pipelines.edges.store.fetcher import Fetcher, FetchOptions

from .httpserver import LoopbackServer, Route
from .test_artifacts import make_artifact
from .test_fetcher import server, store  # noqa: F401 (fixtures)

QUICK = FetchOptions(attempts=3, backoff_base=0.01, backoff_cap=0.05, connect_timeout=2, read_timeout=5,
                     min_rate=4096, rate_window=0.5, max_bytes=1 << 20)
DATA = os.urandom(256 * 1024)
SHA = hashlib.sha256(DATA).hexdigest()


class Recorder:
    """Progress that remembers the most bytes any one transfer wrote."""

    def __init__(self) -> None:
        self.most = 0
        self._now = 0

    def start(self, label: str, total: int | None, done: int) -> None:
        self._now = done

    def advance(self, n: int) -> None:
        self._now += n
        self.most = max(self.most, self._now)

    def finish(self) -> None:
        pass


def fetch(store: BlobStore, rf: RemoteFile, progress: Recorder | None = None, **options):
    opts = FetchOptions(**{**QUICK.__dict__, **options})
    return Fetcher(store, store.root.parent / "checkpoints.lock", opts, progress).fetch(rf)


def nothing_kept(store: BlobStore) -> bool:
    partial = [p for p in (store.root / "partial").glob("*.part") if p.stat().st_size]
    return not partial and not (store.root / "blobs" / "sha256").exists()


def test_html_login_page_is_named_as_such(server, store):
    url = server.add("/ckpt.pth", Route(b"<html><body>Please log in</body></html>", content_type="text/html; charset=utf-8"))
    with pytest.raises(NetworkError) as e:
        fetch(store, RemoteFile(url, SHA))
    assert "HTML page" in str(e.value) and url in str(e.value)
    assert nothing_kept(store)


def test_endless_stream_of_unknown_size_stops_at_the_cap(server, store):
    route = Route(b"", endless=b"\0" * 65536)
    url = server.add("/zeros.pth", route)
    seen = Recorder()
    t0 = time.monotonic()
    with pytest.raises(IntegrityError) as e:
        fetch(store, RemoteFile(url, "unpinned"), seen)
    assert "cap of 1048576 bytes" in str(e.value) and "--max-download" in str(e.value)
    assert seen.most <= 1 << 20  # nothing past the cap was ever written
    assert nothing_kept(store) and time.monotonic() - t0 < 30


def test_endless_stream_stops_at_the_recipe_size(server, store):
    size = 300_000
    url = server.add("/zeros2.pth", Route(b"", endless=b"\0" * 65536))
    seen = Recorder()
    with pytest.raises(IntegrityError, match=f"more than the expected {size} bytes"):
        fetch(store, RemoteFile(url, "a" * 64, size=size), seen, max_bytes=None)
    assert seen.most <= size and nothing_kept(store)


def test_a_recipe_input_may_raise_its_cap(server, store):
    url = server.add("/big.pth", Route(b"", endless=b"\0" * 65536))
    seen = Recorder()
    with pytest.raises(IntegrityError, match="cap of 2097152 bytes"):
        fetch(store, RemoteFile(url, "unpinned", max_size=2 << 20), seen)
    assert 1 << 20 < seen.most <= 2 << 20


def test_trickling_server_is_abandoned_within_bounded_time(server, store):
    route = Route(DATA, trickle=0.02)  # 50 B/s against a minimum of 4096 B/s
    url = server.add("/slow.pth", route)
    t0 = time.monotonic()
    with pytest.raises(NetworkError) as e:
        fetch(store, RemoteFile(url, SHA))
    took = time.monotonic() - t0
    assert "too slow" in str(e.value) and "B/s" in str(e.value) and "gave up after 3 attempts" in str(e.value)
    assert took < 3 * (QUICK.rate_window + 1) + 2, took
    assert not (store.root / "blobs" / "sha256").exists()


def test_silent_server_is_abandoned_by_the_rate_window(server, store):
    route = Route(DATA, stall_after=10)  # sends 10 bytes, then nothing until the test ends
    url = server.add("/silent.pth", route)
    t0 = time.monotonic()
    with pytest.raises(NetworkError, match="gave up after 1 attempts"):
        fetch(store, RemoteFile(url, SHA), attempts=1, read_timeout=60)  # the window bounds the wait, not the 60 s
    assert time.monotonic() - t0 < QUICK.rate_window + 2


def test_refused_connection_moves_to_the_next_mirror_quickly(server, store):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/ckpt.pth"
    good = server.add("/good.pth", Route(DATA))
    t0 = time.monotonic()
    res = fetch(store, RemoteFile(dead, SHA, mirrors=(good,)), attempts=6, backoff_base=5.0, backoff_cap=5.0)
    assert res.sha256 == SHA and time.monotonic() - t0 < 3  # 2 quick tries, not 6 with 5 s backoff


def test_resume_answered_with_the_wrong_range_is_a_hash_mismatch(server, store):
    url = server.add("/shifted.pth", Route(DATA, drop_after=100_000, wrong_offset=7))
    with pytest.raises(IntegrityError, match="expected sha256"):
        fetch(store, RemoteFile(url, SHA))
    assert nothing_kept(store)


def test_download_of_known_size_needing_more_than_the_free_disk_is_refused_up_front(server, store):
    route = Route(DATA)
    url = server.add("/huge.pth", route)
    with pytest.raises(NoSpace) as e:
        fetch(store, RemoteFile(url, SHA, size=1 << 60))
    assert "MB are free" in str(e.value) and route.requests == []


def publish_layout(tmp_path, server: LoopbackServer, tarball_route) -> str:
    lay = Layout(tmp_path / "repo", tmp_path / "pubstore")
    make_artifact(lay)
    dest = tmp_path / "published"
    publishing.publish(lay, "face_deeppose", "ort_fp32", dest, "v1", None)
    for f in dest.rglob("*"):
        if f.is_file():
            rel = f.relative_to(dest).as_posix()
            server.add(f"/pub/{rel}", tarball_route if rel.endswith(".tar.gz") else Route(f.read_bytes()))
    return server.base_url + "/pub/"


@pytest.mark.parametrize("route", [Route(b"", endless=b"\0" * 65536), Route(DATA, trickle=0.02)], ids=["endless", "trickle"])
def test_invoke_download_survives_a_hostile_server(tmp_path, server, route):
    url = publish_layout(tmp_path, server, route)
    board = tmp_path / "board"
    t0 = time.monotonic()
    with pytest.raises((IntegrityError, NetworkError)):
        downloading.download(Layout(tmp_path / "repo", tmp_path / "dlstore"), "face_deeppose", "ort_fp32", url, board,
                             None, None, True, progress=False, options=QUICK)
    assert not board.exists() and time.monotonic() - t0 < 15
    assert not list((tmp_path / "dlstore").rglob("*.part")) or all(
        p.stat().st_size <= 1 << 20 for p in (tmp_path / "dlstore").rglob("*.part"))


def test_invoke_download_refuses_an_endless_index(tmp_path, server):
    server.add("/evil/index.json", Route(b"", endless=b"{" * 65536))
    with pytest.raises(IntegrityError, match="not a posepipe index.json"):
        downloading.download(Layout(tmp_path / "repo", tmp_path / "dlstore"), "face_deeppose", "ort_fp32",
                             server.base_url + "/evil/", tmp_path / "board", None, None, True, progress=False)
