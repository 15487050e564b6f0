"""Real BM1684 bmodels through TPU-MLIR, compiled and simulated here: Lite-HRNet (the smallest seed
model, random weights) at F32 and INT8, through `invoke build`'s code path.

Random weights make near-flat heatmaps, so the simulator gate is opened wide here (this checks the
plumbing: the compile, the simulator run, the real tensor names, the manifest); test_quantization.py
checks the gate itself on a trained model, including a calibration set that must fail it.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.commands.predict import predict
from pipelines.core.layout import REPO_ROOT
from pipelines.core.plan import export_step_id, plan
from pipelines.core.recipe import load_recipe

from .httpserver import Route
from .test_pipeline import checkout, localise, mmpose_image, run_in, scenes, server  # noqa: F401 (module fixtures)
from .test_predict import photo_from, png_size

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.images("sophgo_tpu_mlir", "onnxruntime", "calibration")]

F32_TARGET = """  - id: bm1684_mlir_f32_b1
    toolchain: sophgo_tpu_mlir
    output: litehrnet_mlir_f32_1b
    chip: bm1684
    quantize: F32
    batch: 1
    max_keypoint_error_px: 100000
"""


def test_litehrnet_bmodels_are_compiled_and_simulated(mmpose_image, scenes, server, checkout, tmp_path, capsys):
    shutil.copytree(REPO_ROOT / "docker" / "sophgo_tpu_mlir", checkout.docker / "sophgo_tpu_mlir", dirs_exist_ok=True)
    recipe = load_recipe(REPO_ROOT / "recipes" / "litehrnet.yaml")
    export = next(s for s in plan(recipe, recipe.targets, "0" * 64, None) if s.id == export_step_id(recipe, 1))
    shape = ",".join(map(str, export.params["input"]["shape"]))
    run_in(mmpose_image, "make_checkpoint.py", [export.params["mmpose"]["config_1x"], "7", shape], tmp_path / "ckpt", tmp_path / "ckpt.log")
    ckpt = (tmp_path / "ckpt" / "checkpoint.pth").read_bytes()
    cal = (scenes / "calibration.zip").read_bytes()
    text = localise("litehrnet", server.add("/tpu-litehrnet.pth", Route(ckpt)), ckpt, server.add("/tpu-scenes.zip", Route(cal)), cal)
    text = text.replace("  - id: ort_fp32\n", F32_TARGET + "  - id: ort_fp32\n", 1)
    (checkout.recipes / "litehrnet.yaml").write_text(text)

    for target, quantize in (("bm1684_mlir_f32_b1", "F32"), ("bm1684_mlir_int8_b1", "INT8")):
        build(checkout, BuildRequest("litehrnet", target=target, progress=False, jobs=2))
        art = checkout.artifacts / "litehrnet" / target
        folder = next(p for p in art.iterdir() if p.is_dir())
        bmodel = folder / f"{folder.name}.bmodel"
        assert bmodel.stat().st_size > 100_000
        assert sorted(p.name for p in folder.iterdir()) == sorted(  # nothing the simulator leaves beside a bmodel
            [bmodel.name, "bmodel.json", "bmodel_info.txt", "decode.json", "report.json"])
        info = (folder / "bmodel_info.txt").read_text()
        assert re.search(r"chip: BM1684\b", info), info[:2000]
        tensors = json.loads((folder / "bmodel.json").read_text())
        decode = json.loads((folder / "decode.json").read_text())
        assert decode["bmodel_outputs"] == tensors["outputs"] and decode["keypoints"]  # the real names travel with it
        assert [o["shape"] for o in tensors["outputs"]] == [list(o.shape) for o in recipe.model.outputs]
        report = json.loads((folder / "report.json").read_text())
        assert report["quantize"] == quantize and report["model_deploy"]["verdict"] == "PASSED"
        assert report["simulator_vs_fp32_export"]["images"] == 16
        manifest = json.loads((art / "manifest.json").read_text())
        own = [c for c in manifest["checks"] if c["step"] == f"litehrnet/{target}"]
        assert [c["passed"] for c in own] == [True, True] and manifest["label"] == "verified"
        assert "tpu_mlir 1.30.2" in json.dumps(manifest["toolchains"]) and "CPython 3.10" in json.dumps(manifest["toolchains"])
        assert report["create_time"]["pinned"] and "create time: Tue Jan  1 00:00:00 1980" in info

    # The INT8 b1 target built again from the same inputs (--check runs every step again and compares):
    # the export, the calibration set, the MLIR, the calibration table (its time pinned) and the bmodel's
    # simulated outputs are the same (report.json holds their digests, so it would differ otherwise); only
    # the bmodel's bytes may move, which model_deploy's address-dependent INT8 code generation causes
    # and the report says.
    capsys.readouterr()
    build(checkout, BuildRequest("litehrnet", target="bm1684_mlir_int8_b1", progress=False, jobs=2, check=True))
    assert "check litehrnet/bm1684_mlir_int8_b1:" in capsys.readouterr().out  # really run again and compared
    again = json.loads((checkout.artifacts / "litehrnet" / "bm1684_mlir_int8_b1" / "manifest.json").read_text())
    differing = again["reproducibility"]["differing_files"]
    assert again["reproducibility"]["checked"] and all(v == [] for k, v in differing.items() if k != "litehrnet/bm1684_mlir_int8_b1")
    assert set(differing["litehrnet/bm1684_mlir_int8_b1"]) <= {"litehrnet_mlir_int8_1b/litehrnet_mlir_int8_1b.bmodel"}, differing
    report = json.loads((checkout.artifacts / "litehrnet" / "bm1684_mlir_int8_b1" / "litehrnet_mlir_int8_1b" / "report.json").read_text())
    assert set(report["tool_outputs_sha256"]) == {"litehrnet_mlir_int8_1b.mlir", "litehrnet_mlir_int8_1b_cali_table"}
    assert len(report["simulator_outputs_sha256"]) == 64 and "ASLR" in report["reproducibility"]

    # the bmodel run by its toolchain's runner (the cmodel simulator) on a photo: keypoints drawn
    photo, size = photo_from(scenes, tmp_path / "photo.png")
    found = predict(checkout, BuildRequest("litehrnet", "bm1684_mlir_f32_b1", progress=False), photo, tmp_path / "bm.png")
    assert len(found["keypoints"]) == 17 and png_size(tmp_path / "bm.png") == size
