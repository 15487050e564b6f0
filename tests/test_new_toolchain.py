"""Adding a toolchain is one docker/<name>/ folder and one module, nothing else edited: a copy of posepipe gains a
copy of the ONNX Runtime toolchain under a new name, and a recipe target naming it is listed, built for real,
checked and labelled, with no other file of posepipe touched."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.layout import REPO_ROOT

from .conftest import SHARED_STORE
from .test_pipeline import mmpose_image, random_weight_recipe, scenes, server  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def changed_files(old: Path, new: Path) -> list[str]:
    """Files added to or changed in ``new`` against ``old`` (the trees compared recursively)."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp, at: str) -> None:
        found.extend(f"{at}{name}" for name in cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{at}{name}/")

    walk(filecmp.dircmp(old, new, ignore=["__pycache__"]), "")
    return sorted(found)


def test_a_toolchain_is_one_folder_and_one_module(mmpose_image, scenes, server, tmp_path):  # noqa: F811
    root = tmp_path / "posepipe"
    shutil.copytree(REPO_ROOT / "pipelines", root / "pipelines", ignore=IGNORED)
    shutil.copy(REPO_ROOT / "tasks.py", root / "tasks.py")
    for name in ("base", "common", "mmpose", "calibration", "onnxruntime"):
        shutil.copytree(REPO_ROOT / "docker" / name, root / "docker" / name, ignore=IGNORED)
    (root / "recipes").mkdir()
    pristine = tmp_path / "pristine"
    shutil.copytree(root, pristine)

    # the new toolchain: its folder and its module, copied from ONNX Runtime's under another name
    shutil.copytree(REPO_ROOT / "docker" / "onnxruntime", root / "docker" / "ort_copy", ignore=IGNORED)
    module = (REPO_ROOT / "pipelines" / "core" / "toolchains" / "onnxruntime.py").read_text()
    (root / "pipelines" / "core" / "toolchains" / "ort_copy.py").write_text(module.replace('name="onnxruntime"', 'name="ort_copy"'))
    assert changed_files(pristine, root) == ["docker/ort_copy", "pipelines/core/toolchains/ort_copy.py"]

    text, _ = random_weight_recipe("face_deeppose", mmpose_image, scenes, server, tmp_path)
    text += "  - id: copied\n    toolchain: ort_copy\n    output: face_deeppose_copied\n    quantize: none\n"
    (root / "recipes" / "face_deeppose.yaml").write_text(text)
    env = {**os.environ, "PYTHONPATH": str(root), "POSEPIPE_ROOT": str(root), "POSEPIPE_STORE": str(SHARED_STORE), "CI": "1"}

    def invoke(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=root, env=env, capture_output=True, text=True)

    listed = invoke("list", "--recipe", "face_deeppose")
    assert listed.returncode == 0 and any("copied" in line and "ort_copy" in line and line.rstrip().endswith("ready")
                                          for line in listed.stdout.splitlines()), listed.stdout + listed.stderr
    built = invoke("build", "--recipe", "face_deeppose", "--target", "copied")
    assert built.returncode == 0, built.stderr[-3000:]
    manifest = json.loads((root / "artifacts" / "face_deeppose" / "copied" / "manifest.json").read_text())
    assert manifest["label"] == "verified" and manifest["target"]["toolchain"] == "ort_copy"
    assert {t["name"] for t in manifest["toolchains"]} == {"mmpose", "ort_copy"}
    assert (root / "artifacts" / "face_deeppose" / "copied" / "face_deeppose_copied" / "model.onnx").is_file()
