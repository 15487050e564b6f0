"""Python packages for images: downloaded on the host, checked against locked hashes.

Containers never reach a package index. A toolchain's requirements file pins
every wheel by hash (pip's ``--hash`` format); the host downloads them into
the store's wheelhouse with ``pip download --require-hashes`` and the image
installs them with ``--no-index --require-hashes`` from ``served``: the wheels over
HTTP on 127.0.0.1 for the build's length, so they never become an image layer.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import sys
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipelines.core.digests import sha256_file
from pipelines.core.errors import IntegrityError, NetworkError

HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
NO_DEPS = "# no-deps"  # requirements.in marker: take this package without its declared dependencies
# The images run on Debian bookworm (glibc 2.36): every manylinux tag up to it. The Python is
# bookworm's CPython 3.11 unless a toolchain.yaml says `python: "3.10"` (TPU-MLIR's wheel).
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64",
)
DEFAULT_PYTHON = "3.11"


def _target(python: str) -> list[str]:
    return ["--only-binary=:all:", "--python-version", python, "--implementation", "cp", *[f"--platform={p}" for p in PLATFORMS]]


def locked_hashes(requirements: Path) -> set[str]:
    return set(HASH.findall(requirements.read_text()))


def fill_wheelhouse(requirements: Path, wheelhouse: Path, python: str = DEFAULT_PYTHON) -> list[Path]:
    """The wheel files the requirements lock, downloading any that are missing.

    Wheels are kept as ``<wheelhouse>/<sha256>/<file name>``: presence is a lookup, not a re-hash.
    """
    wanted = locked_hashes(requirements)
    if not wanted:
        raise IntegrityError(f"{requirements} pins no hashes; every wheel must carry --hash=sha256:...")
    if any(not _stored(wheelhouse, h) for h in wanted):
        (wheelhouse / "tmp").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheelhouse / "tmp") as tmp:
            _pip_download(["--no-deps", "--require-hashes", "-r", str(requirements)], Path(tmp), python)
            _store(Path(tmp), wheelhouse)
    missing = sorted(h for h in wanted if not _stored(wheelhouse, h))
    if missing:
        raise IntegrityError(f"{requirements}: no downloaded wheel has sha256 {', '.join(missing)}")
    return sorted(_stored(wheelhouse, h) for h in wanted)


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """The wheels in ``folder`` on an HTTP server at 127.0.0.1 while the block runs; yields the URL for pip's
    ``--find-links`` (its directory page lists them). A classic ``docker build`` has no bind mounts, so a
    ``COPY`` of the wheels would write gigabytes into a layer, and a second stage to leave them behind would
    write the installed venv twice; read over loopback, they are written once, installed. Read-only, and
    nothing to trust: pip checks each file against the lock's sha256."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, name="wheel server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """pip's requests are not the console's business."""


def _stored(wheelhouse: Path, digest: str) -> Path | None:
    folder = wheelhouse / digest
    files = list(folder.glob("*.whl")) if folder.is_dir() else []
    if files:
        os.utime(folder)  # last use, for gc's least-recently-used order
    return files[0] if files else None


def _pip_download(args: list[str], dest: Path, python: str) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", *_target(python), "--dest", str(dest), *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise NetworkError(f"pip download failed ({' '.join(args)}):\n{res.stderr.strip()[-2000:]}")


def _store(downloaded: Path, wheelhouse: Path) -> dict[str, Path]:
    """Move downloaded wheels to ``<wheelhouse>/<sha256>/``; returns {sha256: stored path}."""
    stored = {}
    for wheel in sorted(downloaded.glob("*.whl")):
        digest, _ = sha256_file(wheel)
        folder = wheelhouse / digest
        if not folder.is_dir():
            staged = downloaded / f"{digest}.dir"
            staged.mkdir()
            os.replace(wheel, staged / wheel.name)
            with contextlib.suppress(OSError):  # another process stored the same wheel first
                os.replace(staged, folder)
        stored[digest] = _stored(wheelhouse, digest)
    return stored


def lock(requirements_in: Path, wheelhouse: Path, python: str = DEFAULT_PYTHON) -> Path:
    """Resolve ``requirements.in`` for the image's platform and write ``requirements.lock`` beside it.

    Lines marked ``# no-deps`` are taken without their declared dependencies (e.g. mmpose,
    whose chumpy dependency does not build and is never imported); the rest are resolved
    together. The lock pins every wheel by sha256, so the image installs with --no-deps.
    """
    resolved, bare = [], []
    for line in requirements_in.read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            (bare if NO_DEPS in line else resolved).append(spec)
    (wheelhouse / "tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheelhouse / "tmp") as tmp:
        if resolved:
            _pip_download(resolved, Path(tmp), python)
        if bare:
            _pip_download(["--no-deps", *bare], Path(tmp), python)
        stored = _store(Path(tmp), wheelhouse)
    lines = sorted(f"{_pin(path.name)} --hash=sha256:{digest}" for digest, path in stored.items())
    out = requirements_in.with_suffix(".lock")
    header = f"# Generated from {requirements_in.name} by `invoke lock`: every wheel pinned by sha256.\n"
    out.write_text(header + "\n".join(lines) + "\n")
    return out


def _pin(wheel_name: str) -> str:
    name, version = wheel_name.split("-")[:2]
    return f"{name.replace('_', '-').lower()}=={version}"
