"""The base image, made without any registry and without root: mmdebstrap + docker import.

No image can be pulled on our machines (nor in many factories), so the base
every toolchain starts from is built from Debian packages. mmdebstrap's
unshare mode needs no root (only subordinate ids for the user) and, with
SOURCE_DATE_EPOCH set, writes a byte-reproducible tarball: its sha256 is the
base's content digest, kept in the store, on the image as a label and in every
manifest. The tag is a digest of the settings in docker/base/bootstrap.yaml, so
an unchanged base is never rebuilt.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.core.digests import canonical_json, sha256_file, sha256_json
from pipelines.core.errors import RootlessUnavailable, StepFailed, UsageError
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.fs import write_bytes_atomic
from pipelines.edges.store import Store

BASE_REPOSITORY = "posepipe/base"
# SOURCE_DATE_EPOCH for mmdebstrap: file times and package state then depend only on the packages.
BASE_EPOCH = 315532800  # 1980-01-01
ROOTFS_LABEL = "posepipe.rootfs_sha256"
SUBORDINATE_IDS = 65536  # a whole 16-bit id range, what Debian's adduser gives a new user

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
        return sha256_json({"kind": "mmdebstrap/v1", **self.__dict__, "include": sorted(self.include)})

    @property
    def tag(self) -> str:
        return f"{BASE_REPOSITORY}:{self.digest[:16]}"

    def with_packages(self, extra: tuple[str, ...]) -> BaseSpec:
        """The same bootstrap with more Debian packages: a toolchain's own base (a cross compiler,
        an emulator), made by the same offline mmdebstrap run, so its packages are resolved and
        pinned exactly as the common base's are."""
        if not extra:
            return self
        if self.image:
            raise UsageError(f"a configured base image ({self.image}) cannot take extra Debian packages {list(extra)}")
        return BaseSpec(self.suite, self.variant, self.arch, tuple(dict.fromkeys((*self.include, *extra))))


@dataclass(frozen=True)
class BaseRecord:
    """Which base the images of a build stand on; ``rootfs_sha256`` is None for a configured image."""

    image: str
    rootfs_sha256: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"image": self.image, "rootfs_sha256": self.rootfs_sha256}


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


def _has_range(path: Path, user: str, uid: int) -> bool:
    """Whether ``path`` (/etc/subuid or /etc/subgid) gives the user a whole 16-bit id range."""
    if not path.is_file():
        return False
    for line in path.read_text().splitlines():
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (user, str(uid)) and fields[2].isdigit() and int(fields[2]) >= SUBORDINATE_IDS:
            return True
    return False


def unshare_problems(uid: int, user: str, etc: Path = Path("/etc"), proc: Path = Path("/proc")) -> list[str]:
    """Why mmdebstrap's unshare mode cannot run for this user; empty when it can. Root always can."""
    if uid == 0:
        return []
    problems = []
    for what in ("subuid", "subgid"):
        if not _has_range(etc / what, user, uid):
            problems.append(f"{etc / what} gives {user} no range of {SUBORDINATE_IDS} subordinate ids")
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is not installed (Debian package uidmap)")
    limit = proc / "sys" / "user" / "max_user_namespaces"
    if limit.is_file() and limit.read_text().strip() == "0":
        problems.append(f"user namespaces are disabled ({limit} is 0)")
    clone = proc / "sys" / "kernel" / "unprivileged_userns_clone"
    if clone.is_file() and clone.read_text().strip() == "0":
        problems.append(f"unprivileged user namespaces are disabled ({clone} is 0)")
    apparmor = proc / "sys" / "kernel" / "apparmor_restrict_unprivileged_userns"  # Ubuntu 24.04's default
    if apparmor.is_file() and apparmor.read_text().strip() == "1":
        problems.append(f"AppArmor restricts unprivileged user namespaces ({apparmor} is 1; "
                        "`sysctl kernel.apparmor_restrict_unprivileged_userns=0` lifts it)")
    return problems


