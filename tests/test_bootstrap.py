"""The base image without root: mmdebstrap's unshare mode, a byte-reproducible rootfs, a clear refusal.

The end-to-end test creates a real non-root user in the `docker` group (so it needs root, as CI
has), first without subordinate ids (posepipe must refuse with exit 13 and the `usermod` line),
then with them: that user bootstraps a base and builds a recipe target, and the rootfs digest it
records must equal the sha256 of the same base made again here, as root.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import uuid
from pathlib import Path

import pytest
import yaml

from pipelines.core.errors import RootlessUnavailable, UsageError
from pipelines.core.layout import REPO_ROOT
from pipelines.edges.containers import bootstrap
from pipelines.edges.containers.bootstrap import ROOTFS_LABEL, debian_mirror, load_base_spec, make_rootfs, unshare_problems
from pipelines.edges.containers.docker_driver import DockerDriver
from pipelines.edges.containers.images import load_toolchain

from .conftest import TEST_TOOLCHAINS, served_recipe, zip_of
from .httpserver import LoopbackServer, Route

CHECKPOINT = b"stand-in checkpoint for the rootless build\n"


def _etc(tmp_path: Path, subuid: str, subgid: str) -> Path:
    (tmp_path / "subuid").write_text(subuid)
    (tmp_path / "subgid").write_text(subgid)
    return tmp_path


def test_unshare_needs_a_whole_subordinate_range_for_the_user(tmp_path):
    ranged = "alice:100000:65536\n"
    assert unshare_problems(0, "root", etc=_etc(tmp_path, "", "")) == []
    problems = unshare_problems(1000, "alice", etc=_etc(tmp_path, "bob:100000:65536\n", "alice:100000:100\n"))
    assert any("subuid gives alice no range" in p for p in problems)
    assert any("subgid gives alice no range" in p for p in problems)
    by_uid = unshare_problems(1000, "alice", etc=_etc(tmp_path, "1000:100000:65536\n", ranged))
    assert not [p for p in by_uid if "subordinate" in p]


def test_missing_subordinate_ids_are_refused_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(bootstrap, "unshare_problems", lambda uid, user: ["/etc/subuid gives carol no range of 65536 subordinate ids"])
    with pytest.raises(RootlessUnavailable) as e:
        bootstrap.check_unshare_possible()
    assert e.value.exit_code == 13
    assert "usermod --add-subuids 100000-165535 --add-subgids 100000-165535" in str(e.value)
    assert "/etc/subuid gives carol no range" in str(e.value)


def _install_dependencies(target: Path) -> None:
    """posepipe's runtime dependencies, installed where the test user can read them."""
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *deps], check=True)


def _checkout(root: Path, server: LoopbackServer) -> None:
    """A checkout whose base differs from the suite's (one extra package), so no shared image is retagged."""
    shutil.copytree(REPO_ROOT / "pipelines", root / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "tasks.py", root / "tasks.py")
    shutil.copytree(REPO_ROOT / "docker" / "base", root / "docker" / "base")
    shutil.copytree(REPO_ROOT / "docker" / "common", root / "docker" / "common")
    shutil.copytree(REPO_ROOT / "docker" / "calibration", root / "docker" / "calibration")
    for name in ("mmpose", "onnxruntime"):
        shutil.copytree(TEST_TOOLCHAINS / "standin", root / "docker" / name)
    spec_file = root / "docker" / "base" / "bootstrap.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["include"].append("less")
    spec_file.write_text(yaml.safe_dump(spec))
    archive = zip_of({f"val2017/{i:012d}.jpg": b"stand-in image %d" % i for i in range(40)})
    served = (server.add("/ckpt.pth", Route(CHECKPOINT)), CHECKPOINT), (server.add("/cal.zip", Route(archive)), archive)
    (root / "recipes").mkdir(parents=True)
    (root / "recipes" / "face_deeppose.yaml").write_text(served_recipe("face_deeppose", *served))


@pytest.fixture
def docker_user():
    """A new non-root user in the docker group, removed afterwards with everything it owns."""
    if os.geteuid() != 0:
        pytest.skip("creates a user: needs root (CI runs as root)")
    name = f"pp{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--create-home", "--groups", grp.getgrgid(os.stat("/var/run/docker.sock").st_gid).gr_name, name],
                   check=True)
    _drop_subordinate_ids(name)  # useradd gives a new user a range where login.defs says so; start without
    home = Path(tempfile.mkdtemp(prefix="posepipe-rootless-", dir="/var/tmp"))
    try:
        yield name, home
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def _drop_subordinate_ids(user: str) -> None:
    for what, option in (("subuid", "--del-subuids"), ("subgid", "--del-subgids")):
        for line in Path("/etc", what).read_text().splitlines():
            name, start, count = line.split(":")
            if name == user:
                subprocess.run(["usermod", option, f"{start}-{int(start) + int(count) - 1}", user], check=True)


