"""The CPython a toolchain needs when Debian's 3.11 will not do (TPU-MLIR's wheel is 3.10 only).

Debian bookworm has no python3.10, and no image can be pulled, so posepipe copies a standalone
CPython prefix into the image (at /opt/python<minor>, found through LD_LIBRARY_PATH). Where it
comes from, first found wins:
  1. ``interpreters: {"3.10": PREFIX}`` in the posepipe config (``$POSEPIPE_VENDOR_CONFIG`` or
     ``~/.config/posepipe/vendor.yaml``);
  2. pyenv's versions (``$PYENV_ROOT/versions/3.10.*``, newest first);
  3. a ``python3.10`` on PATH whose prefix is its own (not /usr or /usr/local, which hold
     everything else too).
The files copied (the prefix without site-packages, the test suite and caches) have a digest
that is part of the image tag and of every manifest that used it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.core.digests import sha256_bytes, sha256_file, sha256_json
from pipelines.core.layout import default_store
from pipelines.core.errors import ToolchainNotProvisioned, UsageError
from pipelines.edges.fs import write_bytes_atomic
from pipelines.edges.containers.provisioning import config_path
from pipelines.edges.store import Store
from pipelines.edges.trees import fingerprints

SKIPPED = ("site-packages", "test", "__pycache__", "idlelib", "tkinter", "turtledemo")


@dataclass(frozen=True)
class Interpreter:
    minor: str  # "3.10"
    version: str  # "3.10.13"
    prefix: Path
    digest: str  # sha256 over the relative path and sha256 of every file copied into images
    source: str  # how it was found, for messages and manifests

    @property
    def describe(self) -> str:
        return f"CPython {self.version} ({self.source}, files sha256 {self.digest[:16]})"


def _ignore(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if n in SKIPPED or n.endswith(".pyc")]


def copy_into(interp: Interpreter, dest: Path) -> None:
    """The interpreter's files as images get them (no site-packages: the image makes its own venv)."""
    shutil.copytree(interp.prefix, dest, symlinks=True, ignore=_ignore)


def _kept(name: str) -> bool:
    return name not in SKIPPED and not name.endswith(".pyc")


@functools.cache
def _digest(prefix: Path) -> str:
    """The prefix's content digest, re-hashed only when a file's stat fingerprint moved (hashing
    its ~7500 files took most of a no-op build of a TPU-MLIR target); the record is in the store."""
    record = Store(default_store()).interpreters / f"{sha256_bytes(str(prefix).encode())}.json"
    fingerprint = sha256_json(fingerprints(prefix, _kept))
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, TypeError):
        known = json.loads(record.read_text())
        if known["fingerprint"] == fingerprint:
            return known["digest"]
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(prefix):
        dirnames[:] = sorted(filter(_kept, dirnames))
        for name in sorted(filter(_kept, filenames)):
            path = Path(dirpath) / name
            rel = path.relative_to(prefix).as_posix()
            content = os.readlink(path) if path.is_symlink() else sha256_file(path)[0]
            h.update(f"{rel}\0{content}\n".encode())
    digest = h.hexdigest()
    with contextlib.suppress(OSError):  # a read-only store only costs the hashing next time
        write_bytes_atomic(record, json.dumps({"prefix": str(prefix), "fingerprint": fingerprint, "digest": digest}).encode())
    return digest


def _version(prefix: Path, minor: str) -> str | None:
    exe = prefix / "bin" / f"python{minor}"
    if not exe.is_file():
        return None
    res = subprocess.run([str(exe), "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True)
    version = res.stdout.strip()
    return version if res.returncode == 0 and version.startswith(minor + ".") else None


def _candidates(minor: str) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    path = config_path()
    if path.is_file():
        configured = ((yaml.safe_load(path.read_text()) or {}).get("interpreters") or {}).get(minor)
        if configured:
            found.append((Path(configured), f"configured in {path}"))
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        versions = sorted(pyenv.glob(f"{minor}.*"), key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")], reverse=True)
        found += [(p, "pyenv") for p in versions]
    on_path = shutil.which(f"python{minor}")
    if on_path:
        prefix = Path(on_path).resolve().parent.parent
        if str(prefix) not in ("/usr", "/usr/local"):
            found.append((prefix, f"python{minor} on PATH"))
    return found


@functools.cache
def locate(minor: str) -> tuple[Path, str, str] | None:
    """(prefix, full version, source) of the first working candidate; cheap (no hashing)."""
    for prefix, source in _candidates(minor):
        version = _version(prefix, minor)
        if version is not None:
            return prefix, version, source
        if source.startswith("configured"):
            raise UsageError(f"{config_path()}: interpreters.{minor} = {prefix} has no working bin/python{minor}")
    return None


def find(minor: str) -> Interpreter | None:
    found = locate(minor)
    if found is None:
        return None
    prefix, version, source = found
    return Interpreter(minor, version, prefix, _digest(prefix), source)


def missing(minor: str, toolchain: str) -> ToolchainNotProvisioned:
    return ToolchainNotProvisioned(
        f"toolchain {toolchain} needs CPython {minor} (Debian bookworm has none and no image is pulled).\n"
        f"Supply a standalone CPython {minor} prefix, any of:\n"
        f"  - install one with pyenv (`pyenv install {minor}`): posepipe finds $PYENV_ROOT/versions/{minor}.*\n"
        f"  - put a python{minor} whose prefix is its own (e.g. /opt/python{minor}/bin) on PATH\n"
        f"  - name it in {config_path()}:\n      interpreters:\n        \"{minor}\": /path/to/prefix"
    )
