"""`posepipe evaluate` and the metrics under it: the planner's columns, the record and table, the command's
errors, MMPose's metrics on hand-computed cases in the real mmpose image, and whole evaluations of random-weight
models on generated photos (tests/mmpose/make_photos.py) pseudo-labelled by their own FP32 export, which must then
score perfectly, an INT8 target measurably lower, and the same model fed unnormalised pixels far lower."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from pipelines.commands.build import BuildRequest, build
from pipelines.commands.evaluate import evaluate
from pipelines.commands.predict import predict
from pipelines.core import evaluation
from pipelines.core.errors import NotImplementedYet, UsageError
from pipelines.core.layout import REPO_ROOT, Layout
from pipelines.core.mmpose_configs import config_1x
from pipelines.core.plan import REFERENCE, LabelledData, evaluation_columns, evaluation_steps, plan, predict_step
from pipelines.core.recipe import load_recipe
from pipelines.edges.publishing import artifacts
from pipelines.edges.containers.docker_driver import DockerDriver, Mount

from .test_pipeline import checkout, mmpose_image, random_weight_recipe, run_in, scenes, server  # noqa: F401
from .test_predict import png_size
from .test_quantization import run_toolchain

DATA = LabelledData("set.zip", "a" * 64, "a" * 64, "annotations.json", "", 12)
COCO_SIGMAS = [0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087,
               0.087, 0.089, 0.089]  # COCO's published per-keypoint sigmas (MMPose's coco.py meta)


# --------------------------------------------------------------------------- the plan, the record, the table


def test_each_target_and_the_export_get_a_runner_step_and_a_score_step():
    r = load_recipe(REPO_ROOT / "recipes" / "hrnet_sophon.yaml")
    targets = (r.target("ort_fp32"), r.target("bm1684_mlir_int8_b4"))
    columns = evaluation_columns(r, targets, DATA)
    assert [c.name for c in columns] == [REFERENCE, "ort_fp32", "bm1684_mlir_int8_b4"]
    export, _, b4 = columns
    assert export.run.toolchain == "mmpose" and export.run.script == "run" and export.run.deps == (("artifact", "hrnet_sophon/export@b1"),)
    assert b4.run.toolchain == "sophgo_tpu_mlir" and b4.run.deps == (("artifact", "hrnet_sophon/bm1684_mlir_int8_b4"),)
    assert b4.run.params["input"]["shape"][0] == 4  # a fixed-batch artifact is fed batches of its own size
    assert b4.run.blobs == (("annotations", "a" * 64), ("images", "a" * 64))
    assert b4.run.params["limit"] == 12 and b4.run.params["annotations_member"] == "annotations.json"
    assert all(c.score.toolchain == "mmpose" and c.score.script == "score" and c.score.deps == (("predictions", c.run.id),)
               for c in columns)
    assert export.score.params["mmpose"]["config_1x"] == config_1x(r.model.mmpose.config)  # the config's own metrics
    # the reference export is planned once: the build's batch-1 export is reused, or added when no target made it
    planned = plan(r, targets, "c" * 64, "d" * 64)
    assert [s.id for s in evaluation_steps(r, planned, columns, "c" * 64)][:2] == [export.run.id, export.score.id]
    only_b4 = plan(r, targets[1:], "c" * 64, "d" * 64)
    added = evaluation_steps(r, only_b4, evaluation_columns(r, targets[1:], DATA), "c" * 64)
    assert added[0].id == "hrnet_sophon/export@b1" and added[0].blobs == (("checkpoint", "c" * 64),)
    assert evaluation_steps(r, planned, [], "c" * 64) == []
    # another set is another step; the same set is the same key material
    other = evaluation_columns(r, targets, LabelledData("b", "b" * 64, "c" * 64))
    assert other[1].run.id != columns[1].run.id and other[1].run.blobs == (("annotations", "b" * 64), ("images", "c" * 64))


def test_a_runner_that_rebuilds_its_model_takes_what_the_compile_step_took():
    """RKNN's simulator cannot load a .rknn: its run steps take the export, the calibration set and the settings too."""
    r = load_recipe(REPO_ROOT / "recipes" / "face_deeppose.yaml")
    rknn, ort = r.target("rk3566_int8"), r.target("ort_int8")
    compiled = {s.id: s for s in plan(r, (rknn,), "c" * 64, "d" * 64)}["face_deeppose/rk3566_int8"]
    _, ort_column, rknn_column = evaluation_columns(r, (ort, rknn), DATA)
    shown = predict_step(r, rknn, "e" * 64, None)
    for step in (rknn_column.run, shown):
        assert step.deps == (("artifact", "face_deeppose/rk3566_int8"), *compiled.deps)
        assert step.params["settings"] == compiled.params["settings"] and step.params["frontend"] == "onnx"
    assert compiled.deps == (("model", "face_deeppose/export@b1"), ("calibration", "face_deeppose/calibration"))
    assert ort_column.run.deps == (("artifact", "face_deeppose/ort_int8"),) and "settings" not in ort_column.run.params
    assert predict_step(r, ort, "e" * 64, None).deps == (("artifact", "face_deeppose/ort_int8"),)


