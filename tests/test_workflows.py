"""The GitHub workflows: valid against GitHub's schema, the right job graph, and only matrix
fields that `invoke matrix` really emits."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from pipelines.commands import matrix
from pipelines.core.errors import UsageError
from pipelines.core.layout import REPO_ROOT, Layout
from pipelines.core.recipe import load_recipe

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_workflows_match_githubs_schema():
    exe = shutil.which("check-jsonschema")
    assert exe, "check-jsonschema comes with the dev extra"
    res = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", *map(str, sorted(WORKFLOWS.glob("*.yml")))],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_build_workflow_graph():
    jobs = load("build.yml")["jobs"]
    assert set(jobs) == {"plan", "images", "exports", "build", "publish"}
    assert jobs["images"]["needs"] == "plan" and jobs["exports"]["needs"] == ["plan", "images"]
    assert jobs["build"]["needs"] == ["plan", "exports"] and jobs["publish"]["needs"] == "build"
    assert jobs["exports"]["strategy"]["matrix"]["recipe"] == "${{ fromJSON(needs.plan.outputs.recipes) }}"
    assert jobs["build"]["strategy"]["fail-fast"] is False
    assert jobs["build"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert "invoke matrix" in json.dumps(jobs["plan"]["steps"])
    assert jobs["publish"]["if"] == "github.ref_type == 'tag'"
    upload = next(s for s in jobs["build"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert "matrix.recipe" in upload["with"]["name"] and "matrix.target" in upload["with"]["name"]  # unique per cell


def test_build_workflow_shares_images_and_exports_through_the_package_registry():
    workflow, jobs = load("build.yml"), load("build.yml")["jobs"]
    setup = yaml.safe_load((REPO_ROOT / ".github" / "actions" / "setup" / "action.yml").read_text())
    script = json.dumps(setup["runs"]["steps"])
    assert "docker login ghcr.io" in script and "POSEPIPE_CACHE=oci://ghcr.io/" in script
    assert "pull_request" in workflow[True] and 'if [ \\"$EVENT\\" = pull_request ]; then echo \\"POSEPIPE_CACHE_READ_ONLY=1' in script
    assert "packages" not in workflow["permissions"]  # write only on the jobs that push
    for name in ("images", "exports", "build"):
        assert jobs[name]["permissions"] == {"contents": "read", "packages": "write"}
        assert any(s.get("uses") == "./.github/actions/setup" for s in jobs[name]["steps"])
    assert "invoke images" in json.dumps(jobs["images"]["steps"])
    assert "--target ort_fp32" in json.dumps(jobs["exports"]["steps"])


def test_ci_workflow_runs_the_ci_script():
    jobs = load("ci.yml")["jobs"]
    assert any("bash .ci/run" in s.get("run", "") for s in jobs["tests"]["steps"])
    assert jobs["tests"]["needs"] == "lint"


def test_every_matrix_field_used_exists_in_the_matrix():
    text = (WORKFLOWS / "build.yml").read_text()
    used = set(re.findall(r"matrix\.([a-z_]+)", text))
    emitted = {f.name for f in fields(matrix.Cell)}
    assert used and used <= emitted, used - emitted


def test_matrix_has_one_cell_per_target_with_runner_labels():
    cells = matrix.matrix_cells(Layout(REPO_ROOT, Path("/nonexistent")))
    data = json.loads(matrix.render(cells))["include"]
    assert len(data) == sum(len(load_recipe(p).targets) for p in (REPO_ROOT / "recipes").glob("*.yaml"))
    runners = {(c["toolchain"], c["runner"]) for c in data}
    assert ("onnxruntime", "ubuntu-latest") in runners and ("drpai_tvm", "drpai-tvm") in runners
    # a cell whose toolchain's wheels need a CPython posepipe supplies asks the runner for it (the workflow reads it)
    pythons = {c["toolchain"]: c["python"] for c in data}
    assert pythons["sophgo_tpu_mlir"] == pythons["drpai_tvm_cpu"] == "3.10" and pythons["litert"] == "3.12"
    assert pythons["ethos_u"] == "3.12"  # its cell builds the LiteRT target it compiles, on that target's CPython
    assert pythons["onnxruntime"] == ""
    assert "pythons: ${{ matrix.python }}" in (WORKFLOWS / "build.yml").read_text()


def test_runner_labels_are_configurable(tmp_path):
    (tmp_path / "recipes").mkdir()
    shutil.copy(REPO_ROOT / "recipes" / "litehrnet.yaml", tmp_path / "recipes")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "runners.yaml").write_text("kneron: gpu-box\n")
    cells = matrix.matrix_cells(Layout(tmp_path, tmp_path / "store"))
    assert {c.runner for c in cells if c.toolchain == "kneron"} == {"gpu-box"}
    (tmp_path / ".github" / "runners.yaml").write_text("tensorrt: x\n")
    with pytest.raises(UsageError, match="unknown toolchain"):
        matrix.matrix_cells(Layout(tmp_path, tmp_path / "store"))


def test_changed_paths_select_cells():
    r = load_recipe(REPO_ROOT / "recipes" / "litehrnet.yaml")
    kl520, ort = r.target("kl520"), r.target("ort_fp32")
    assert matrix.touches(r, kl520, ["docker/kneron/Dockerfile"]) and not matrix.touches(r, ort, ["docker/kneron/Dockerfile"])
    assert matrix.touches(r, ort, ["docker/mmpose/export.py"])  # every target depends on the export
    assert matrix.touches(r, ort, ["pipelines/engine.py"]) and matrix.touches(r, ort, ["recipes/litehrnet.yaml"])
    assert not matrix.touches(r, ort, ["recipes/hand_hrnetv2.yaml", "README.md"])
    u55 = r.target("ethos_u55")  # a target that compiles another's output is touched by that one's toolchain and calibration
    assert matrix.touches(r, u55, ["docker/litert/compile.py"]) and matrix.touches(r, u55, ["docker/calibration/select_images.py"])
    assert matrix.touches(r, u55, ["docker/ethos_u/compile.py"]) and not matrix.touches(r, ort, ["docker/litert/compile.py"])


def test_changed_since_uses_git(tmp_path):
    root = tmp_path / "repo"
    (root / "recipes").mkdir(parents=True)
    for name in ("litehrnet", "hand_hrnetv2"):
        shutil.copy(REPO_ROOT / "recipes" / f"{name}.yaml", root / "recipes")
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    p = root / "recipes" / "litehrnet.yaml"
    p.write_text(p.read_text().replace("model_version: \"0001\"", "model_version: \"0002\"", 1))
    subprocess.run([*git, "commit", "-qam", "two"], check=True)
    cells = matrix.matrix_cells(Layout(root, tmp_path / "store"), "HEAD~1")
    assert {c.recipe for c in cells} == {"litehrnet"}


def test_github_limits_are_enforced():
    cell = matrix.Cell("r", "t", "onnxruntime", "open", "ubuntu-latest", "o")
    with pytest.raises(UsageError, match="at most 256 jobs"):
        matrix.render([cell] * 257)
    big = matrix.Cell("r", "t" * 5000, "onnxruntime", "open", "ubuntu-latest", "o")
    with pytest.raises(UsageError, match="1 MB"):
        matrix.render([big] * 250)