def check_unshare_possible() -> None:
    uid = os.geteuid()
    user = pwd.getpwuid(uid).pw_name
    if problems := unshare_problems(uid, user):
        raise RootlessUnavailable(
            "making the base image without root needs mmdebstrap's unshare mode, which cannot run here:\n  "
            + "\n  ".join(problems)
            + f"\nGive {user} subordinate ids once (as root):\n"
            f"  apt-get install mmdebstrap uidmap\n"
            f"  usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}\n"
            "or run `invoke images` once as root; every later command then runs as this user."
        )


def _bootstrap_environment() -> dict[str, str]:
    """A fixed environment: the caller's leaks into maintainer scripts (root's PYTHON* variables
    changed how py3compile wrote .pyc files), so root and a user got different bytes."""
    passed = {k: v for k, v in os.environ.items() if k in ("HOME", "TMPDIR") or k.lower().endswith("_proxy")}
    return {**passed, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SOURCE_DATE_EPOCH": str(BASE_EPOCH)}


def make_rootfs(spec: BaseSpec, mirror: str, tar: Path, logfile: Path) -> str:
    """Write the base's root file system to ``tar`` with mmdebstrap; return the tarball's sha256.

    The mirror is named explicitly: with SOURCE_DATE_EPOCH and no mirror, mmdebstrap
    would pick snapshot.debian.org, which an offline site cannot reach.
    """
    if shutil.which("mmdebstrap") is None:
        raise UsageError("mmdebstrap is not installed; `apt-get install mmdebstrap uidmap` (Debian packages)")
    check_unshare_possible()
    cmd = [
        shutil.which("mmdebstrap"), "--mode=unshare", f"--variant={spec.variant}", f"--architectures={spec.arch}",
        f"--include={','.join(spec.include)}", spec.suite, str(tar), f"deb {mirror} {spec.suite} main",
    ]
    with open(logfile, "ab") as f:
        res = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=_bootstrap_environment())
    if res.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-30:]
        raise StepFailed(f"mmdebstrap failed with exit code {res.returncode}:\n  " + "\n  ".join(tail))
    return sha256_file(tar)[0]


def ensure_base(driver: DockerDriver, spec: BaseSpec, store: Store, fresh: bool = False) -> str:
    """The base image ID: the configured image, or the bootstrapped one (made if missing or ``fresh``)."""
    if spec.image:
        return driver.image_id(spec.image) or driver.pull(spec.image)
    image_id = driver.image_id(spec.tag)
    if image_id and not fresh:
        return image_id
    work = store.tmp
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bootstrap-", dir=work) as tmp:
        tar, logfile = Path(tmp) / "rootfs.tar", Path(tmp) / "mmdebstrap.log"
        mirror = debian_mirror()
        log.info(f"bootstrapping {spec.tag}: debian {spec.suite} ({spec.variant}) from {mirror}")
        rootfs_sha256 = make_rootfs(spec, mirror, tar, logfile)
        repository, tag = spec.tag.split(":")
        driver.import_tar(tar, repository, tag,
                          changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]', f"LABEL {ROOTFS_LABEL}={rootfs_sha256}"])
    image_id = driver.image_id(spec.tag)
    if image_id is None:
        raise StepFailed(f"docker import did not produce {spec.tag}")
    record = store.bases / f"{spec.digest}.json"
    write_bytes_atomic(record, canonical_json(
        {"tag": spec.tag, "image_id": image_id, "rootfs_sha256": rootfs_sha256, "mirror": mirror, "spec": spec.__dict__}
    ))
    log.info(f"base image {spec.tag} = {image_id} (rootfs sha256 {rootfs_sha256})")
    return image_id


def base_record(driver: DockerDriver, spec: BaseSpec) -> BaseRecord:
    """What a manifest says of the base: the bootstrapped tag and its rootfs digest, or the configured image."""
    if spec.image:
        return BaseRecord(spec.image, None)
    return BaseRecord(spec.tag, driver.image_label(spec.tag, ROOTFS_LABEL))