def scored(figures: dict, seconds: float = 0.01) -> dict:
    return {"metrics": [{"type": "NME"}], "dataset": "wflw", "figures": figures, "images": 3, "instances": 4, "inputs": 4,
            "seconds_per_input": seconds, "steps": {"run": "1" * 64, "score": "2" * 64}}


def test_the_record_and_table_put_each_target_beside_the_fp32_export():
    ref, int8 = scored({"NME": 0.0}), scored({"NME": 0.0125}, 0.004)
    record = evaluation.record(DATA.as_json(), ref, int8, "d" * 64)
    assert record["delta"] == {"NME": 0.0125} and record["fp32_export"] == {"NME": 0.0}
    assert record["artifact_step"] == "d" * 64 and record["seconds_per_input"] == 0.004
    head, rows = evaluation.rows({REFERENCE: ref, "ort_int8": int8}, REFERENCE)
    assert head == ["artifact", "NME", "NME vs FP32", "instances", "images", "ms/input"]
    assert rows == [[REFERENCE, "0.0000", "-", "4", "3", "10.0"], ["ort_int8", "0.0125", "+0.0125", "4", "3", "4.0"]]
    coco = {"AP": 0.7, "AP .5": 1.0, "AP .75": 0.0, "AR": 0.7, "AR .5": 1.0}
    assert evaluation.headline(coco) == ["AP", "AP .5", "AR"] and evaluation.primary(coco) == "AP"
    assert evaluation.reported({"coco_ap": 0.6454, "coco_ar": 0.71, "gflops": 91.5, "model_size": "8M"}) == {"AP": 0.6454, "AR": 0.71}


# --------------------------------------------------------------------------- the command's errors


def test_evaluate_says_what_is_wrong_before_building_anything(tmp_path):
    root = tmp_path / "repo"
    (root / "recipes").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "recipes" / "face_deeppose.yaml", root / "recipes")
    for name in ("mmpose", "onnxruntime", "calibration"):
        shutil.copytree(REPO_ROOT / "docker" / name, root / "docker" / name)
    layout = Layout(root, tmp_path / "store")
    req = BuildRequest("face_deeppose", progress=False, offline=True)
    with pytest.raises(UsageError, match="names no labelled set"):
        evaluate(layout, req)  # face_deeppose has no evaluation: block
    with pytest.raises(UsageError, match="no such file"):
        evaluate(layout, req, data=tmp_path / "missing.zip")
    (tmp_path / "set.json").write_text("{}")
    with pytest.raises(UsageError, match="zip or tar archive holding annotations.json"):
        evaluate(layout, req, data=tmp_path / "set.json")
    with pytest.raises(NotImplementedYet, match="drpai"):  # named, but its toolchain is not in this checkout
        evaluate(layout, req, ["drpai"])
    spec = root / "docker" / "onnxruntime" / "toolchain.yaml"
    spec.write_text("\n".join(line for line in spec.read_text().splitlines() if not line.startswith("run:")))
    with pytest.raises(UsageError, match="ort_fp32 cannot run here"):  # named, but its toolchain has no runner
        evaluate(layout, req, ["ort_fp32"])
    assert not layout.artifacts.exists()


