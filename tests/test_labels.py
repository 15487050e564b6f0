"""Labels are earned: only a passed check of the target's own makes 'verified'; no default does."""

from __future__ import annotations

from pipelines.core import labels
from pipelines.core.labels import Check, earned
from pipelines.core.layout import REPO_ROOT
from pipelines.core.manifest import StepRecord, assemble, render
from pipelines.core.plan import plan
from pipelines.core.recipe import load_recipe
from pipelines.core.steps import upstream


def test_earned_labels():
    ok = Check("r/t", "int8 vs fp32", True, {"mean_error_px": 0.1})
    assert earned(False, "r/t", [ok]) == labels.VERIFIED
    assert earned(False, "r/t", []) == labels.COMPILED  # a real compile that checked nothing
    assert earned(False, "r/t", [Check("r/export", "parity", True, {})]) == labels.COMPILED  # upstream checks are not its own
    assert earned(False, "r/t", [ok, Check("r/export", "parity", False, {})]) == labels.COMPILED
    assert earned(True, "r/t", [ok]) == labels.CONTRACT_TEST


def _manifest(target_id: str, final_report: dict, contract_test: bool = False) -> dict:
    r = load_recipe(REPO_ROOT / "recipes" / "face_deeppose.yaml")
    t = r.target(target_id)
    steps = upstream(plan(r, (t,), "c" * 64, "d" * 64), f"face_deeppose/{target_id}")
    records = [
        StepRecord(s, "e" * 64, "sha256:" + "f" * 64, "v1", contract_test, {f"{t.output}/model.onnx": {"size": 1, "sha256": "a" * 64}},
                   {"report.json": final_report} if s.id.endswith(target_id) else {})
        for s in steps
    ]
    return assemble(r, t, records, {"checkpoint": {"url": "u", "sha256": "c" * 64}}, None, "abc", 315532800, {"image": "posepipe/base:0123456789abcdef", "rootfs_sha256": "d" * 64})


def test_manifest_label_comes_from_the_final_steps_checks():
    passed = {"checks": [{"name": "fp32 outputs vs the export", "passed": True, "figures": {"max_abs_diff": 1e-7}}]}
    m = _manifest("ort_fp32", passed)
    assert m["label"] == "verified" and m["checks"][0]["step"] == "face_deeppose/ort_fp32"
    assert _manifest("ort_fp32", {"fp32_vs_export_max_abs_diff": 0.0})["label"] == "compiled"  # figures, no check
    assert _manifest("ort_fp32", passed, contract_test=True)["label"] == "contract-test"
    render(m)  # valid against the manifest schema
