"""Python packages for images: downloaded on the host, checked against locked hashes.

Containers never reach a package index. A toolchain's requirements file pins
every wheel by hash (pip's ``--hash`` format); the host downloads them into
the store's wheelhouse with ``pip download --require-hashes`` and the image
installs them with ``--no-index --require-hashes``.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import sys
from pathlib import Path

from .digests import sha256_file
from .errors import IntegrityError, NetworkError

HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
# The images run Debian bookworm's CPython 3.11 (glibc 2.36).
PLATFORMS = ("manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def locked_hashes(requirements: Path) -> set[str]:
    return set(HASH.findall(requirements.read_text()))


def fill_wheelhouse(requirements: Path, wheelhouse: Path) -> list[Path]:
    """The wheel files the requirements lock, downloading any that are missing.

    Wheels are kept as ``<wheelhouse>/<sha256>/<file name>``: presence is a lookup, not a re-hash.
    """
    wanted = locked_hashes(requirements)
    if not wanted:
        raise IntegrityError(f"{requirements} pins no hashes; every wheel must carry --hash=sha256:...")
    if any(not _stored(wheelhouse, h) for h in wanted):
        (wheelhouse / "tmp").mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheelhouse / "tmp") as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                *[f"--platform={p}" for p in PLATFORMS], "--dest", tmp, "-r", str(requirements),
            ]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise NetworkError(f"pip download for {requirements} failed:\n{res.stderr.strip()[-2000:]}")
            for wheel in Path(tmp).glob("*.whl"):
                digest, _ = sha256_file(wheel)  # pip checked it; this names its folder
                folder = wheelhouse / digest
                if not folder.is_dir():
                    staged = Path(tmp) / f"{digest}.dir"
                    staged.mkdir()
                    os.replace(wheel, staged / wheel.name)
                    os.replace(staged, folder)
    missing = sorted(h for h in wanted if not _stored(wheelhouse, h))
    if missing:
        raise IntegrityError(f"{requirements}: no downloaded wheel has sha256 {', '.join(missing)}")
    return sorted(_stored(wheelhouse, h) for h in wanted)


def _stored(wheelhouse: Path, digest: str) -> Path | None:
    folder = wheelhouse / digest
    files = list(folder.glob("*.whl")) if folder.is_dir() else []
    return files[0] if files else None