# --------------------------------------------------------------------------- MMPose's metrics, by hand


def coco_file(images: list[tuple[int, int, int]], anns: list[dict], names: list[str]) -> dict:
    return {"images": [{"id": i, "file_name": f"{i}.jpg", "width": w, "height": h} for i, w, h in images],
            "annotations": anns, "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}


def annotation(ann_id: int, image_id: int, bbox: list[float], points: list[tuple[float, float]]) -> dict:
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0,
            "num_keypoints": len(points), "keypoints": [v for x, y in points for v in (x, y, 2)]}


def prediction(ann: dict, points: list[tuple[float, float]]) -> dict:
    return {"image_id": ann["image_id"], "annotation_id": ann["id"], "category_id": 1, "bbox": ann["bbox"],
            "bbox_scale": [ann["bbox"][2] * 1.25, ann["bbox"][3] * 1.25],
            "keypoints": [v for x, y in points for v in (x, y, 0.9)]}


def shifted(points, offsets):
    return [(x + dx, y + dy) for (x, y), (dx, dy) in zip(points, offsets)]


def face_case():
    """WFLW: every keypoint 5 px off (3, 4); the eye corners 60 and 72 are 100 px apart: NME 0.05."""
    gt = [(60 + 100 * math.cos(i / 98 * 6.28), 130 + 60 * math.sin(i / 98 * 6.28)) for i in range(98)]
    gt[60], gt[72] = (80.0, 100.0), (180.0, 100.0)
    anns = [annotation(1, 1, [20, 40, 200, 200], gt), annotation(2, 2, [20, 40, 200, 200], gt)]
    return "face_deeppose", coco_file([(1, 256, 256), (2, 256, 256)], anns, [f"kpt-{i}" for i in range(98)]), \
        [prediction(a, shifted(gt, [(3, 4)] * 98)) for a in anns], {"NME": 0.05}


def body_case():
    """COCO: each keypoint moved along x so that its OKS term is exp(-e) = 0.82 (d^2 = 2 e area (2 sigma)^2): the
    instance's OKS is 0.82, matched at the thresholds 0.50 ... 0.80 and not above: AP = AR = 7/10."""
    bbox = [50.0, 40.0, 100.0, 200.0]
    gt = [(60.0 + 4 * i, 60.0 + 9 * i) for i in range(17)]
    e = -math.log(0.82)
    offsets = [(math.sqrt(2 * e * bbox[2] * bbox[3]) * 2 * s, 0.0) for s in COCO_SIGMAS]
    ann = annotation(1, 1, bbox, gt)
    return "litehrnet", coco_file([(1, 320, 320)], [ann], [f"kpt-{i}" for i in range(17)]), \
        [prediction(ann, shifted(gt, offsets))], {"AP": 0.7, "AR": 0.7}


def hand_case():
    """COCO-WholeBody hand: box 100 x 80, so PCK@0.2 counts errors under 20 px; 10 keypoints are 10 px off and 11 are
    30 px off: PCK = 10/21, EPE = (10 * 10 + 11 * 30) / 21."""
    bbox = [10.0, 20.0, 100.0, 80.0]
    gt = [(20.0 + 4 * i, 30.0 + 3 * i) for i in range(21)]
    ann = annotation(1, 1, bbox, gt)
    offsets = [(6, 8)] * 10 + [(18, 24)] * 11
    return "hand_hrnetv2", coco_file([(1, 200, 200)], [ann], [f"kpt-{i}" for i in range(21)]), \
        [prediction(ann, shifted(gt, offsets))], {"PCK": 10 / 21, "EPE": 430 / 21}


