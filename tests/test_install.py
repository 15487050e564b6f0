"""A board team's path: the wheel installed into a fresh venv, `posepipe download` run in an
empty folder, with no posepipe checkout anywhere on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from pipelines.commands import publish as publishing
from pipelines.core.layout import REPO_ROOT
from pipelines.edges.publishing import artifacts
from pipelines.edges.publishing import signing
from tests.test_artifacts import lay, make_artifact, served  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv holding only the posepipe wheel; its dependencies come from this interpreter's
    site-packages by a plain path line (so this checkout's editable install is not on the path)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "pipelines", src / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(src)], check=True, timeout=300)
    (wheel,) = (tmp / "dist").glob("posepipe-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    purelib = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "host-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.rmtree(src)
    return venv


def run_installed(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "POSEPIPE_ROOT", "POSEPIPE_STORE")}
    env["HOME"] = str(cwd.parent / "home")
    return subprocess.run([str(venv / "bin" / "posepipe"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def empty_folder(tmp_path) -> Path:
    folder = tmp_path / "board-team"
    folder.mkdir()
    return folder


def test_the_installed_package_runs_from_the_wheel_with_no_checkout(installed, empty_folder):
    res = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import pipelines, pipelines.core.layout as l; print(pipelines.__file__); print(l.find_checkout())"],
        cwd=empty_folder, capture_output=True, text=True, check=True,
    )
    package_file, checkout = res.stdout.split()
    assert Path(package_file).is_relative_to(installed) and checkout == "None"


def test_posepipe_download_verifies_a_signed_artifact_over_http(installed, empty_folder, lay, served, tmp_path):  # noqa: F811
    private, public = signing.make_keys(tmp_path / "keys")
    make_artifact(lay)
    root, url = served
    publishing.publish(lay, "face_deeppose", "ort_fp32", root, "v1", str(private))
    res = run_installed(installed, empty_folder, "download", "--recipe", "face_deeppose", "--target", "ort_fp32",
                        "--from", url, "--to", "board", "--key", str(public), "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "2 file(s) verified -> board" in res.stdout
    out = empty_folder / "board"
    assert (out / "face_deeppose_ort_fp32" / "model.onnx").read_bytes() == b"model bytes\n"
    artifacts.check_files(out, artifacts.read(out))


def test_posepipe_download_verifies_a_signed_artifact_from_an_oci_registry(installed, empty_folder, lay, oci_registry, tmp_path):  # noqa: F811
    private, public = signing.make_keys(tmp_path / "keys")
    make_artifact(lay)
    publishing.publish(lay, "face_deeppose", "ort_fp32", oci_registry.url, "v1", str(private))
    res = run_installed(installed, empty_folder, "download", "--recipe", "face_deeppose", "--target", "ort_fp32",
                        "--from", oci_registry.url, "--to", "board", "--key", str(public), "--no-progress")
    assert res.returncode == 0, res.stderr
    assert (empty_folder / "board" / "face_deeppose_ort_fp32" / "model.onnx").read_bytes() == b"model bytes\n"


def test_tasks_that_need_a_checkout_say_so(installed, empty_folder):
    res = run_installed(installed, empty_folder, "build", "--recipe", "face_deeppose")
    assert res.returncode == 2
    assert "needs a posepipe checkout" in res.stderr and "Traceback" not in res.stderr
