"""The base image, made without any registry: debootstrap + a normalised tar + docker import.

No image can be pulled on our machines (nor in many factories), so the base
every toolchain starts from is built from Debian packages. Its tag is a digest
of the settings in docker/base/bootstrap.yaml, so an unchanged base is never
rebuilt and CI on the same machine reuses it.
"""

from __future__ import annotations

import logging

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.edges.fs import write_bytes_atomic
from pipelines.core.digests import canonical_json, sha256_json
from pipelines.edges.docker_driver import DockerDriver
from pipelines.core.errors import StepFailed, UsageError

BASE_REPOSITORY = "posepipe/base"
# Fixed file times inside the base tar: the rootfs bytes then depend only on the packages.
BASE_EPOCH = 315532800  # 1980-01-01

log = logging.getLogger("posepipe")


@dataclass(frozen=True)
class BaseSpec:
    suite: str
    variant: str
    arch: str
    include: tuple[str, ...]
    image: str | None = None  # a configured base ("name@sha256:..."), used as is instead of bootstrapping

    @property
    def digest(self) -> str:
        return sha256_json({"kind": "debootstrap/v1", **self.__dict__, "include": sorted(self.include)})

    @property
    def tag(self) -> str:
        return f"{BASE_REPOSITORY}:{self.digest[:16]}"


def load_base_spec(docker_dir: Path) -> BaseSpec:
    data = yaml.safe_load((docker_dir / "base" / "bootstrap.yaml").read_text())
    return BaseSpec(data["suite"], data["variant"], data["arch"], tuple(data["include"]), data.get("image"))


def debian_mirror() -> str:
    """POSEPIPE_DEBIAN_MIRROR, else the first Debian archive the host's apt uses."""
    if env := os.environ.get("POSEPIPE_DEBIAN_MIRROR"):
        return env
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]
    for path in sources:
        if not path.is_file():
            continue
        for m in re.finditer(r"(?:URIs:|^deb)\s+(\S+/debian)/?\s", path.read_text(), re.MULTILINE):
            return m.group(1)
    raise UsageError(
        "no Debian mirror found in the host's apt sources; set POSEPIPE_DEBIAN_MIRROR to one "
        "(an air-gapped site points it at its local mirror)"
    )


def ensure_base(driver: DockerDriver, spec: BaseSpec, store_root: Path, fresh: bool = False) -> str:
    """The base image ID: the configured image, or the bootstrapped one (made if missing or ``fresh``)."""
    if spec.image:
        return driver.image_id(spec.image) or driver.pull(spec.image)
    image_id = driver.image_id(spec.tag)
    if image_id and not fresh:
        return image_id
    if shutil.which("debootstrap") is None:
        raise UsageError("debootstrap is not installed; `apt-get install debootstrap` (it is a Debian package)")
    if os.geteuid() != 0:
        raise UsageError("making the base image runs debootstrap, which needs root")
    work = store_root / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bootstrap-", dir=work) as tmp:
        rootfs, tar, logfile = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar", Path(tmp) / "debootstrap.log"
        mirror = debian_mirror()
        log.info(f"bootstrapping {spec.tag}: debian {spec.suite} ({spec.variant}) from {mirror}")
        cmd = [
            "debootstrap", f"--variant={spec.variant}", f"--arch={spec.arch}",
            f"--include={','.join(spec.include)}", spec.suite, str(rootfs), mirror,
        ]
        _run_logged(cmd, logfile, "debootstrap")
        _strip_rootfs(rootfs)
        _run_logged(
            ["tar", "--sort=name", f"--mtime=@{BASE_EPOCH}", "--owner=0", "--group=0", "--numeric-owner",
             "--clamp-mtime", "-C", str(rootfs), "-cf", str(tar), "."],
            logfile, "tar",
        )
        repository, tag = spec.tag.split(":")
        driver.import_tar(tar, repository, tag, changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
    image_id = driver.image_id(spec.tag)
    if image_id is None:
        raise StepFailed(f"docker import did not produce {spec.tag}")
    record = store_root / "bases" / f"{spec.digest}.json"
    write_bytes_atomic(record, canonical_json({"tag": spec.tag, "image_id": image_id, "spec": spec.__dict__}))
    log.info(f"base image {spec.tag} = {image_id}")
    return image_id


def _strip_rootfs(rootfs: Path) -> None:
    """Drop downloaded .debs, apt lists and logs: they only add size and non-determinism."""
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists", "var/log", "var/cache/debconf"):
        d = rootfs / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.is_file() or p.is_symlink():
                    p.unlink()


def _run_logged(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "ab") as f:
        res = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise StepFailed(f"{what} failed with exit code {res.returncode}:\n  " + "\n  ".join(tail))