@pytest.mark.docker
@pytest.mark.images("mmpose")
@pytest.mark.slow
@pytest.mark.parametrize("case", [face_case, body_case, hand_case], ids=["nme", "coco-ap", "pck-epe"])
def test_the_score_step_gives_mmpose_s_metrics_on_hand_computed_cases(case, tmp_path):
    recipe, truth, found, expected = case()
    (tmp_path / "annotations.json").write_text(json.dumps(truth))
    (tmp_path / "predictions" / "x").mkdir(parents=True)
    (tmp_path / "predictions" / "x" / "predictions.json").write_text(json.dumps(
        {"image_ids": sorted(i["id"] for i in truth["images"]), "bottom_up": False, "results": found}))
    params = {"stage": "score", "annotations_member": "",
              "mmpose": {"config_1x": config_1x(load_recipe(REPO_ROOT / "recipes" / f"{recipe}.yaml").model.mmpose.config)}}
    code, out = run_toolchain("mmpose", params, [Mount(tmp_path / "annotations.json", "/in/annotations"),
                                                 Mount(tmp_path / "predictions", "/in/predictions")], tmp_path / "work", "score")
    assert code == 0, (tmp_path / "work" / "log").read_text()[-3000:]
    score = json.loads((out / "score.json").read_text())
    for name, value in expected.items():
        assert score["figures"][name] == pytest.approx(value, abs=1e-4), score
    assert score["instances"] == len(found) and score["images"] == len(truth["images"])


AE_CODEC = {"type": "AssociativeEmbedding", "input_size": [512, 512], "heatmap_size": [128, 128], "sigma": 2, "decode_topk": 30,
            "decode_center_shift": 0.5, "decode_keypoint_order": [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16],
            "decode_max_instances": 30}  # configs/body_2d_keypoint/associative_embedding/coco/ae_hrnet-w32_8xb24-300e_coco-512x512.py


@pytest.mark.docker
@pytest.mark.slow
def test_bottom_up_grouping_decodes_as_mmpose_does(mmpose_image, tmp_path):  # noqa: F811
    """The runners' numpy grouping of associative-embedding outputs against MMPose's own codec (restore, NMS,
    top-k, tag matching by the Hungarian method, refinement, filling a missing keypoint) on the same maps."""
    (tmp_path / "artifact").mkdir()
    (tmp_path / "artifact" / "decode.json").write_text(json.dumps({"codec": AE_CODEC}))
    (tmp_path / "params.json").write_text(json.dumps({"stage": "predict", "task": "bottomup_associative_embedding", "output": "",
                                                       "input": {"name": "input", "shape": [1, 3, 512, 512]}}))
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() == 0:
        os.chown(out, 1000, 1000)
    script = REPO_ROOT / "tests" / "mmpose" / "check_grouping.py"
    res = DockerDriver.from_env().run(
        image=mmpose_image, command=["/opt/venv/bin/python", "/in/check_grouping.py"],
        mounts=[Mount(script, "/in/check_grouping.py"), Mount(tmp_path / "params.json", "/in/params.json"),
                Mount(tmp_path / "artifact", "/in/artifact"), Mount(out, "/out", False)],
        env={"MPLCONFIGDIR": "/tmp"}, label="test/grouping", log_path=tmp_path / "log", on_line=lambda line: None, timeout=900)
    assert res.exit_code == 0, (tmp_path / "log").read_text()[-3000:]
    report = json.loads((out / "check.json").read_text())
    assert report["assignment_cost_diff"] == 0.0  # the least total cost, as SciPy finds it
    for case in report["people"]:
        assert case["mmpose"] == case["posepipe"] == 3, report  # three people, each found once
        assert case["max_keypoint_diff"] < 1e-3 and case["max_score_diff"] < 1e-4, report


# --------------------------------------------------------------------------- whole evaluations


@pytest.fixture(scope="module")
def photos(mmpose_image, tmp_path_factory) -> Path:  # noqa: F811
    """The generated photos (tests/mmpose/make_photos.py) and their figures' boxes."""
    out = tmp_path_factory.mktemp("photos") / "out"
    run_in(mmpose_image, "make_photos.py", [], out, out.parent / "photos.log")
    return out


