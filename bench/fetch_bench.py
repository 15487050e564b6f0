"""Fetcher throughput vs curl, and hashing vs sha256sum, side by side in one run.

Goals (issue 4): loopback download of a 1 GiB file >= 0.9x curl's throughput
(ours also hashes and fsyncs); sha256 of a file >= 0.9x sha256sum.
Usage: python3 bench/fetch_bench.py [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.edges.store.blobs import BlobStore  # noqa: E402
from pipelines.core.digests import sha256_file  # noqa: E402
from pipelines.edges.store.fetcher import Fetcher  # noqa: E402
from pipelines.core.recipe import RemoteFile  # noqa: E402


def make_file(path: Path, size: int) -> str:
    block = os.urandom(16 << 20)
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = block[: min(left, len(block))]
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return h.hexdigest()


def serve(path: Path) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            size = path.stat().st_size
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with open(path, "rb") as f:
                self.connection.sendfile(f)  # zero-copy, so the server is not the bottleneck

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/blob.bin"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
        work = Path(d)
        src = work / "blob.bin"
        sha = make_file(src, size)
        server, url = serve(src)
        curl_t, curl_sync_t, ours_t, sum_t, hash_t = [], [], [], [], []
        for i in range(args.rounds):
            out = work / "curl.out"
            curl_t.append(timed(lambda: subprocess.run(["curl", "-sSf", "-o", str(out), url], check=True)))
            out.unlink()
            curl_sync_t.append(
                timed(lambda: subprocess.run(f"curl -sSf -o {out} {url} && sync {out}", shell=True, check=True))
            )
            out.unlink()
            store = BlobStore(work / f"store{i}")
            f = Fetcher(store, work / "lock")
            ours_t.append(timed(lambda: f.fetch(RemoteFile(url, sha))))
            shutil.rmtree(store.root)
            sum_t.append(timed(lambda: subprocess.run(["sha256sum", str(src)], check=True, capture_output=True)))
            hash_t.append(timed(lambda: sha256_file(src)))
        server.shutdown()
    c, cs, o, s, h = map(statistics.median, (curl_t, curl_sync_t, ours_t, sum_t, hash_t))
    mib = size / (1 << 20)
    print(f"file: {mib:.0f} MiB over 127.0.0.1, median of {args.rounds} rounds")
    print(f"download: curl {mib / c:.0f} MiB/s, posepipe {mib / o:.0f} MiB/s (hash+fsync included)")
    print(f"  throughput ratio posepipe/curl = {c / o:.2f}x (goal >= 0.9x; curl neither hashes nor fsyncs)")
    print(f"  throughput ratio posepipe/(curl && sync FILE) = {cs / o:.2f}x (same durability as ours)")
    print(f"hashing: sha256sum {mib / s:.0f} MiB/s, posepipe {mib / h:.0f} MiB/s")
    print(f"  throughput ratio posepipe/sha256sum = {s / h:.2f}x (goal >= 0.9x)")


if __name__ == "__main__":
    main()