def _as_user(user: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"HOME": str(home), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": f"{home / 'deps'}:{home / 'repo'}",
           "POSEPIPE_STORE": str(home / "store"), "LANG": "C.UTF-8"}
    return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                           "/usr/bin/python3", "-m", "invoke", *args],
                          cwd=home / "repo", capture_output=True, text=True)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.alone
def test_a_docker_group_user_bootstraps_and_builds_without_root(docker_user, tmp_path):
    user, home = docker_user
    driver = DockerDriver.from_env()
    with LoopbackServer() as server:
        _checkout(home / "repo", server)
        _install_dependencies(home / "deps")
        subprocess.run(["chown", "-R", f"{user}:{user}", str(home)], check=True)
        spec = load_base_spec(home / "repo" / "docker")
        before = set(driver.tags("posepipe/"))
        try:
            refused = _as_user(user, home, "build", "--recipe", "face_deeppose", "--target", "ort_fp32", "--no-progress")
            assert refused.returncode == 13, refused.stdout + refused.stderr
            assert f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}" in refused.stdout + refused.stderr
            assert driver.image_id(spec.tag) is None

            subprocess.run(["usermod", "--add-subuids", "100000-165535", "--add-subgids", "100000-165535", user], check=True)
            built = _as_user(user, home, "build", "--recipe", "face_deeppose", "--target", "ort_fp32", "--no-progress")
            assert built.returncode == 0, built.stdout + built.stderr
            record = json.loads((home / "store" / "bases" / f"{spec.digest}.json").read_text())
            assert record["rootfs_sha256"] == driver.image_label(spec.tag, ROOTFS_LABEL)
            manifest = json.loads((home / "repo" / "artifacts" / "face_deeppose" / "ort_fp32" / "manifest.json").read_text())
            assert manifest["base"] == {"image": spec.tag, "rootfs_sha256": record["rootfs_sha256"]}
            assert all(p.owner() == user for p in (home / "store").rglob("*"))

            # The same settings made again, here as root: the same bytes.
            again = make_rootfs(spec, debian_mirror(), tmp_path / "rootfs.tar", tmp_path / "mmdebstrap.log")
            assert again == record["rootfs_sha256"]
        finally:
            for tag in sorted(set(driver.tags("posepipe/")) - before, key=lambda t: t.startswith(spec.tag)):
                driver.remove_image(tag)  # the images on this test's base first, the base last


def test_a_toolchain_base_is_the_common_bootstrap_with_more_packages():
    common = load_base_spec(REPO_ROOT / "docker")
    own = common.with_packages(("qemu-user-static", "python3"))
    assert own.include == (*common.include, "qemu-user-static")  # nothing twice, the common packages first
    assert (own.suite, own.variant, own.arch) == (common.suite, common.variant, common.arch)
    assert own.digest != common.digest and own.tag != common.tag  # its own tag: the common base is untouched
    assert common.with_packages(()) is common
    with pytest.raises(UsageError, match="cannot take extra Debian packages"):
        bootstrap.BaseSpec("bookworm", "minbase", "amd64", (), image="registry.example/base@sha256:" + "0" * 64).with_packages(("gcc",))


def test_a_fetched_image_input_is_part_of_the_image_digest_by_its_sha256(tmp_path):
    folder = tmp_path / "docker" / "tc"
    folder.mkdir(parents=True)
    spec_text = "command: [python3, /x.py]\nfetch:\n  runtime.whl:\n    url: http://127.0.0.1:1/runtime.whl\n    sha256: {}\n"
    (folder / "toolchain.yaml").write_text(spec_text.format("a" * 64))
    first = load_toolchain(tmp_path / "docker", "tc")
    assert first.fetched[0].name == "runtime.whl" and first.files["fetched/runtime.whl"] == "a" * 64
    (folder / "toolchain.yaml").write_text(spec_text.format("b" * 64))
    assert load_toolchain(tmp_path / "docker", "tc").files_digest != first.files_digest
    (folder / "toolchain.yaml").write_text(spec_text.format("abcd1234"))
    with pytest.raises(UsageError, match=r"fetch\.runtime\.whl needs a url and a full 64-hex sha256"):
        load_toolchain(tmp_path / "docker", "tc")


def test_a_shared_folder_is_part_of_the_image_digest_file_by_file():
    """docker/common/torch (the torch stand-in) is shared as a folder: each of its files is an image input."""
    standin = sorted(p.relative_to(REPO_ROOT / "docker" / "common").as_posix()
                     for p in (REPO_ROOT / "docker" / "common" / "torch").rglob("*.py"))
    assert standin == ["torch/__init__.py", "torch/autograd/__init__.py", "torch/nn/__init__.py"]
    for name in ("rknn", "sophgo_tpu_mlir"):
        spec = load_toolchain(REPO_ROOT / "docker", name)
        assert "torch" in spec.shared
        assert {f"shared/{rel}" for rel in standin} <= spec.files.keys()
        assert "torch" not in (spec.folder / spec.requirements).read_text()  # the stand-in, never PyPI's torch