def labelled_set(photos: Path, dest: Path, keypoints: dict[int, list[float]] | None, names: list[str]) -> Path:
    """A zip of the photos and annotations.json (COCO keypoints): one annotation per figure's box, labelled with
    ``keypoints`` by annotation id (None: a placeholder, every keypoint at the box's centre)."""
    boxes = json.loads((photos / "boxes.json").read_text())
    images, anns = [], []
    for image_id, (name, facts) in enumerate(sorted(boxes.items()), start=1):
        images.append({"id": image_id, "file_name": f"photos/{name}", "width": facts["size"][0], "height": facts["size"][1]})
        for box in facts["boxes"]:
            ann_id = len(anns) + 1
            x, y, w, h = box
            flat = keypoints[ann_id] if keypoints else [v for _ in names for v in (x + w / 2, y + h / 2, 1)]
            flat = [v if i % 3 < 2 else 2 for i, v in enumerate(flat)]  # every keypoint labelled, visible
            anns.append({"id": ann_id, "image_id": image_id, "category_id": 1, "bbox": box, "area": w * h, "iscrowd": 0,
                         "num_keypoints": len(names), "keypoints": flat})
    with zipfile.ZipFile(dest, "w") as z:
        z.writestr("annotations.json", json.dumps(
            {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person", "keypoints": names, "skeleton": []}]}))
        for name in boxes:
            z.write(photos / "photos" / name, f"photos/{name}")
    return dest


def with_random_weights(name: str, mmpose_image: str, scenes: Path, server, checkout: Layout, tmp_path: Path) -> str:  # noqa: F811
    """The real recipe ``name`` in the checkout, served with a random-weight checkpoint, its ort_fp32 target built."""
    text, _ = random_weight_recipe(name, mmpose_image, scenes, server, tmp_path)
    (checkout.recipes / f"{name}.yaml").write_text(text)
    build(checkout, BuildRequest(name, "ort_fp32", progress=False, jobs=2))
    return text


def pseudo_labelled(checkout: Layout, recipe: str, photos: Path, tmp_path: Path) -> Path:  # noqa: F811
    """The photos labelled with the keypoints the recipe's own FP32 export finds: in each figure's box (top-down),
    or every person it finds in each photo (bottom-up; boxed by their keypoints' extent)."""
    names = json.loads(next((checkout.artifacts / recipe / "ort_fp32").rglob("decode.json")).read_text())["keypoints"]
    placeholder = labelled_set(photos, tmp_path / "placeholder.zip", None, names)
    evaluate(checkout, BuildRequest(recipe, progress=False, jobs=2), ["ort_fp32"], placeholder, predictions=tmp_path / "found")
    found = json.loads((tmp_path / "found" / f"{REFERENCE}.json").read_text())
    if all("annotation_id" in r for r in found):
        return labelled_set(photos, tmp_path / "pseudo.zip", {r["annotation_id"]: r["keypoints"] for r in found}, names)
    with zipfile.ZipFile(placeholder) as z:
        data = json.loads(z.read("annotations.json"))
    data["annotations"] = []
    for r in found:
        xs, ys = r["keypoints"][0::3], r["keypoints"][1::3]
        box = [min(xs), min(ys), max(1.0, max(xs) - min(xs)), max(1.0, max(ys) - min(ys))]
        data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": r["image_id"], "category_id": 1, "bbox": box,
                                    "area": box[2] * box[3], "iscrowd": 0, "num_keypoints": len(names),
                                    "keypoints": [v if i % 3 < 2 else 2 for i, v in enumerate(r["keypoints"])]})
    with zipfile.ZipFile(placeholder) as z, zipfile.ZipFile(tmp_path / "pseudo.zip", "w") as out:
        for member in z.namelist():
            out.writestr(member, json.dumps(data) if member == "annotations.json" else z.read(member))
    return tmp_path / "pseudo.zip"


@pytest.mark.docker
@pytest.mark.images("onnxruntime", "calibration")
@pytest.mark.slow
def test_evaluate_scores_every_target_beside_the_fp32_export(mmpose_image, scenes, server, checkout, photos, tmp_path, capsys):  # noqa: F811
    name = "face_deeppose"
    text = with_random_weights(name, mmpose_image, scenes, server, checkout, tmp_path)
    pseudo = pseudo_labelled(checkout, name, photos, tmp_path)
    capsys.readouterr()

    scores = evaluate(checkout, BuildRequest(name, progress=False, jobs=2), None, pseudo)  # every target that runs here
    assert list(scores) == [REFERENCE, "ort_fp32", "ort_int8"]  # the vendor targets are skipped, saying why
    nme = {column: s["figures"]["NME"] for column, s in scores.items()}
    assert nme[REFERENCE] == pytest.approx(0.0, abs=1e-9)  # its own keypoints: a perfect score
    assert nme["ort_fp32"] < 1e-4  # the graph-optimised FP32 model finds the same points
    assert nme["ort_int8"] > 10 * max(nme["ort_fp32"], 1e-6)  # INT8 moves them, measurably
    assert all(s["instances"] == s["inputs"] == 32 and s["images"] == 24 for s in scores.values())  # every figure's box
    shown = capsys.readouterr().out
    assert re.search(rf"ort_int8\W+{nme['ort_int8']:.4f}\W+\+{nme['ort_int8']:.4f}\W+32\W+24\W", shown), shown  # the table

    # each target's manifest records its evaluation of these very outputs; a later plain build keeps it
    art = checkout.artifacts / name / "ort_int8"
    record = artifacts.read(art)["evaluation"][0]
    assert record["figures"]["NME"] == nme["ort_int8"] and record["fp32_export"]["NME"] == nme[REFERENCE]
    assert record["delta"]["NME"] == pytest.approx(nme["ort_int8"] - nme[REFERENCE])
    assert record["set"]["name"] == "pseudo.zip" and record["metrics"][0]["type"] == "NME" and record["dataset"] == "wflw"
    assert record["artifact_step"] == artifacts.read(art)["steps"][-1]["key"]
    build(checkout, BuildRequest(name, "ort_int8", progress=False, jobs=2))
    assert artifacts.read(art)["evaluation"] == [record]

    # predict --compare: the same runner and decode as evaluate, on the first figure's box
    boxes = json.loads((photos / "boxes.json").read_text())
    first = boxes["00.jpg"]["boxes"][0]
    found = predict(checkout, BuildRequest(name, "ort_int8", progress=False), photos / "photos" / "00.jpg", tmp_path / "vs.png",
                    ",".join(map(str, first)), compare=True)
    with zipfile.ZipFile(pseudo) as z:
        truth = json.loads(z.read("annotations.json"))["annotations"][0]  # the export's own keypoints, as evaluate found them
    fp32 = [v for k in found["fp32_export"] for v in (k["x"], k["y"])]
    assert fp32 == pytest.approx([v for i, v in enumerate(truth["keypoints"]) if i % 3 < 2], abs=0.01)
    assert found["target"] == "ort_int8" and found["mean_distance_px"] > 0 and len(found["distance_px"]) == 98
    assert (tmp_path / "vs.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same model fed unnormalised 0-255 pixels (a recipe that forgot its normalisation) is far off
    broken = re.sub(r"mean: \[[^]]*\]", "mean: [0, 0, 0]", text.replace(f"name: {name}", f"name: {name}_raw", 1))
    (checkout.recipes / f"{name}_raw.yaml").write_text(re.sub(r"std: \[[^]]*\]", "std: [1, 1, 1]", broken))
    raw = evaluate(checkout, BuildRequest(f"{name}_raw", progress=False, jobs=2), ["ort_fp32"], pseudo)
    assert raw["ort_fp32"]["figures"]["NME"] > 5 * nme["ort_int8"]


@pytest.mark.docker
@pytest.mark.images("onnxruntime", "calibration")
@pytest.mark.slow
def test_a_coco_body_model_is_scored_by_oks_ap(mmpose_image, scenes, server, checkout, photos, tmp_path):  # noqa: F811
    name = "litehrnet"
    text = with_random_weights(name, mmpose_image, scenes, server, checkout, tmp_path)
    pseudo = pseudo_labelled(checkout, name, photos, tmp_path)
    scores = evaluate(checkout, BuildRequest(name, progress=False, jobs=2), ["ort_fp32"], pseudo, limit=12)
    assert scores[REFERENCE]["figures"]["AP"] == pytest.approx(1.0) and scores[REFERENCE]["figures"]["AR"] == pytest.approx(1.0)
    assert scores["ort_fp32"]["figures"]["AP"] >= 0.99
    assert scores["ort_fp32"]["images"] == 12  # --limit: the first 12 labelled images
    assert scores["ort_fp32"]["metrics"][0]["type"] == "CocoMetric"


@pytest.mark.docker
@pytest.mark.images("onnxruntime", "calibration")
@pytest.mark.slow
def test_build_draws_each_runnable_targets_keypoints_on_the_recipes_photo(mmpose_image, scenes, server, checkout, photos,  # noqa: F811
                                                                           tmp_path):
    name = "face_deeppose"
    photo = (photos / "photos" / "03.jpg").read_bytes()
    text, _ = random_weight_recipe(name, mmpose_image, scenes, server, tmp_path, preview=photo)
    figure = json.loads((photos / "boxes.json").read_text())["03.jpg"]["boxes"][0]  # the recipe's box is for its own photo
    (checkout.recipes / f"{name}.yaml").write_text(re.sub(r"box: \[[^]]*\]", f"box: {figure}", text))
    box = load_recipe(checkout.recipes / f"{name}.yaml").preview.box
    build(checkout, BuildRequest(name, "ort_fp32", progress=False, jobs=2))
    art = checkout.artifacts / name / "ort_fp32"
    manifest = artifacts.read(art)
    picture = (art / "preview.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and png_size(art / "preview.png") == (photo_size := jpeg_size(photo))
    assert manifest["preview"]["box"] == list(box) and set(manifest["preview"]["files"]) == {"preview.png", "preview.json"}
    assert {"preview.png", "preview.json"} <= {f["path"] for f in manifest["files"]}  # checked, and signed when published
    artifacts.check_files(art, manifest)
    # the artifact's own keypoints, as predict finds them on the same photo and box
    (tmp_path / "photo.jpg").write_bytes(photo)
    found = predict(checkout, BuildRequest(name, "ort_fp32", progress=False), tmp_path / "photo.jpg", tmp_path / "p.png",
                    ",".join(map(str, box)))
    assert json.loads((art / "preview.json").read_text())["keypoints"] == found["keypoints"]
    assert (tmp_path / "p.png").read_bytes() == picture and photo_size == png_size(tmp_path / "p.png")


def jpeg_size(data: bytes) -> tuple[int, int]:
    """Width and height from a baseline JPEG's SOF0 marker."""
    i = 2
    while data[i] == 0xFF and data[i + 1] not in (0xC0, 0xC2):
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")


@pytest.mark.docker
@pytest.mark.images("onnxruntime", "calibration")
@pytest.mark.slow
def test_a_bottom_up_model_finds_every_person_and_is_scored_on_whole_photos(mmpose_image, scenes, server, checkout, photos, tmp_path):  # noqa: F811
    name = "hrnet_pose_ae"
    text = with_random_weights(name, mmpose_image, scenes, server, checkout, tmp_path)
    found = predict(checkout, BuildRequest(name, "ort_fp32", progress=False), photos / "photos" / "00.jpg", tmp_path / "ae.png")
    assert found["people"] and found["keypoints"] == found["people"][0]["keypoints"] and len(found["keypoints"]) == 17
    assert [p["score"] for p in found["people"]] == sorted((p["score"] for p in found["people"]), reverse=True)
    # labelled with the people the export finds: random weights find up to 30 near-identical people per photo, of
    # which COCO's own rules (OKS NMS, 20 detections per image) keep some, so no AP is 1.0 here; what must hold is
    # that the same model through ONNX Runtime scores as the export does, on whole photos
    pseudo = pseudo_labelled(checkout, name, photos, tmp_path)
    scores = evaluate(checkout, BuildRequest(name, progress=False, jobs=2), ["ort_fp32"], pseudo, limit=6)
    assert scores["ort_fp32"]["figures"]["AP"] == pytest.approx(scores[REFERENCE]["figures"]["AP"], abs=0.02)
    assert scores[REFERENCE]["figures"]["AP"] > 0 and scores["ort_fp32"]["metrics"][0]["type"] == "CocoMetric"
    assert scores["ort_fp32"]["inputs"] == scores["ort_fp32"]["images"] == 6  # one input per photo
